"""The lowest layer: the records that flow (types), the lazy registry and the catalog of names."""

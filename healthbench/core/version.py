"""The harness version, recorded in every results.json (kept in core so every layer can read it)."""
__version__ = "0.1.0"

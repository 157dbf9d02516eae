"""Hugging Face dataset repositories as files: parquet shards with embedded images.

Several benchmarks are published as HF dataset repos (MMMU, the VQA-RAD and PathVQA copies).
Their on-disk form, as ``huggingface-cli download --repo-type dataset`` leaves it, is a folder of
parquet shards named ``<split>-NNNNN-of-NNNNN[-hash].parquet`` whose image columns are structs
``{bytes, path}``. Nothing here talks to the Hub: the user downloads, healthbench reads.
"""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Iterator, Sequence

from healthbench.core.types import ImageSource


class ParquetError(ValueError):
    """A shard that cannot be read; the message names the file."""


def split_shards(folder: Path, split: str) -> list[Path]:
    """The split's shards in name order (so rows keep the published order across shards)."""
    return sorted(p for p in folder.glob(f"{split}-*.parquet") if p.is_file())


def read_rows(path: Path, required: Sequence[str]) -> list[dict[str, Any]]:
    """All rows of one shard as dicts; a missing column or unreadable file is a ParquetError."""
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises several types for damaged files
        raise ParquetError(f"{path}: unreadable parquet file ({type(exc).__name__}: {exc})") \
            from exc
    missing = [c for c in required if c not in table.column_names]
    if missing:
        raise ParquetError(f"{path}: missing column(s) {', '.join(missing)} (has: "
                           f"{', '.join(table.column_names)})")
    return table.to_pylist()


def image_from_cell(cell: Any, label: str | None = None) -> ImageSource:
    """An HF ``Image`` cell (``{"bytes": ..., "path": ...}``) as an in-memory ImageSource."""
    if not isinstance(cell, dict) or not isinstance(cell.get("bytes"), (bytes, bytearray)) \
            or not cell["bytes"]:
        raise ValueError("image cell has no embedded bytes (expected {bytes, path} as the "
                         "Hub's parquet files store it)")
    return ImageSource(data=bytes(cell["bytes"]), label=label)


# --- writing, for the bundled sample suites ----------------------------------------------------

IMAGE_STRUCT_FIELDS = (("bytes", "binary"), ("path", "string"))


def image_struct_type() -> Any:
    import pyarrow as pa

    return pa.struct([pa.field(name, getattr(pa, kind)()) for name, kind in IMAGE_STRUCT_FIELDS])


def write_shard(path: Path, rows: list[dict[str, Any]], schema: Any) -> None:
    """Write ``rows`` as one parquet shard (atomically: temp file, then rename)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), tmp)
    tmp.replace(path)


def bundled_png_bytes(keys: Sequence[str]) -> Iterator[tuple[str, bytes]]:
    """(key, PNG bytes) for bundled images, downscaled exactly as ``save_png`` writes them."""
    from healthbench.data.bundled import BUNDLED_IMAGES, save_png

    by_key = {image.key: image for image in BUNDLED_IMAGES}
    with tempfile.TemporaryDirectory(prefix="hb-png-") as scratch:
        for key in keys:
            path = Path(scratch) / f"{key}.png"
            save_png(by_key[key], path)
            yield key, path.read_bytes()

"""Image strips for generation tasks: input | output | reference, one PNG per sample.

Written next to samples.jsonl (``<task>/images/``) so a person can look at what the numbers
mean; the leaderboard's sample browser links them.
"""
from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from PIL import Image

TILE = 192


def safe_name(sample_id: str) -> str:
    """A file name for a sample id: readable part + short hash (ids may hold '/', '#', …)."""
    readable = re.sub(r"[^A-Za-z0-9._-]+", "_", sample_id)[-60:].strip("._") or "sample"
    return f"{readable}-{hashlib.sha256(sample_id.encode()).hexdigest()[:8]}"


def _tile(image: Any) -> Image.Image:
    if image is None:
        return Image.new("RGB", (TILE, TILE), (40, 40, 40))
    if not isinstance(image, Image.Image):
        arr = np.asarray(image)
        if arr.dtype != np.uint8:
            arr = arr.astype(np.float64)
            lo, hi = float(arr.min()), float(arr.max())
            arr = ((arr - lo) / (hi - lo or 1.0) * 255).astype(np.uint8)
        image = Image.fromarray(arr.squeeze())
    return image.convert("RGB").resize((TILE, TILE), Image.Resampling.LANCZOS)


def save_output(folder: Path, name: str, image: Any) -> Path:
    """The generated image, lossless: uint8 as PNG, anything else as .npy (never pickled)."""
    arr = np.asarray(image)
    folder.mkdir(parents=True, exist_ok=True)
    if arr.dtype == np.uint8 and (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] in (3, 4))):
        path = folder / f"{name}.output.png"
        tmp = path.with_name(f".{path.name}.tmp.png")
        Image.fromarray(arr).save(tmp)
    else:
        path = folder / f"{name}.output.npy"
        tmp = path.with_name(f".{path.name}.tmp.npy")
        np.save(tmp, arr, allow_pickle=False)
    tmp.replace(path)
    return path


def save_strip(path: Path, images: Sequence[Any]) -> None:
    strip = Image.new("RGB", (TILE * len(images), TILE))
    for i, image in enumerate(images):
        strip.paste(_tile(image), (i * TILE, 0))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    strip.save(tmp)
    tmp.replace(path)

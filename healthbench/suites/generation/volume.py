"""SynthRAD2023 metrics on whole volumes (``per_volume: true``), as the challenge scores them.

The challenge's ``image_metrics.py`` computes MAE, PSNR and SSIM on the 3-D volume of each
patient (SSIM with skimage's 7×7×7 uniform window), not on 2-D slices. A model here answers one
axial slice per request, so the metric keeps each slice's prediction (in HU, float32) until the
volume's last slice has been answered, then stacks them and scores the volume against the
reference and mask volumes, read once. The value is stored on that last slice's record; the
other slices of the volume record ``None`` (left out of the mean and of ``n``), so ``n`` counts
volumes and the mean is the mean over patients, as the challenge reports it.

Every slice must be answered in one process, in order: the task must select every slice
(``slices: {mode: all}``). A volume whose earlier slices were answered by another process (a
resumed or sharded run) cannot be assembled; its last slice becomes an error saying so, never a
silently missing volume; re-score such a run with ``--model replay``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from healthbench.core.types import ImageSource, Response, Sample
from healthbench.scoring.score import Detailed


def canonical_axial_stack(path: Path) -> np.ndarray:
    """The volume as (slices, rows, cols): every axial slice as ``data.images`` shows it (closest
    canonical orientation, ``rot90``), read with one pass over the file."""
    import nibabel as nib

    data = np.asarray(nib.as_closest_canonical(nib.load(str(path))).dataobj)
    while data.ndim > 3:
        data = data[..., 0]
    return np.stack([np.rot90(data[:, :, k]) for k in range(data.shape[2])])


def axial_shape(path: Path) -> tuple[int, int]:
    """(rows, cols) of one axial slice, from the header alone."""
    import nibabel as nib

    from healthbench.data.images import axial_axis

    img = nib.load(str(path))
    ornt = nib.orientations.io_orientation(img.affine)
    axis = axial_axis(img.affine)[0]
    rest = sorted((a for a in range(3) if a != axis), key=lambda a: ornt[a, 0])
    return int(img.shape[rest[1]]), int(img.shape[rest[0]])


@dataclass
class _Volume:
    depth: int
    slices: dict[int, np.ndarray] = field(default_factory=dict)


@dataclass
class VolumeScorer:
    """Per-sample scorer of one measure on whole volumes (one instance per metric)."""

    what: str
    #: The 8-bit output → HU at the reference slice's shape (metrics.synthrad_prediction).
    to_hu: Callable[[Any, tuple[int, int]], np.ndarray]
    #: (prediction, reference, mask or None) volumes → the value (metrics.measure, synthrad).
    score: Callable[[np.ndarray, np.ndarray, "np.ndarray | None"], float]
    volumes: dict[str, _Volume] = field(default_factory=dict)

    def __call__(self, sample: Sample, response: Response, parsed: Any) -> Detailed:
        meta = sample.meta
        key, depth, frame = meta.get("volume"), meta.get("depth"), meta.get("slice")
        if key is None or depth is None or frame is None or not isinstance(sample.target,
                                                                           ImageSource):
            raise ValueError("per_volume scoring needs SynthRAD2023 samples (volume, "
                                     "depth and slice in meta)")
        if meta.get("selected") != depth:
            raise ValueError(f"per_volume scoring needs every slice of {key} (the task "
                                     f"selects {meta.get('selected')} of {depth}): set "
                                     "slices: {mode: all}")
        if response.image is None:
            raise ValueError("the model returned no image")
        volume = self.volumes.setdefault(str(key), _Volume(int(depth)))
        shape = axial_shape(sample.target.path)  # type: ignore[arg-type]
        volume.slices[int(frame)] = self.to_hu(response.image, shape).astype(np.float32)
        if int(frame) != volume.depth - 1:
            return Detailed(None, {"volume": key, "status": "kept for the volume score"})
        del self.volumes[str(key)]
        missing = [z for z in range(volume.depth) if z not in volume.slices]
        if missing:
            return Detailed(None, {"volume": key, "error": (
                f"per_volume: {len(missing)} slice(s) of {key} (first {missing[:5]}) were not "
                "answered in this process (a resumed or sharded run); re-score the run with "
                "--model replay")})
        value = self.score_volume(np.stack([volume.slices[z] for z in range(volume.depth)]),
                                  sample.target.path, meta.get("mask"))  # type: ignore[arg-type]
        return Detailed(value, {"volume": key, "slices": volume.depth})

    def score_volume(self, pred: np.ndarray, reference: Path, mask_path: str | None) -> float:
        ref = canonical_axial_stack(reference).astype(np.float64)
        mask = canonical_axial_stack(Path(mask_path)) > 0 if mask_path else None
        if ref.shape != pred.shape or (mask is not None and mask.shape != ref.shape):
            raise ValueError(f"volume shapes differ: prediction {pred.shape}, reference "
                             f"{ref.shape}, mask {None if mask is None else mask.shape}")
        return self.score(pred.astype(np.float64), ref, mask)

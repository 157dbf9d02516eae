"""Image fidelity: SSIM (Wang et al. 2004), PSNR and MSE with an explicit data range.

Pure functions take numpy arrays (H×W or H×W×C); the registered metrics ``ssim``, ``psnr`` and
``mse`` score ``response.image`` against the sample's reference (an ``ImageSource``, read with
``read_pixels`` in its own units, or an array) and are averaged over images (mean of per-image
values, the convention HealthGPT-style tables follow). For named end-to-end protocols (resizing,
8-bit rendering, SynthRAD HU masks) see ``fidelity.py``.

Choices stated once:

* ``data_range`` is required and never inferred from the dtype (skimage takes 65535 for int16,
  pytorch-msssim assumes 255 for everything). A number R, or a pair (lo, hi): R = hi − lo and
  both images are clipped to [lo, hi] first. An image spanning more than R is refused: it means
  the range is wrong (e.g. 0–255 pixels with ``data_range: 1``).
* SSIM: Gaussian window 11×11, σ = 1.5, K1 = 0.01, K2 = 0.03, population covariance, averaged over
  the positions where the window fits (a 5-pixel border is left out) — identical to skimage
  ``structural_similarity(gaussian_weights=True, sigma=1.5, use_sample_covariance=False)``.
  Colour images: per-channel SSIM, averaged. Images need at least 11 pixels per side.
* PSNR of identical images is +inf. ``psnr()`` returns ``math.inf``; the registered metric
  records ``cap_db`` instead (default 100 dB, above any non-identical 8-bit 256² pair, 96.3 dB at
  most), so means stay finite and JSON stays standard. ``cap_db: null`` leaves such samples out
  of the mean (their score is null) instead.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from healthbench.core.catalog import METRICS
from healthbench.scoring.base import Metric
from healthbench.core.types import ImageSource, Response, Sample

WIN_SIZE, SIGMA, K1, K2 = 11, 1.5, 0.01, 0.03



def resolve_range(data_range: Any) -> tuple[float, tuple[float, float] | None]:
    """(R, clip bounds or None) from a number or a (lo, hi) pair; refuses a missing range."""
    if data_range is None:
        raise ValueError("data_range is required (a number, or [lo, hi] to clip); it is never "
                         "inferred from the dtype")
    if isinstance(data_range, (list, tuple)):
        if len(data_range) != 2 or not float(data_range[1]) > float(data_range[0]):
            raise ValueError(f"data_range pair must be [lo, hi] with hi > lo, got {data_range!r}")
        lo, hi = float(data_range[0]), float(data_range[1])
        return hi - lo, (lo, hi)
    value = float(data_range)
    if not value > 0 or not math.isfinite(value):
        raise ValueError(f"data_range must be a positive number, got {data_range!r}")
    return value, None


def prepare_pair(pred: Any, ref: Any, data_range: Any) -> tuple[np.ndarray, np.ndarray, float]:
    """Both images as float64 of one shape, clipped if asked, with the range R; checks shapes
    and that neither image spans more than R."""
    rng, clip = resolve_range(data_range)
    a, b = np.asarray(pred, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    a, b = _match_channels(a), _match_channels(b)
    if a.shape != b.shape:
        raise ValueError(f"image shapes differ: prediction {a.shape} vs reference {b.shape}")
    if a.ndim not in (2, 3):
        raise ValueError(f"images must be H×W or H×W×C, got shape {a.shape}")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("images contain NaN or infinite values")
    if clip is not None:
        a, b = np.clip(a, *clip), np.clip(b, *clip)
    for label, img in (("prediction", a), ("reference", b)):
        span = float(img.max() - img.min()) if img.size else 0.0
        if span > rng * (1 + 1e-9):
            raise ValueError(f"{label} values span {span:g} > data_range {rng:g}; pass the "
                             "range the images are on (or [lo, hi] to clip)")
    return a, b, rng


def _match_channels(img: np.ndarray) -> np.ndarray:
    """Grey images stored as identical RGB(A) channels become H×W; others stay as they are."""
    if img.ndim == 3 and img.shape[-1] == 1:
        return img[..., 0]
    if img.ndim == 3 and img.shape[-1] in (3, 4):
        rgb = img[..., :3]
        opaque = img.shape[-1] == 3 or (img[..., 3] == img[..., 3].flat[0]).all()
        if opaque and (rgb == rgb[..., :1]).all():
            return rgb[..., 0]
    return img


def mse(pred: Any, ref: Any, data_range: Any) -> float:
    """Mean squared error in the images' own units (after clipping, if a pair is given)."""
    a, b, _ = prepare_pair(pred, ref, data_range)
    return float(np.mean((a - b) ** 2))


def psnr(pred: Any, ref: Any, data_range: Any) -> float:
    """10·log10(R² / MSE) in dB; ``math.inf`` for identical images."""
    a, b, rng = prepare_pair(pred, ref, data_range)
    err = float(np.mean((a - b) ** 2))
    return math.inf if err == 0 else 10.0 * math.log10(rng * rng / err)


def _gaussian_filter(img: np.ndarray) -> np.ndarray:
    from scipy.ndimage import correlate1d

    x = np.arange(WIN_SIZE) - WIN_SIZE // 2
    kernel = np.exp(-0.5 * (x / SIGMA) ** 2)
    kernel /= kernel.sum()
    return correlate1d(correlate1d(img, kernel, axis=0, mode="reflect"), kernel, axis=1,
                       mode="reflect")


def _ssim_2d(a: np.ndarray, b: np.ndarray, rng: float) -> float:
    if min(a.shape) < WIN_SIZE:
        raise ValueError(f"SSIM needs images of at least {WIN_SIZE}×{WIN_SIZE}, got {a.shape}")
    mu_a, mu_b = _gaussian_filter(a), _gaussian_filter(b)
    var_a = _gaussian_filter(a * a) - mu_a * mu_a
    var_b = _gaussian_filter(b * b) - mu_b * mu_b
    cov = _gaussian_filter(a * b) - mu_a * mu_b
    c1, c2 = (K1 * rng) ** 2, (K2 * rng) ** 2
    smap = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / (
        (mu_a ** 2 + mu_b ** 2 + c1) * (var_a + var_b + c2))
    pad = WIN_SIZE // 2
    return float(smap[pad:-pad, pad:-pad].mean())


def ssim(pred: Any, ref: Any, data_range: Any) -> float:
    """Wang-2004 SSIM (see the module docstring); colour: mean over channels."""
    a, b, rng = prepare_pair(pred, ref, data_range)
    if a.ndim == 2:
        return _ssim_2d(a, b, rng)
    return float(np.mean([_ssim_2d(a[..., c], b[..., c], rng) for c in range(a.shape[-1])]))


def reference_pixels(sample: Sample) -> np.ndarray:
    """The sample's reference image in its own units."""
    target = sample.target
    if isinstance(target, ImageSource):
        from healthbench.data.images import read_pixels

        return read_pixels(target)
    if target is None:
        raise ValueError(f"sample {sample.id!r} has no reference image")
    return np.asarray(target)


def _image_metric(fn, default_name: str, higher: bool, cap: bool = False):
    def make(data_range: Any = None, cap_db: float | None = 100.0,
             name: str | None = None) -> Metric:
        resolve_range(data_range)  # refuse a missing or malformed range when the task loads

        def score(sample: Sample, response: Response, parsed: Any) -> float | None:
            pred = parsed if parsed is not None else response.image
            if pred is None:
                raise ValueError("the model returned no image")
            value = fn(pred, reference_pixels(sample), data_range)
            if cap and math.isinf(value):
                return None if cap_db is None else float(cap_db)
            return value

        return Metric(name or default_name, per_sample=score, higher_is_better=higher,
                      percent=default_name == "ssim")

    make.__doc__ = f"Per-image {default_name.upper()} against the reference; data_range required."
    return make


METRICS.register("ssim", _image_metric(ssim, "ssim", True))
METRICS.register("psnr", _image_metric(psnr, "psnr", True, cap=True))
METRICS.register("mse", _image_metric(mse, "mse", False))

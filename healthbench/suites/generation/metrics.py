"""Generation fidelity under named protocols: how a generated image is compared with its
reference, fully stated, so that SSIM/PSNR numbers mean one thing.

Protocols (each recorded with its settings in results.json through the task's metric args):

``healthgpt-8bit`` — the convention HealthGPT's Tables 2–3 (arXiv 2502.09838) appear to use
  (their MSE and PSNR agree with 8-bit images and data range 255; the code is not published):
  the reference is rendered to 8 bits exactly as the model's input is (same window), both images
  are resized to ``size``×``size`` (default 256) with LANCZOS (as HealthGPT resizes its
  conditioning image), converted to grayscale with PIL's ITU-R 601-2 luma (``color: gray``,
  default) or kept RGB (``color: rgb``, SSIM per channel then averaged), uint8, data range 255.
  The model's output must be uint8 of that size: anything else is a per-sample error.
``synthrad`` — SynthRAD2023's challenge metrics (``image_metrics.py`` of SynthRAD2023/metrics),
  for CT references, inside the body mask: MAE on the *unclipped* HU; PSNR (data range 4024)
  and SSIM on values clipped to [-1024, 3000] HU, SSIM by skimage's default (uniform, 7-wide)
  window on images set to -1024 outside the mask and shifted to be non-negative, averaged inside
  the mask after cropping a 3-pixel border. The 8-bit model output is mapped linearly onto
  [-1024, 3000] HU and resized (bicubic) to the reference slice. Per 2-D slice by default; the
  challenge scores 3-D volumes, which ``per_volume: true`` does (volume.py).
``native`` — the images' own intensities with a stated ``data_range`` (required), for users'
  outputs in physical units (e.g. replayed arrays); shapes must match.

SSIM is Wang et al. 2004 (Gaussian 11×11, σ 1.5, K1 0.01, K2 0.03, population covariance) except
in ``synthrad``, which follows the challenge's code. Per-image values are averaged over images.
PSNR of identical images is infinite; it is capped at ``psnr_cap_db`` (default 100 dB), and the
cap is stated in the metric's args.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from healthbench.core.catalog import METRICS
from healthbench.data.images import load_image, read_pixels
from healthbench.scoring.base import Metric
from healthbench.core.types import ImageSource, Response, Sample

PROTOCOLS = ("healthgpt-8bit", "synthrad", "native")
HU_RANGE = (-1024.0, 3000.0)


class FidelityInputError(ValueError):
    """A generated image the protocol cannot compare (wrong size, dtype or channels)."""


@dataclass(frozen=True)
class Pair:
    pred: np.ndarray
    ref: np.ndarray
    data_range: float
    mask: np.ndarray | None = None  # boolean, same shape as the images
    channel_axis: int | None = None
    #: (lo, hi) both images are clipped to for PSNR, MSE and SSIM, never for MAE (synthrad).
    clip: tuple[float, float] | None = None

    def clipped(self) -> "Pair":
        if self.clip is None:
            return self
        lo, hi = self.clip
        return Pair(np.clip(self.pred, lo, hi), np.clip(self.ref, lo, hi), self.data_range,
                    self.mask, self.channel_axis, None)


def _check_image(pred: Any) -> np.ndarray:
    arr = np.asarray(pred)
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (1, 3, 4)):
        raise FidelityInputError(f"generated image has shape {arr.shape}; expected H×W or "
                                 "H×W×{1,3,4}")
    return arr[..., 0] if arr.ndim == 3 and arr.shape[2] == 1 else arr


def prepare_healthgpt_8bit(pred: Any, ref: ImageSource, size: int = 256,
                           color: str = "gray") -> Pair:
    arr = _check_image(pred)
    if arr.dtype != np.uint8:
        raise FidelityInputError(f"generated image has dtype {arr.dtype}; the healthgpt-8bit "
                                 "protocol expects uint8")
    if arr.shape[:2] != (size, size):
        raise FidelityInputError(f"generated image is {arr.shape[1]}×{arr.shape[0]}; the "
                                 f"healthgpt-8bit protocol expects {size}×{size}")
    reference = load_image(ImageSource(path=ref.path, data=ref.data, frame=ref.frame,
                                       window=ref.window))
    reference = reference.resize((size, size), Image.Resampling.LANCZOS)
    generated = Image.fromarray(arr).convert("RGB")
    if color == "gray":
        return Pair(np.asarray(generated.convert("L")), np.asarray(reference.convert("L")),
                    255.0)
    if color == "rgb":
        return Pair(np.asarray(generated), np.asarray(reference), 255.0, channel_axis=2)
    raise ValueError(f"color must be gray or rgb, got {color!r}")


def _resize_float(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    if image.shape == shape:
        return image.astype(np.float64)
    pil = Image.fromarray(image.astype(np.float32), mode="F")
    return np.asarray(pil.resize((shape[1], shape[0]), Image.Resampling.BICUBIC),
                      dtype=np.float64)


def synthrad_prediction(pred: Any, shape: tuple[int, int]) -> np.ndarray:
    """A model's 8-bit output in HU: mapped linearly onto [-1024, 3000], resized (bicubic) to
    the reference slice and clipped to that range again (an 8-bit image can only express the
    window; the clip removes the resampling overshoot, nothing the model produced)."""
    arr = _check_image(pred)
    if arr.dtype != np.uint8:
        raise FidelityInputError(f"generated image has dtype {arr.dtype}; synthrad maps 8-bit "
                                 "outputs onto [-1024, 3000] HU")
    gray = np.asarray(Image.fromarray(arr).convert("L"), dtype=np.float64)
    lo, hi = HU_RANGE
    return np.clip(_resize_float(gray / 255.0 * (hi - lo) + lo, shape), lo, hi)


def prepare_synthrad(pred: Any, ref: ImageSource, mask_path: str | None,
                     mask_policy: str = "body") -> Pair:
    """The pair in HU: the reference *unclipped* (MAE is on the raw HU, as the challenge's
    ``image_metrics.py``; PSNR and SSIM clip in ``measure``), the body mask slice required
    unless the loader was told ``mask: none``."""
    reference = np.asarray(read_pixels(ImageSource(path=ref.path, data=ref.data,
                                                   frame=ref.frame)), dtype=np.float64)
    generated = synthrad_prediction(pred, reference.shape)
    if not mask_path:
        if mask_policy != "none":
            raise FidelityInputError("the sample has no body mask; the synthrad protocol scores "
                                     "inside it (the loader option mask: none scores whole "
                                     "slices, recorded)")
        return Pair(generated, reference, HU_RANGE[1] - HU_RANGE[0], clip=HU_RANGE)
    mask = np.asarray(read_pixels(ImageSource(path=Path(mask_path), frame=ref.frame))) > 0
    if mask.shape != reference.shape:
        raise FidelityInputError(f"mask slice {mask.shape} does not match the reference "
                                 f"{reference.shape}")
    if not mask.any():
        raise FidelityInputError(f"{mask_path} is empty on slice {ref.frame}: nothing to score")
    return Pair(generated, reference, HU_RANGE[1] - HU_RANGE[0], mask, clip=HU_RANGE)


def prepare_native(pred: Any, ref: ImageSource, data_range: float) -> Pair:
    arr = _check_image(pred).astype(np.float64)
    reference = np.asarray(read_pixels(ref), dtype=np.float64)
    if arr.shape != reference.shape:
        raise FidelityInputError(f"generated image {arr.shape} and reference {reference.shape} "
                                 "differ in shape (the native protocol does not resize)")
    return Pair(arr, reference, float(data_range),
                channel_axis=2 if arr.ndim == 3 else None)


def ssim_wang(a: np.ndarray, b: np.ndarray, data_range: float,
              channel_axis: int | None = None) -> float:
    from skimage.metrics import structural_similarity

    return float(structural_similarity(a, b, data_range=data_range, gaussian_weights=True,
                                       sigma=1.5, use_sample_covariance=False,
                                       channel_axis=channel_axis))


def measure(pair: Pair, what: str, protocol: str, psnr_cap_db: float) -> float:
    """One measure on a prepared pair, following the protocol's rules.

    Inside the mask when there is one. MAE is on the values as they are (unclipped HU for
    synthrad); MSE, PSNR and SSIM on the values clipped to ``pair.clip`` (SynthRAD2023's
    population range), as the challenge's ``image_metrics.py`` does."""
    if what == "mae":
        diff = pair.pred.astype(np.float64) - pair.ref.astype(np.float64)
        return float(np.abs(diff[pair.mask] if pair.mask is not None else diff).mean())
    pair = pair.clipped()
    if what in ("mse", "psnr"):
        diff = pair.pred.astype(np.float64) - pair.ref.astype(np.float64)
        values = diff[pair.mask] if pair.mask is not None else diff
        mse = float(np.mean(values ** 2))
        if what == "mse":
            return mse
        if mse == 0.0:
            return psnr_cap_db
        return float(min(psnr_cap_db, 10.0 * np.log10(pair.data_range ** 2 / mse)))
    if what == "ssim":
        if protocol == "synthrad":
            return ssim_synthrad(pair.pred, pair.ref, pair.mask, pair.data_range)
        return ssim_wang(pair.pred, pair.ref, pair.data_range, pair.channel_axis)
    raise ValueError(f"unknown measure {what!r}")


def ssim_synthrad(pred: np.ndarray, ref: np.ndarray, mask: np.ndarray | None,
                  data_range: float) -> float:
    """SynthRAD2023's SSIM on clipped values (2-D slices or 3-D volumes alike): outside the mask
    set to the range minimum, shifted to be non-negative, skimage's default (uniform, 7-wide)
    window, the map averaged inside the mask after cropping a 3-voxel border."""
    from skimage.metrics import structural_similarity
    from skimage.util import crop

    lo = HU_RANGE[0]
    if mask is not None:
        pred, ref = np.where(mask, pred, lo), np.where(mask, ref, lo)
    full_mean, full = structural_similarity(ref - lo, pred - lo, data_range=data_range,
                                            full=True)
    if mask is None:
        return float(full_mean)
    return float(crop(full, 3)[crop(mask, 3)].mean(dtype=np.float64))


def _factory(what: str, higher_is_better: bool):
    def make(protocol: str, size: int = 256, color: str = "gray",
             data_range: float | None = None, psnr_cap_db: float = 100.0,
             per_volume: bool = False) -> Metric:
        if protocol not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {', '.join(PROTOCOLS)}, got {protocol!r}")
        if protocol == "native" and data_range is None:
            raise ValueError("the native protocol needs an explicit data_range")
        if per_volume:
            if protocol != "synthrad" or what == "mse":
                raise ValueError("per_volume applies to the synthrad protocol's mae, psnr and "
                                 "ssim")
            from healthbench.suites.generation.volume import VolumeScorer

            def on_volume(pred: np.ndarray, ref: np.ndarray, mask: np.ndarray | None) -> float:
                pair = Pair(pred, ref, HU_RANGE[1] - HU_RANGE[0], mask, clip=HU_RANGE)
                return measure(pair, what, "synthrad", psnr_cap_db)

            return Metric(f"{what}_synthrad_volume",
                          per_sample=VolumeScorer(what, synthrad_prediction, on_volume),
                          higher_is_better=higher_is_better, percent=what == "ssim")

        def score(sample: Sample, response: Response, parsed: Any) -> float:
            pair = _prepared(sample, response, protocol, size, color, data_range)
            return measure(pair, what, protocol, psnr_cap_db)

        # the paper-style protocol keeps the plain name; others say which protocol they follow
        name = what if protocol == "healthgpt-8bit" else f"{what}_{protocol.replace('-', '_')}"
        return Metric(name, per_sample=score, higher_is_better=higher_is_better,
                      percent=what == "ssim")

    return make


#: (sample id, id of the response image, protocol settings) -> (that image, its prepared pair).
#: The entry holds the image itself, so while it is cached no other array can take its id: a
#: key built from a recycled ``id()`` alone once served a freed image's pair to a new response.
_CACHE: dict[tuple, tuple[Any, Pair]] = {}


def _prepared(sample: Sample, response: Response, protocol: str, size: int, color: str,
              data_range: float | None) -> Pair:
    """The prepared pair, shared by the ssim/psnr/mse metrics of one sample (small cache)."""
    key = (sample.id, id(response.image), protocol, size, color, data_range)
    cached = _CACHE.get(key)
    if cached is not None and cached[0] is response.image:
        return cached[1]
    if len(_CACHE) > 16:
        _CACHE.clear()
    if not isinstance(sample.target, ImageSource):
        raise FidelityInputError("the sample has no reference image")
    if response.image is None:
        raise FidelityInputError("the model returned no image")
    if protocol == "healthgpt-8bit":
        pair = prepare_healthgpt_8bit(response.image, sample.target, size, color)
    elif protocol == "synthrad":
        pair = prepare_synthrad(response.image, sample.target, sample.meta.get("mask"),
                                str(sample.meta.get("mask_policy", "body")))
    else:
        pair = prepare_native(response.image, sample.target, float(data_range))
    _CACHE[key] = (response.image, pair)
    return pair


for _what, _higher in (("ssim", True), ("psnr", True), ("mse", False), ("mae", False)):
    METRICS.register(f"fidelity_{_what}", _factory(_what, _higher))

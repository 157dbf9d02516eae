"""SSIM/PSNR/MSE agree with scikit-image (Gaussian settings, explicit data range)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from healthbench.core.catalog import METRICS
from healthbench.scoring.image import mse, psnr, ssim
from healthbench.core.types import Response, Sample

TOL = 1e-6


def _pair(kind: str, seed: int, shape=(64, 72)) -> tuple[np.ndarray, np.ndarray, float]:
    """A smooth reference and a noisy, blurred prediction in the given pixel type."""
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(seed)
    base = gaussian_filter(rng.random(shape), 4)
    base = (base - base.min()) / (base.max() - base.min())
    noisy = np.clip(gaussian_filter(base, 1) + rng.normal(0, 0.05, shape), 0, 1)
    if kind == "uint8":
        return (noisy * 255).astype(np.uint8), (base * 255).astype(np.uint8), 255.0
    if kind == "float":
        return noisy, base, 1.0
    # int16 CT-like: HU from -1024 to 2000
    to_hu = lambda x: (x * 3024 - 1024).astype(np.int16)  # noqa: E731
    return to_hu(noisy), to_hu(base), 3024.0


@pytest.mark.parametrize("kind", ["uint8", "float", "int16"])
@pytest.mark.parametrize("seed", range(3))
def test_ssim_and_psnr_match_skimage(kind: str, seed: int) -> None:
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    pred, ref, rng = _pair(kind, seed)
    expected = structural_similarity(ref, pred, data_range=rng, gaussian_weights=True,
                                     sigma=1.5, use_sample_covariance=False)
    assert ssim(pred, ref, rng) == pytest.approx(expected, abs=TOL)
    expected = peak_signal_noise_ratio(ref, pred, data_range=rng)
    assert psnr(pred, ref, rng) == pytest.approx(expected, abs=TOL)
    diff = ref.astype(np.float64) - pred.astype(np.float64)
    assert mse(pred, ref, rng) == pytest.approx(float(np.mean(diff ** 2)), rel=1e-12)


def test_colour_ssim_is_mean_over_channels_like_skimage() -> None:
    from skimage.metrics import structural_similarity

    rgb = [np.stack([_pair("uint8", s)[i] for s in range(3)], axis=-1) for i in (0, 1)]
    expected = structural_similarity(rgb[1], rgb[0], data_range=255, gaussian_weights=True,
                                     sigma=1.5, use_sample_covariance=False, channel_axis=-1)
    assert ssim(rgb[0], rgb[1], 255) == pytest.approx(expected, abs=TOL)


@pytest.mark.filterwarnings("ignore:Setting data_range")
def test_int16_range_is_not_taken_from_dtype() -> None:
    from skimage.metrics import structural_similarity

    pred, ref, rng = _pair("int16", 0)
    dtype_based = structural_similarity(ref, pred, gaussian_weights=True, sigma=1.5,
                                        use_sample_covariance=False)  # 65535 for int16
    assert ssim(pred, ref, rng) < dtype_based - 0.01


def test_identical_images_psnr_is_infinite_and_metric_caps_it() -> None:
    img = _pair("uint8", 0)[1]
    assert psnr(img, img, 255) == math.inf
    sample = Sample(id="s", target=img)
    assert METRICS.get("psnr")(data_range=255).per_sample(sample, Response(image=img), img) == 100.0
    assert METRICS.get("psnr")(data_range=255, cap_db=None).per_sample(
        sample, Response(image=img), img) is None
    assert ssim(img, img, 255) == pytest.approx(1.0)


def test_data_range_is_required_and_checked() -> None:
    with pytest.raises(ValueError, match="data_range is required"):
        METRICS.get("ssim")()
    pred, ref, _ = _pair("uint8", 0)
    with pytest.raises(ValueError, match="span"):
        ssim(pred, ref, 1.0)  # 0-255 pixels with a [0, 1] range


def test_pair_range_clips_before_scoring() -> None:
    pred, ref, _ = _pair("int16", 1)
    clipped = np.clip(pred, -1024, 1000), np.clip(ref, -1024, 1000)
    assert psnr(pred, ref, [-1024, 1000]) == pytest.approx(psnr(*clipped, 2024.0))


def test_metric_reads_reference_image_source(tmp_path) -> None:
    from PIL import Image

    from healthbench.core.types import ImageSource

    pred, ref, _ = _pair("uint8", 2)
    Image.fromarray(ref).save(tmp_path / "ref.png")
    sample = Sample(id="s", target=ImageSource(path=tmp_path / "ref.png"))
    rgb_pred = np.repeat(pred[..., None], 3, axis=-1)  # a model's grey output saved as RGB
    value = METRICS.get("ssim")(data_range=255).per_sample(sample, Response(image=rgb_pred),
                                                          rgb_pred)
    assert value == pytest.approx(ssim(pred, ref, 255), abs=1e-12)


def test_shape_mismatch_is_an_error() -> None:
    with pytest.raises(ValueError, match="shapes differ"):
        ssim(np.zeros((32, 32)), np.zeros((32, 33)), 1.0)

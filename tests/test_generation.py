"""Generation-fidelity suites: protocols agree with scikit-image computed by hand on the same
settings; baselines order as they must; bad outputs are per-sample errors."""
from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from PIL import Image
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from healthbench.run.evaluate import RunSpec, evaluate
from healthbench.models.base import Model
from healthbench.run.runner import RunSettings
from healthbench.taskconfig.index import TaskIndex
from healthbench.core.types import Response

WANG = dict(gaussian_weights=True, sigma=1.5, use_sample_covariance=False)


def brainish_volume(seed: int, shape=(64, 72, 20)) -> np.ndarray:
    """A smooth blob with texture: real-looking enough for SSIM to be informative."""
    rng = np.random.default_rng(seed)
    x, y, z = np.meshgrid(*(np.linspace(-1, 1, n) for n in shape), indexing="ij")
    blob = np.exp(-(x ** 2 + y ** 2) * 3) * 800 + rng.normal(0, 20, shape)
    return (blob + 100 * np.sin(6 * x) * (x ** 2 + y ** 2 < 0.5)).astype(np.float32)


def write_synthrad(root: Path) -> Path:
    task1 = root / "SynthRAD2023" / "Task1"
    for region, patients in (("brain", ["1BA001", "1BA005"]), ("pelvis", ["1PA010"])):
        for i, patient in enumerate(patients):
            folder = task1 / region / patient
            folder.mkdir(parents=True)
            mr = brainish_volume(i)
            ct = np.clip(mr * 1.5 - 1000, -1024, 3000)
            mask = (mr > 200).astype(np.uint8)
            for name, vol in (("mr", mr), ("ct", ct.astype(np.int16)), ("mask", mask)):
                nib.save(nib.Nifti1Image(vol, np.eye(4)), folder / f"{name}.nii.gz")
    return task1


def write_ixi(root: Path) -> None:
    folder = root / "IXI" / "IXI-T1"
    folder.mkdir(parents=True)
    for i in range(2):
        nib.save(nib.Nifti1Image(brainish_volume(10 + i, (96, 96, 12)), np.eye(4)),
                 folder / f"IXI00{i}-Guys-T1.nii.gz")


class Fixed(Model):
    """Returns a given function of the input image: the 'model' under test."""

    capabilities = frozenset({"image"})

    def __init__(self, fn) -> None:
        self.fn = fn
        self.seen: list = []

    def generate(self, requests):
        self.seen.extend(requests)
        return [Response(image=self.fn(r)) for r in requests]


def run(tmp_path: Path, task: str, model: Model, run_id: str = "r") -> dict:
    tasks = TaskIndex.build().resolve([task])
    spec = RunSpec(model="fixed", model_args={}, tasks=tasks, data_root=tmp_path,
                   output_path=tmp_path / "out", run_id=run_id,
                   settings=RunSettings(batch_size=4, progress=False))
    return evaluate(spec, model=model)["tasks"][task]


def rows(tmp_path: Path, task: str, run_id: str = "r") -> dict[str, dict]:
    text = (tmp_path / "out" / run_id / task / "samples.jsonl").read_text()
    return {r["id"]: r for r in map(json.loads, text.splitlines())}


def slice_of(path: Path, frame: int) -> np.ndarray:
    return np.rot90(np.asarray(nib.load(str(path)).dataobj)[:, :, frame])


def test_healthgpt_8bit_protocol_equals_skimage_by_hand(tmp_path: Path) -> None:
    task1 = write_synthrad(tmp_path)
    noise = np.random.default_rng(0).integers(0, 256, (256, 256, 3), dtype=np.uint8)
    block = run(tmp_path, "modality_conversion_mr2ct", Fixed(lambda r: noise))
    per_sample = rows(tmp_path, "modality_conversion_mr2ct")
    assert block["n"] == len(per_sample) == 3  # 20 slices: every 10th of 6..13 -> one each
    expected_ssim, expected_psnr = [], []
    for sample_id in sorted(per_sample):
        region_patient, frame = sample_id.split("#")
        ct = slice_of(task1 / region_patient / "ct.nii.gz", int(frame)).astype(np.float64)
        ref8 = (np.clip(ct, -1024, 3000) + 1024) / 4024 * 255
        ref = Image.fromarray(ref8.round().astype(np.uint8)).convert("RGB")
        ref = np.asarray(ref.resize((256, 256), Image.Resampling.LANCZOS).convert("L"))
        pred = np.asarray(Image.fromarray(noise).convert("L"))
        ssim = structural_similarity(pred, ref, data_range=255, **WANG)
        psnr = peak_signal_noise_ratio(ref, pred, data_range=255)
        assert per_sample[sample_id]["scores"]["ssim"] == pytest.approx(ssim, abs=1e-12)
        assert per_sample[sample_id]["scores"]["psnr"] == pytest.approx(psnr, abs=1e-9)
        expected_ssim.append(ssim)
        expected_psnr.append(psnr)
    assert block["metrics"]["ssim"]["value"] == pytest.approx(np.mean(expected_ssim))
    assert block["metrics"]["psnr"]["value"] == pytest.approx(np.mean(expected_psnr))
    assert set(block["groups"]["region"]) == {"brain", "pelvis"}


def test_synthrad_protocol_equals_the_challenge_formulas(tmp_path: Path) -> None:
    from skimage.util import crop

    task1 = write_synthrad(tmp_path)
    gray = np.random.default_rng(1).integers(0, 256, (256, 256), dtype=np.uint8)
    run(tmp_path, "modality_conversion_mr2ct", Fixed(lambda r: np.stack([gray] * 3, -1)))
    for sample_id, row in rows(tmp_path, "modality_conversion_mr2ct").items():
        region_patient, frame = sample_id.split("#")
        ct = np.clip(slice_of(task1 / region_patient / "ct.nii.gz", int(frame))
                     .astype(np.float64), -1024, 3000)
        mask = slice_of(task1 / region_patient / "mask.nii.gz", int(frame)) > 0
        hu = gray.astype(np.float32) / 255.0 * 4024 - 1024
        pred = np.asarray(Image.fromarray(hu, mode="F").resize(ct.shape[::-1],
                                                               Image.Resampling.BICUBIC))
        pred = np.clip(pred.astype(np.float64), -1024, 3000)
        mae = np.abs(pred - ct)[mask].mean()
        psnr = 10 * np.log10(4024 ** 2 / np.mean(((pred - ct)[mask]) ** 2))
        shifted_p = np.where(mask, pred + 1024, 0.0)
        shifted_r = np.where(mask, ct + 1024, 0.0)
        _, full = structural_similarity(shifted_r, shifted_p, data_range=4024, full=True)
        ssim = crop(full, 3)[crop(mask, 3)].mean()
        assert row["scores"]["mae_synthrad"] == pytest.approx(mae, rel=1e-6)  # PIL resizes in float32
        assert row["scores"]["psnr_synthrad"] == pytest.approx(psnr, rel=1e-6)  # PIL resizes in float32
        assert row["scores"]["ssim_synthrad"] == pytest.approx(ssim, rel=1e-6)  # PIL resizes in float32


def test_native_protocol_equals_skimage_on_int16_ct(tmp_path: Path) -> None:
    from healthbench.suites.generation.metrics import measure, prepare_native
    from healthbench.core.types import ImageSource

    task1 = write_synthrad(tmp_path)
    ct_path = task1 / "brain" / "1BA001" / "ct.nii.gz"
    ref = slice_of(ct_path, 10).astype(np.float64)
    pred = ref + np.random.default_rng(2).normal(0, 30, ref.shape)
    pair = prepare_native(pred, ImageSource(path=ct_path, frame=10), data_range=4024)
    assert measure(pair, "ssim", "native", 100) == pytest.approx(
        structural_similarity(pred, ref, data_range=4024, **WANG), abs=1e-12)
    assert measure(pair, "psnr", "native", 100) == pytest.approx(
        peak_signal_noise_ratio(ref, pred, data_range=4024), abs=1e-9)


def test_identity_scores_perfectly_and_psnr_is_capped(tmp_path: Path, sample_data_root) -> None:
    from healthbench.models.image_baselines import IdentityModel

    block = run(sample_data_root, "reconstruction_sample", IdentityModel())
    assert block["n_errors"] == 0 and block["n"] >= 6
    assert block["metrics"]["ssim"]["value"] == pytest.approx(1.0)
    assert block["metrics"]["psnr"]["value"] == 100.0  # the stated cap for identical images
    assert block["metrics"]["mse"]["value"] == 0.0
    assert {"dicom", "nifti", "png"} <= set(block["groups"]["format"])
    images = sample_data_root / "out" / "r" / "reconstruction_sample" / "images"
    assert len(list(images.glob("*.output.png"))) == block["n"]  # lossless, for replay
    assert len([p for p in images.glob("*.png") if ".output." not in p.name]) == block["n"]


def test_bicubic_beats_random_on_super_resolution(tmp_path: Path) -> None:
    from healthbench.models.baselines import RandomModel
    from healthbench.models.image_baselines import BicubicModel

    write_ixi(tmp_path)
    bicubic = run(tmp_path, "super_resolution", BicubicModel(), "bicubic")
    noise = run(tmp_path, "super_resolution", RandomModel(), "random")
    assert bicubic["n"] == noise["n"] > 0
    assert bicubic["metrics"]["ssim"]["value"] > noise["metrics"]["ssim"]["value"] + 0.3
    assert bicubic["metrics"]["psnr"]["value"] > noise["metrics"]["psnr"]["value"] + 5


def test_super_resolution_input_is_downscaled_by_the_stated_factor(tmp_path: Path) -> None:
    write_ixi(tmp_path)
    model = Fixed(lambda r: np.zeros((256, 256, 3), np.uint8))
    run(tmp_path, "super_resolution", model)
    assert {r.images[0].size for r in model.seen} == {(96 // 4, 96 // 4)}


@pytest.mark.parametrize("output, message", [
    (np.zeros((128, 128, 3), np.uint8), "expects 256×256"),
    (np.zeros((256, 256, 3), np.float32), "expects uint8"),
    (np.zeros((256, 256, 7), np.uint8), "expected H×W"),
])
def test_wrong_size_or_dtype_is_a_per_sample_error(tmp_path: Path, output, message) -> None:
    write_ixi(tmp_path)
    block = run(tmp_path, "super_resolution", Fixed(lambda r: output))
    assert block["n"] == 0 and block["n_errors"] > 0
    assert all(message in row["error"] for row in rows(tmp_path, "super_resolution").values())


def test_text_only_model_is_refused_for_image_tasks(tmp_path: Path) -> None:
    from healthbench.models.tiny import TinyVLM
    from healthbench.run.runner import CapabilityError, check_capabilities

    tasks = TaskIndex.build().resolve(["reconstruction"])
    with pytest.raises(CapabilityError, match="needs image"):
        check_capabilities(TinyVLM.__new__(TinyVLM), "tiny", tasks)


def test_an_image_run_replays_to_the_same_scores(sample_data_root: Path) -> None:
    from healthbench.models.baselines import ReplayModel
    from healthbench.models.baselines import RandomModel

    first = run(sample_data_root, "reconstruction_sample", RandomModel(), "noise")
    again = run(sample_data_root, "reconstruction_sample",
                ReplayModel(path=str(sample_data_root / "out" / "noise")), "replayed")
    assert again["n_errors"] == 0
    assert again["metrics"] == first["metrics"]


def to_uint8_by_hand(pixels: np.ndarray) -> np.ndarray:
    """8-bit rendering over the slice's own min..max, as models are shown NIfTI slices."""
    arr = pixels.astype(np.float64)
    lo, hi = arr.min(), arr.max()
    return ((arr - lo) / (hi - lo) * 255.0).round().astype(np.uint8)


class Upscaled(Model):
    """Bicubic ×4 of the low-resolution input plus fixed noise; keeps what it returned by id."""

    capabilities = frozenset({"image"})

    def __init__(self) -> None:
        self.outputs: dict[str, np.ndarray] = {}
        self.rng = np.random.default_rng(5)

    def generate(self, requests):
        out = []
        for r in requests:
            up = np.asarray(r.images[0].convert("RGB").resize((256, 256),
                                                              Image.Resampling.BICUBIC))
            noisy = np.clip(up.astype(np.int16) + self.rng.integers(-20, 21, up.shape), 0, 255)
            self.outputs[r.sample_id] = noisy.astype(np.uint8)
            out.append(Response(image=self.outputs[r.sample_id]))
        return out


def test_super_resolution_scores_equal_skimage_by_hand(tmp_path: Path) -> None:
    from skimage.metrics import mean_squared_error

    write_ixi(tmp_path)
    model = Upscaled()
    block = run(tmp_path, "super_resolution", model)
    per_sample = rows(tmp_path, "super_resolution")
    assert block["n_errors"] == 0 and block["n"] == len(per_sample) == len(model.outputs) == 2
    expected = {"ssim": [], "psnr": [], "mse": []}
    for sample_id, row in per_sample.items():
        rel, frame = sample_id.split("#")
        ref8 = to_uint8_by_hand(slice_of(tmp_path / "IXI" / rel, int(frame)))
        ref = Image.fromarray(ref8).convert("RGB").resize((256, 256), Image.Resampling.LANCZOS)
        ref = np.asarray(ref.convert("L"))
        pred = np.asarray(Image.fromarray(model.outputs[sample_id]).convert("L"))
        ssim = structural_similarity(pred, ref, data_range=255, **WANG)
        psnr = peak_signal_noise_ratio(ref, pred, data_range=255)
        mse = mean_squared_error(ref, pred)
        assert 0.2 < ssim < 0.99  # informative: neither noise nor identical
        assert row["scores"]["ssim"] == pytest.approx(ssim, abs=1e-12)
        assert row["scores"]["psnr"] == pytest.approx(psnr, abs=1e-9)
        assert row["scores"]["mse"] == pytest.approx(mse, abs=1e-9)
        for name, value in (("ssim", ssim), ("psnr", psnr), ("mse", mse)):
            expected[name].append(value)
    for name, values in expected.items():
        assert block["metrics"][name]["value"] == pytest.approx(np.mean(values))


NATIVE_TASK = """task: native_mr2ct
version: "1"
dataset: {format: synthrad2023, path: SynthRAD2023/Task1, options: {direction: mr2ct, regions: [brain, pelvis], slices: {mode: every, step: 10, within: [0.3, 0.7]}}}
output: image
prompt: "{question}"
metrics:
  - {name: fidelity_ssim, args: {protocol: native, data_range: 4024}}
  - {name: fidelity_psnr, args: {protocol: native, data_range: 4024}}
group_by: [region]
"""


def test_native_protocol_task_run_equals_skimage_by_hand(tmp_path: Path) -> None:
    task1 = write_synthrad(tmp_path)
    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks" / "native.yaml").write_text(NATIVE_TASK)
    outputs: dict[str, np.ndarray] = {}
    rng = np.random.default_rng(7)

    def ct_plus_noise(request) -> np.ndarray:
        region_patient, frame = request.sample_id.split("#")
        ct = slice_of(task1 / region_patient / "ct.nii.gz", int(frame)).astype(np.float64)
        outputs[request.sample_id] = ct + rng.normal(0, 40, ct.shape)
        return outputs[request.sample_id]

    tasks = TaskIndex.build([tmp_path / "tasks"], builtin=False).resolve(["native_mr2ct"])
    spec = RunSpec(model="fixed", model_args={}, tasks=tasks, data_root=tmp_path,
                   output_path=tmp_path / "out", run_id="r",
                   settings=RunSettings(batch_size=4, progress=False))
    block = evaluate(spec, model=Fixed(ct_plus_noise))["tasks"]["native_mr2ct"]
    per_sample = rows(tmp_path, "native_mr2ct")
    assert block["n_errors"] == 0 and block["n"] == len(per_sample) == len(outputs) == 3
    ssims, psnrs = [], []
    for sample_id, row in per_sample.items():
        region_patient, frame = sample_id.split("#")
        ref = slice_of(task1 / region_patient / "ct.nii.gz", int(frame)).astype(np.float64)
        pred = outputs[sample_id]
        ssim = structural_similarity(pred, ref, data_range=4024, **WANG)
        psnr = peak_signal_noise_ratio(ref, pred, data_range=4024)
        assert row["scores"]["ssim_native"] == pytest.approx(ssim, abs=1e-12)
        assert row["scores"]["psnr_native"] == pytest.approx(psnr, abs=1e-9)
        ssims.append(ssim)
        psnrs.append(psnr)
    assert block["metrics"]["ssim_native"]["value"] == pytest.approx(np.mean(ssims))
    assert block["metrics"]["psnr_native"]["value"] == pytest.approx(np.mean(psnrs))

"""SynthRAD2023 metrics as the challenge computes them, masks never silent, NIfTI slices by
anatomy, IXI by sequence, per-volume scoring and the pinned CLIP preprocessing (issue 16)."""
from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from PIL import Image
from skimage.metrics import structural_similarity
from skimage.util import crop
from test_generation import Fixed, rows, run

from healthbench.core.types import ImageSource, Response, Sample
from healthbench.data.images import read_pixels
from healthbench.suites.generation.loader import load_ixi, load_synthrad
from healthbench.suites.generation.metrics import METRICS

TASK = "modality_conversion_mr2ct"


def patient(folder: Path, affine=np.eye(4), seed: int = 0, metal: bool = False,
            mask_slices: slice | None = None, shape=(40, 44, 20)) -> dict[str, np.ndarray]:
    """ct/mr/mask volumes of one SynthRAD patient (the CT may hold metal: 5000 HU)."""
    rng = np.random.default_rng(seed)
    x, y, _ = np.meshgrid(*(np.linspace(-1, 1, n) for n in shape), indexing="ij")
    body = (x ** 2 + y ** 2) < 0.6
    ct = np.where(body, 40 + rng.normal(0, 200, shape), -1000).astype(np.float32)
    if metal:
        ct[18:22, 20:24, :] = 5000.0
    mask = body.astype(np.uint8)
    if mask_slices is not None:
        mask[:, :, mask_slices] = 0
    mr = np.where(body, 300 + rng.normal(0, 30, shape), 0).astype(np.float32)
    folder.mkdir(parents=True)
    vols = {"ct": ct, "mr": mr, "mask": mask}
    for name, vol in vols.items():
        nib.save(nib.Nifti1Image(vol, affine), folder / f"{name}.nii.gz")
    return vols


def official(gt: np.ndarray, pred: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    """SynthRAD2023/metrics image_metrics.py, restated: MAE unclipped, PSNR/SSIM clipped."""
    m = mask > 0
    mae = np.abs(gt * m - pred * m).sum() / m.sum()
    g, p = np.clip(gt, -1024, 3000), np.clip(pred, -1024, 3000)
    mse = np.mean((g[m] - p[m]) ** 2)
    psnr = 10 * np.log10(4024.0 ** 2 / mse)
    gs, ps = np.where(m, g, -1024) + 1024, np.where(m, p, -1024) + 1024
    _, full = structural_similarity(gs, ps, data_range=4024, full=True)
    return {"mae": float(mae), "psnr": float(psnr), "ssim": float(crop(full, 3)[crop(m, 3)].mean())}


def gray_model(seed: int = 1) -> Fixed:
    gray = np.random.default_rng(seed).integers(0, 256, (256, 256), dtype=np.uint8)
    return Fixed(lambda r: np.stack([gray] * 3, -1))


def pred_hu(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    gray = np.asarray(Image.fromarray(image).convert("L"), dtype=np.float64)
    hu = Image.fromarray((gray / 255 * 4024 - 1024).astype(np.float32), mode="F")
    return np.clip(np.asarray(hu.resize((shape[1], shape[0]), Image.Resampling.BICUBIC),
                              dtype=np.float64), -1024, 3000)


def test_mae_is_on_unclipped_hu_psnr_and_ssim_on_clipped(tmp_path: Path) -> None:
    vols = patient(tmp_path / "SynthRAD2023" / "Task1" / "pelvis" / "1PA001", metal=True)
    model = gray_model()
    run(tmp_path, TASK, model)
    (row,) = rows(tmp_path, TASK).values()
    frame = int(row["id"].split("#")[1])
    ct = np.rot90(vols["ct"][:, :, frame]).astype(np.float64)
    mask = np.rot90(vols["mask"][:, :, frame])
    assert ct[mask > 0].max() == 5000.0                          # metal inside the mask
    expected = official(ct, pred_hu(model.fn(None), ct.shape), mask)
    scores = row["scores"]
    assert scores["mae_synthrad"] == pytest.approx(expected["mae"], rel=1e-9)
    assert scores["psnr_synthrad"] == pytest.approx(expected["psnr"], rel=1e-9)
    assert scores["ssim_synthrad"] == pytest.approx(expected["ssim"], rel=1e-9)
    clipped_mae = official(np.clip(ct, -1024, 3000), pred_hu(model.fn(None), ct.shape),
                           mask)["mae"]
    assert abs(scores["mae_synthrad"] - clipped_mae) > 1.0       # the old, clipped MAE differs


def test_missing_mask_is_a_per_sample_error_unless_mask_none(tmp_path: Path) -> None:
    root = tmp_path / "Task1"
    patient(root / "brain" / "1BA001")
    patient(root / "brain" / "1BA002", seed=1)
    (root / "brain" / "1BA002" / "mask.nii.gz").unlink()
    items = load_synthrad(root, regions=("brain",)).items
    errors = [i for i in items if not isinstance(i, Sample)]
    assert len(errors) == 1 and "brain/1BA002/mask.nii.gz" in errors[0].message
    items = load_synthrad(root, regions=("brain",), mask="none").items
    assert all(isinstance(i, Sample) for i in items) and len(items) == 2
    assert {i.meta["mask_policy"] for i in items} == {"none"}
    assert all(i.meta["mask"] is None for i in items)
    factory = METRICS.get("fidelity_mae")
    metric = factory(protocol="synthrad")
    image = np.zeros((256, 256, 3), np.uint8)
    value = metric.per_sample(items[1], Response(image=image), None)
    ct = read_pixels(ImageSource(path=items[1].target.path, frame=items[1].target.frame))
    assert value == pytest.approx(np.abs(ct + 1024.0).mean())    # whole slice, as recorded
    body = Sample(id="x", question="q", target=items[1].target,
                  meta={**items[1].meta, "mask_policy": "body"})
    with pytest.raises(ValueError, match="no body mask"):
        metric.per_sample(body, Response(image=image), None)


def test_empty_mask_slices_are_skipped_with_a_reason_and_n_agrees(tmp_path: Path) -> None:
    patient(tmp_path / "SynthRAD2023" / "Task1" / "brain" / "1BA001", mask_slices=slice(5, 8))
    patient(tmp_path / "SynthRAD2023" / "Task1" / "brain" / "1BA002", seed=2)
    block = run(tmp_path, TASK, gray_model())
    records = rows(tmp_path, TASK)
    skipped = [r for r in records.values() if r["error"]]
    assert len(skipped) == 1 and "empty on slice 6" in skipped[0]["error"]
    assert "skipped: brain/1BA001/mask.nii.gz is empty" in skipped[0]["error"]
    assert len(block["metrics"]) == 6 and {m["n"] for m in block["metrics"].values()} == {1}
    assert block["n_errors"] == 1


def test_one_anatomy_in_two_orientations_gives_identical_slices_and_scores(tmp_path) -> None:
    a = tmp_path / "a"
    b = tmp_path / "b"
    vols = patient(a / "SynthRAD2023" / "Task1" / "brain" / "1BA001", np.diag([1., 1., 2., 1.]))
    folder = b / "SynthRAD2023" / "Task1" / "brain" / "1BA001"
    folder.mkdir(parents=True)
    # same anatomy stored LPI with axes permuted: array (z, y, x) with x and z flipped
    affine = np.array([[0, 0, -1., 39], [0, 1., 0, 0], [-2., 0, 0, 38], [0, 0, 0, 1]])
    for name, vol in vols.items():
        stored = np.transpose(vol[::-1, :, ::-1], (2, 1, 0))
        nib.save(nib.Nifti1Image(np.ascontiguousarray(stored), affine), folder / f"{name}.nii.gz")
    assert np.allclose(nib.as_closest_canonical(nib.load(str(folder / "ct.nii.gz"))).affine,
                       np.diag([1., 1., 2., 1.]))
    blocks = [run(root, TASK, gray_model()) for root in (a, b)]
    ra, rb = rows(a, TASK), rows(b, TASK)
    assert ra.keys() == rb.keys()
    assert [r["scores"] for r in ra.values()] == [r["scores"] for r in rb.values()]
    assert blocks[0]["metrics"] == blocks[1]["metrics"]
    for frame in range(20):
        pa, pb = (read_pixels(ImageSource(path=r / "SynthRAD2023/Task1/brain/1BA001/ct.nii.gz",
                                          frame=frame)) for r in (a, b))
        assert np.array_equal(pa, pb) and np.array_equal(pa, np.rot90(vols["ct"][:, :, frame]))


def test_ixi_reads_only_the_named_sequence(tmp_path: Path) -> None:
    folder = tmp_path / "IXI"
    folder.mkdir()
    vol = np.random.default_rng(0).normal(size=(16, 16, 6)).astype(np.float32)
    for name in ("IXI002-Guys-0828-T1.nii.gz", "IXI002-Guys-0828-T2.nii.gz",
                 "IXI002-Guys-0828-PD.nii.gz", "brain_mask.nii.gz", "IXI012-HH-1211-T1.nii"):
        nib.save(nib.Nifti1Image(vol, np.eye(4)), folder / name)
    t1 = load_ixi(folder).items
    assert [s.id for s in t1] == ["IXI002-Guys-0828-T1.nii.gz#3"]
    t2 = load_ixi(folder, sequence="T2").items
    assert [s.id for s in t2] == ["IXI002-Guys-0828-T2.nii.gz#3"]
    assert t2[0].meta["sequence"] == "T2"
    with pytest.raises(ValueError, match="sequence"):
        load_ixi(folder, sequence="FLAIR")


def test_per_volume_scores_whole_volumes_as_the_challenge(tmp_path: Path) -> None:
    from healthbench.suites.generation.volume import VolumeScorer

    root = tmp_path / "Task1"
    vols = patient(root / "pelvis" / "1PA001", metal=True, shape=(24, 20, 10))
    items = load_synthrad(root, regions=("pelvis",), slices={"mode": "all"}).items
    assert len(items) == 10
    rng = np.random.default_rng(5)
    images = [rng.integers(0, 256, (32, 32, 3), dtype=np.uint8) for _ in items]
    for what in ("mae", "psnr", "ssim"):
        metric = METRICS.get(f"fidelity_{what}")(protocol="synthrad", per_volume=True)
        assert metric.name == f"{what}_synthrad_volume"
        assert isinstance(metric.per_sample, VolumeScorer)
        out = [metric.per_sample(s, Response(image=img), None) for s, img in zip(items, images)]
        assert [o.value is None for o in out] == [True] * 9 + [False]
        ct = np.stack([np.rot90(vols["ct"][:, :, k]) for k in range(10)]).astype(np.float64)
        mask = np.stack([np.rot90(vols["mask"][:, :, k]) for k in range(10)])
        pred = np.stack([pred_hu(img, ct.shape[1:]) for img in images])
        assert out[-1].value == pytest.approx(official(ct, pred, mask)[what], rel=1e-9)
    metric = METRICS.get("fidelity_mae")(protocol="synthrad", per_volume=True)
    for s, img in list(zip(items, images))[5:]:          # a resumed run: slices 0-4 elsewhere
        last = metric.per_sample(s, Response(image=img), None)
    assert "were not answered in this process" in last.details["error"]
    every10 = load_synthrad(root, regions=("pelvis",), slices={"mode": "middle"}).items
    with pytest.raises(ValueError, match="mode: all"):
        metric.per_sample(every10[0], Response(image=images[0]), None)


def test_clip_preprocessing_is_the_pil_path_even_with_torchvision_picked(monkeypatch) -> None:
    """transformers 5 resolves CLIPImageProcessor to its torchvision class when torchvision is
    installed: simulate that, and check the plugin's pixel values equal upstream's PIL
    processor restated by hand (expand2square, bicubic shortest-edge resize, centre crop,
    rescale, normalise)."""
    torch = pytest.importorskip("torch")
    import transformers

    from healthbench.models.base import create_model

    class TorchvisionLike:
        def __init__(self, *a, **k) -> None:
            raise AssertionError("the torchvision-backed processor must not be used")

        from_pretrained = classmethod(lambda cls, *a, **k: cls())

    monkeypatch.setattr(transformers, "CLIPImageProcessor", TorchvisionLike, raising=False)
    model = create_model("healthgpt", {"variant": "tiny"})
    pre = model.net.preprocess
    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (70, 110, 3),
                                                              dtype=np.uint8))
    got = pre([image])[0].numpy()
    mean = np.array([0.48145466, 0.4578275, 0.40821073], dtype=np.float32)
    std = np.array([0.26862954, 0.26130258, 0.27577711], dtype=np.float32)
    square = Image.new("RGB", (110, 110), tuple(int(m * 255) for m in mean.tolist()))
    square.paste(image, (0, 20))
    arr = np.asarray(square.resize((336, 336), Image.Resampling.BICUBIC))
    want = (((arr.astype(np.float64) * (1 / 255)).astype(np.float32) - mean) / std)
    assert np.array_equal(got, want.transpose(2, 0, 1))
    assert type(pre.processor).__name__ in ("CLIPImageProcessorPil", "CLIPImageProcessor")
    assert type(pre.processor) is not TorchvisionLike and torch is not None


def test_replay_image_paths_stay_inside_the_replay_folder(tmp_path: Path) -> None:
    from healthbench.core.types import Request
    from healthbench.models.baselines import ReplayModel

    folder = tmp_path / "replay"
    (folder / "images").mkdir(parents=True)
    Image.fromarray(np.full((8, 8), 7, np.uint8)).save(folder / "images" / "a.png")
    np.save(folder / "images" / "b.npy", np.full((4, 4), -500.0))
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "outside.png")
    lines = [{"task": "t", "id": "a", "response": {"output": "images/a.png"}},
             {"task": "t", "id": "b", "response": {"output": "images/b.npy"}},
             {"task": "t", "id": "c", "response": [[0, 255], [255, 0]]},
             {"task": "t", "id": "d", "response": {"output": "../outside.png"}},
             {"task": "t", "id": "e", "response": {"output": str(tmp_path / "outside.png")}}]
    (folder / "out.jsonl").write_text("\n".join(json.dumps(x) for x in lines))
    model = ReplayModel(str(folder / "out.jsonl"))
    got = model.generate([Request(task="t", sample_id=i, prompt="", output="image")
                          for i in "abcde"])
    assert got[0].image.dtype == np.uint8 and int(got[0].image[0, 0]) == 7
    assert got[1].image.dtype == np.float64 and got[1].image[0, 0] == -500.0
    assert got[2].image.dtype == np.uint8 and got[2].image.shape == (2, 2)
    assert got[3].image is None and "'..'" in got[3].error
    assert got[4].image is None and "absolute path" in got[4].error


def test_a_recycled_image_id_never_serves_another_images_pair(tmp_path: Path) -> None:
    """The per-sample pair cache is keyed by the response image's id(); CPython reuses the id of
    a freed array, so an entry left by an earlier run must not answer for a new image that got
    its address (this once scored a random image as identical to its reference)."""
    from healthbench.suites.generation import metrics as fidelity

    Image.fromarray(np.full((8, 8), 90, np.uint8)).save(tmp_path / "ref.png")
    sample = Sample(id="s", question="q", target=ImageSource(path=tmp_path / "ref.png"))
    metric = METRICS.get("fidelity_mse")(protocol="native", data_range=255)
    first = np.full((8, 8), 90, np.uint8)                      # identical to the reference
    assert metric.per_sample(sample, Response(image=first), None) == 0.0
    second = np.full((8, 8), 100, np.uint8)                    # 10 grey levels off
    old_key = next(k for k in fidelity._CACHE if k[1] == id(first))
    fidelity._CACHE[(old_key[0], id(second), *old_key[2:])] = fidelity._CACHE.pop(old_key)
    assert metric.per_sample(sample, Response(image=second), None) == pytest.approx(100.0)

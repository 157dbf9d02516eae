"""Loaders under hostile data: symlinks out of the data root in the folder-walking loaders,
options checked like every other task key, and NIfTI slices read without the whole volume."""
from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from PIL import Image

from healthbench.core.types import SampleError
from healthbench.suites.generation.loader import load_image_folder, load_ixi, load_synthrad


def _png(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.arange(64, dtype=np.uint8).reshape(8, 8)).save(path)
    return path


def _nii(path: Path, shape=(8, 8, 6)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(np.arange(np.prod(shape), dtype=np.int16).reshape(shape),
                             np.eye(4)), str(path))
    return path


def test_folder_walking_loaders_refuse_symlinks_out_of_the_data_root(tmp_path: Path) -> None:
    root, outside = tmp_path / "data", tmp_path / "outside"
    _png(root / "CT" / "inside.png")
    secret = _png(outside / "secret.png")
    _nii(outside / "vol" / "IXI002-T1.nii.gz")
    (root / "CT" / "link.png").symlink_to(secret)  # a file pointing out
    (root / "MR").mkdir()
    (root / "MR" / "dir").symlink_to(outside, target_is_directory=True)  # a folder pointing out
    loaded = load_image_folder(root)
    ok = [i.id for i in loaded.items if not isinstance(i, SampleError)]
    refused = {i.id: i.message for i in loaded.items if isinstance(i, SampleError)}
    assert ok == ["CT/inside.png"]
    assert "CT/link.png" in refused and "outside the data root" in refused["CT/link.png"]
    assert all(secret != f.resolve() for f in loaded.files)

    ixi = tmp_path / "IXI"
    _nii(ixi / "a" / "IXI001-T1.nii.gz")
    (ixi / "b").symlink_to(outside / "vol", target_is_directory=True)  # walked or not (Python
    (ixi / "a" / "IXI003-T1.nii.gz").symlink_to(outside / "vol" / "IXI002-T1.nii.gz")  # version)
    loaded = load_ixi(ixi)
    assert {i.id.split("#")[0] for i in loaded.items if not isinstance(i, SampleError)} == \
        {"a/IXI001-T1.nii.gz"}
    refused = [i for i in loaded.items if isinstance(i, SampleError)]
    assert "a/IXI003-T1.nii.gz" in [i.id for i in refused]
    assert all("outside the data root" in i.message for i in refused)
    assert all(outside not in f.resolve().parents for f in loaded.files)

    task1 = tmp_path / "Task1"
    for name in ("ct", "mr"):
        _nii(task1 / "brain" / "p1" / f"{name}.nii.gz")
    _nii(outside / "p2" / "ct.nii.gz")
    (task1 / "brain" / "p2").mkdir()
    (task1 / "brain" / "p2" / "ct.nii.gz").symlink_to(outside / "p2" / "ct.nii.gz")
    _nii(task1 / "brain" / "p2" / "mr.nii.gz")
    loaded = load_synthrad(task1, regions=["brain"], mask="none")  # no body masks written
    refused = [i for i in loaded.items if isinstance(i, SampleError)]
    assert [i.id for i in refused] == ["brain/p2/ct.nii.gz"]
    assert all(i.id.startswith("brain/p1#") for i in loaded.items if i not in refused)


def test_every_loader_declares_exactly_its_keyword_options() -> None:
    import inspect

    from healthbench.core.catalog import LOADERS

    for name in LOADERS.names():
        loader = LOADERS.get(name)
        params = [p for p in list(inspect.signature(loader).parameters)[1:]]
        assert sorted(getattr(loader, "options")) == sorted(params), name


@pytest.mark.parametrize("options, message", [
    ({"acess": ["Open-access"]}, "key 'dataset.options.acess': unknown option (allowed: access)"),
    ({"access": "Open-access"}, "key 'dataset.options.access': expected list, got str"),
    ({"access": [1]}, "key 'dataset.options.access': expected a list of str, got an item 1"),
    ({"access": ["Open"]}, "key 'dataset.options.access': 'Open' is not allowed (allowed: "
                           "Open-access, Restricted-access)"),
])
def test_loader_options_are_checked_like_every_other_task_key(
        tmp_path: Path, sample_data_root: Path, options, message) -> None:
    import yaml

    from healthbench.cli import main
    from healthbench.taskconfig.schema import TaskConfigError, parse_task
    from healthbench.run.prepare import load_task_data

    data = yaml.safe_load((Path(__file__).resolve().parent.parent / "tasks" / "omnimedvqa"
                           / "omnimedvqa_sample.yaml").read_text())
    data["task"], data["dataset"]["options"] = "omni_bad", options
    task = parse_task(data, "bad.yaml")
    with pytest.raises(TaskConfigError) as caught:
        load_task_data(task, sample_data_root)
    assert str(caught.value).startswith("bad.yaml: ") and message in str(caught.value)
    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks" / "bad.yaml").write_text(yaml.safe_dump(data))
    code = main(["run", "--model", "random", "--tasks", "omni_bad", "--include-path",
                 str(tmp_path / "tasks"), "--data-root", str(sample_data_root),
                 "--output-path", str(tmp_path / "out"), "--no-progress"])
    assert code == 2 and not (tmp_path / "out").exists()


def test_nested_and_required_options(tmp_path: Path) -> None:
    from healthbench.core.catalog import LOADERS
    from healthbench.data.options import OptionError, check_options

    check_options(LOADERS.get("ixi"), {"factor": 4, "slices": {"mode": "every", "step": 10,
                                                               "within": [0.3, 0.7]}}, "t.yaml",
                  "ixi")
    with pytest.raises(OptionError, match=r"t.yaml: key 'dataset.options.slices.mode': 'all' is "
                                          r"not allowed \(allowed: middle, every\)"):
        check_options(LOADERS.get("ixi"), {"slices": {"mode": "all"}}, "t.yaml", "ixi")
    with pytest.raises(OptionError, match=r"key 'dataset.options.factor': expected int, got bool"):
        check_options(LOADERS.get("ixi"), {"factor": True}, "t.yaml", "ixi")
    with pytest.raises(OptionError, match=r"key 'dataset.options.subtask': required option"):
        check_options(LOADERS.get("pmc_mi_bench"), {}, "t.yaml", "pmc_mi_bench")

    def third_party(root: Path, size: int = 3) -> None: ...

    check_options(third_party, {"size": "any type"}, "t.yaml", "x")
    with pytest.raises(OptionError, match=r"'dataset.options.colour': unknown option \(allowed: "
                                          r"size\)"):
        check_options(third_party, {"colour": 1}, "t.yaml", "x")


def _peak_bytes(fn) -> tuple[object, int]:
    import tracemalloc

    tracemalloc.start()
    try:
        out = fn()
        return out, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_nifti_slice_is_read_without_the_whole_volume(tmp_path: Path) -> None:
    from healthbench.core.types import ImageSource
    from healthbench.data.images import read_pixels

    shape = (256, 256, 128)  # 8M voxels: 64 MB once scaled to float64
    volume = (np.arange(np.prod(shape), dtype=np.int64) % 3000).astype(np.int16).reshape(shape)
    img = nib.Nifti1Image(volume, np.eye(4))
    img.header.set_slope_inter(2.0, -5.0)  # a scaled volume: nibabel returns float64
    path = tmp_path / "big.nii.gz"
    nib.save(img, str(path))
    pixels, peak = _peak_bytes(lambda: read_pixels(ImageSource(path=path, frame=100)))
    np.testing.assert_array_equal(pixels, np.rot90(volume[:, :, 100] * 2.0 - 5.0))
    slice_bytes = shape[0] * shape[1] * 8
    assert peak < 4 * slice_bytes + (4 << 20), peak  # ≈ one slice, not 64 MB

    four_d = tmp_path / "t.nii.gz"  # extra axes: their first index, as before
    nib.save(nib.Nifti1Image(np.arange(4 * 4 * 3 * 2, dtype=np.int16).reshape(4, 4, 3, 2),
                             np.eye(4)), str(four_d))
    data = np.arange(4 * 4 * 3 * 2, dtype=np.int16).reshape(4, 4, 3, 2)
    np.testing.assert_array_equal(read_pixels(ImageSource(path=four_d)), np.rot90(data[:, :, 1, 0]))


def test_a_nifti_decompression_bomb_under_the_voxel_cap_stays_in_the_stated_bound(
        tmp_path: Path) -> None:
    """95M zero voxels (under the 100M cap) compress to ~100 kB; reading a slice holds about one
    slice (1000×1000), never the 95 MB volume (760 MB as float64)."""
    from healthbench.core.types import ImageSource
    from healthbench.data.images import MAX_PIXELS, read_pixels

    shape = (1000, 1000, 95)
    assert np.prod(shape) <= MAX_PIXELS
    img = nib.Nifti1Image(np.zeros(shape, dtype=np.uint8), np.eye(4))
    img.header.set_slope_inter(1.5, 0.0)
    path = tmp_path / "bomb.nii.gz"
    nib.save(img, str(path))
    assert path.stat().st_size < 1 << 20
    pixels, peak = _peak_bytes(lambda: read_pixels(ImageSource(path=path)))
    assert pixels.shape == (1000, 1000) and not pixels.any()
    assert peak < 4 * 1000 * 1000 * 8 + (4 << 20), peak

"""Faults and hostile inputs: each is refused or recorded clearly, and nothing written is lost."""
from __future__ import annotations

import errno
import io
import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from healthbench.data.paths import UnsafePathError, resolve_inside
from healthbench.data.images import ImageError, load_image, read_pixels
from healthbench.run.evaluate import RunSpec, evaluate
from healthbench.models.base import Model
from healthbench.run.runner import RunSettings
from healthbench.results.samples import DiskFullError, SamplesWriter, read_samples
from healthbench.taskconfig.index import TaskIndex
from healthbench.core.types import ImageSource, Response
from tests.helpers import omnimed_item, task_yaml, write_omnimed


# ---- paths --------------------------------------------------------------------------------

def test_paths_outside_the_data_root_are_refused(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (tmp_path / "secret.png").write_bytes(b"x")
    (root / "link.png").symlink_to(tmp_path / "secret.png")
    with pytest.raises(UnsafePathError, match="contains '..'"):
        resolve_inside(root, "../secret.png", "f.json item 3")
    with pytest.raises(UnsafePathError, match="absolute path"):
        resolve_inside(root, str(tmp_path / "secret.png"), "f.json item 3")
    with pytest.raises(UnsafePathError, match="resolves outside the data root"):
        resolve_inside(root, "link.png", "f.json item 3")
    assert resolve_inside(root, "a/b.png", "x") == (root / "a" / "b.png").resolve()


# ---- images -------------------------------------------------------------------------------

def test_decompression_bomb_is_bounded(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "bomb.png"
    Image.new("1", (12000, 12000)).save(path)  # 144 Mpx that compress to a few kB
    assert path.stat().st_size < 200_000
    with pytest.raises(ImageError, match="exceeds the limit"):
        load_image(ImageSource(path=path))


@pytest.mark.parametrize("kind", ["png", "jpeg"])
def test_truncated_raster_images_are_errors_naming_the_file(tmp_path: Path, kind: str) -> None:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)) \
        .save(buf, format=kind)
    path = tmp_path / f"cut.{kind}"
    path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    with pytest.raises(ImageError, match=f"cut.{kind}"):
        load_image(ImageSource(path=path))


def test_truncated_dicom_and_nifti_are_errors(tmp_path: Path) -> None:
    from pydicom.data import get_testdata_file

    dcm = Path(get_testdata_file("CT_small.dcm")).read_bytes()
    cut = tmp_path / "cut.dcm"
    cut.write_bytes(dcm[: len(dcm) // 2])
    with pytest.raises(ImageError, match="cut.dcm"):
        read_pixels(ImageSource(path=cut))
    import nibabel as nib

    nii = tmp_path / "vol.nii.gz"
    noise = np.random.default_rng(0).random((20, 20, 10)).astype(np.float32)
    nib.save(nib.Nifti1Image(noise, np.eye(4)), nii)
    data = nii.read_bytes()
    cut_nii = tmp_path / "cut.nii.gz"
    cut_nii.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError, match="cut.nii.gz"):
        read_pixels(ImageSource(path=cut_nii))


def test_dicom_and_nifti_decode_to_rgb_for_models(tmp_path: Path) -> None:
    from pydicom.data import get_testdata_file

    ct = read_pixels(ImageSource(path=Path(get_testdata_file("CT_small.dcm"))))
    assert ct.shape == (128, 128) and ct.min() < 0  # Hounsfield units after rescale
    assert load_image(ImageSource(path=Path(get_testdata_file("CT_small.dcm")))).mode == "RGB"
    import nibabel as nib

    nii = tmp_path / "vol.nii.gz"
    nib.save(nib.Nifti1Image(np.arange(20 * 24 * 6, dtype=np.float32).reshape(20, 24, 6),
                             np.eye(4)), nii)
    assert read_pixels(ImageSource(path=nii, frame=2)).shape == (24, 20)
    with pytest.raises(ImageError, match="slice 9 out of range"):
        read_pixels(ImageSource(path=nii, frame=9))


# ---- model faults -------------------------------------------------------------------------

class FakeOOM(RuntimeError):
    pass


FakeOOM.__name__ = "OutOfMemoryError"


class OOMAbove4(Model):
    """Raises an out-of-memory error for batches larger than 4, like a GPU would."""

    capabilities = frozenset({"text"})

    def __init__(self) -> None:
        self.sizes: list[int] = []

    def generate(self, requests):
        self.sizes.append(len(requests))
        if len(requests) > 4:
            raise FakeOOM("CUDA out of memory. Tried to allocate 2.00 GiB")
        return [Response(text="A") for _ in requests]


def toy_tasks(tmp_path: Path, n: int):
    write_omnimed(tmp_path / "data", [omnimed_item(f"Images/x/{i}.png") for i in range(n)])
    (tmp_path / "tasks").mkdir(exist_ok=True)
    (tmp_path / "tasks" / "toy.yaml").write_text(task_yaml())
    return TaskIndex.build([tmp_path / "tasks"], builtin=False).resolve(["toy"])


def spec_for(tmp_path: Path, tasks, batch: int = 16) -> RunSpec:
    return RunSpec(model="x", model_args={}, tasks=tasks, data_root=tmp_path / "data",
                   output_path=tmp_path / "out", run_id="r",
                   settings=RunSettings(batch_size=batch, progress=False))


def test_out_of_memory_shrinks_the_batch_and_loses_nothing(tmp_path: Path) -> None:
    model = OOMAbove4()
    block = evaluate(spec_for(tmp_path, toy_tasks(tmp_path, 20)), model=model)["tasks"]["toy"]
    assert (block["n"], block["n_errors"]) == (20, 0)
    # 16 fails, 8 fails, then every call (the second batch of 4 included) stays at 4
    assert model.sizes[:2] == [16, 8] and max(model.sizes[2:]) <= 4


class FillingDisk:
    """Stands in for SamplesWriter's file object: the disk fills up after ``room`` whole lines.

    ``mode`` says where ENOSPC surfaces: in ``write`` (nothing of the line lands), in ``flush``
    (the line was buffered and never reaches the disk) or ``torn`` (half the line lands, then the
    error: a partial write)."""

    def __init__(self, fh, room: int, mode: str) -> None:
        self._fh, self.room, self.mode = fh, room, mode
        self.lines = 0
        self.pending = ""

    def _full(self) -> OSError:
        return OSError(errno.ENOSPC, "No space left on device")

    def write(self, text: str) -> int:
        if self.lines >= self.room:
            if self.mode == "write":
                raise self._full()
            if self.mode == "torn":
                self._fh.write(text[: len(text) // 2])
                self._fh.flush()
                raise self._full()
        self.pending += text
        return len(text)

    def flush(self) -> None:
        if self.pending:
            if self.lines >= self.room:
                self.pending = ""  # the disk took none of it
                raise self._full()
            self._fh.write(self.pending)
            self.lines += self.pending.count("\n")
            self.pending = ""
        self._fh.flush()

    def __getattr__(self, name: str):
        return getattr(self._fh, name)  # fileno, close, closed


@pytest.mark.parametrize("mode", ["write", "flush", "torn"])
def test_disk_full_is_a_clear_error_and_earlier_samples_survive(tmp_path: Path, monkeypatch,
                                                                 mode: str) -> None:
    real_init = SamplesWriter.__init__

    def init_on_a_filling_disk(self, path):
        real_init(self, path)
        self._fh = FillingDisk(self._fh, room=5, mode=mode)

    monkeypatch.setattr(SamplesWriter, "__init__", init_on_a_filling_disk)
    samples = tmp_path / "out" / "r" / "toy" / "samples.jsonl"
    with pytest.raises(DiskFullError, match="disk full while writing .*5 samples written") as info:
        evaluate(spec_for(tmp_path, toy_tasks(tmp_path, 12), batch=2), model=OOMAbove4())
    assert info.value.errno == errno.ENOSPC
    assert isinstance(info.value.__cause__, OSError)  # samples_io converted the raw error
    before = samples.read_bytes()
    complete = before[: before.rfind(b"\n") + 1]
    assert complete.count(b"\n") == 5
    assert (before == complete) == (mode != "torn")
    kept = read_samples(samples)
    assert len(kept) == 5
    monkeypatch.setattr(SamplesWriter, "__init__", real_init)  # space freed: rerun
    block = evaluate(spec_for(tmp_path, toy_tasks(tmp_path, 12), batch=2),
                     model=OOMAbove4())["tasks"]["toy"]
    assert (block["n"], block["n_errors"]) == (12, 0)
    after = samples.read_bytes()
    assert after.startswith(complete), "the samples written before the disk filled changed"
    ids = [json.loads(line)["id"] for line in after.decode().splitlines()]
    assert len(ids) == len(set(ids)) == 12
    assert set(ids[:5]) == set(kept)


# ---- text and JSON ------------------------------------------------------------------------

def test_non_utf8_and_huge_text_fields_do_not_stop_the_run(tmp_path: Path) -> None:
    items = [omnimed_item("Images/x/0.png", question="Q " * 200_000),
             omnimed_item("Images/x/1.png", question="Was ist das? \u00e9\u4e2d\U0001f600")]
    base = write_omnimed(tmp_path / "data", items)
    (base / "QA_information" / "Open-access" / "Latin1.json").write_bytes(
        json.dumps([omnimed_item("Images/x/0.png", question="caf\u00e9")]).encode()
        .replace(b"caf\\u00e9", "café".encode("latin-1")))
    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks" / "toy.yaml").write_text(task_yaml())
    tasks = TaskIndex.build([tmp_path / "tasks"], builtin=False).resolve(["toy"])
    block = evaluate(spec_for(tmp_path, tasks), model=OOMAbove4())["tasks"]["toy"]
    assert (block["n"], block["n_errors"]) == (2, 1)
    rows = read_samples(tmp_path / "out" / "r" / "toy" / "samples.jsonl")
    assert "unreadable QA file" in rows["Open-access/Latin1/*"].error


def test_nan_and_inf_never_reach_the_json_files(tmp_path: Path) -> None:
    from healthbench.results.samples import dumps

    line = dumps({"scores": {"a": float("nan"), "b": float("inf"), "c": 1.0}})
    assert json.loads(line) == {"scores": {"a": None, "b": None, "c": 1.0}}


# ---- secrets ------------------------------------------------------------------------------

def test_secret_model_args_never_reach_results_or_logs(tmp_path: Path, capfd) -> None:
    from healthbench.cli import main

    toy_tasks(tmp_path, 3)
    code = main(["run", "--model", "random", "--model-args", "seed=1,api_key=sk-SECRET123",
                 "--tasks", "toy", "--include-path", str(tmp_path / "tasks"), "--data-root",
                 str(tmp_path / "data"), "--output-path", str(tmp_path / "out"),
                 "--run-id", "r", "--no-progress"])
    assert code == 2  # random takes no api_key: refused, and the refusal does not echo it
    captured = capfd.readouterr()
    assert "sk-SECRET123" not in captured.out + captured.err
    for root, _, files in os.walk(tmp_path / "out"):
        for name in files:
            assert "sk-SECRET123" not in (Path(root) / name).read_text(errors="replace")


def test_json_with_duplicate_keys_is_a_clear_error(tmp_path: Path) -> None:
    base = write_omnimed(tmp_path / "data", [omnimed_item("Images/x/0.png")])
    qa = base / "QA_information" / "Open-access" / "Dup.json"
    qa.write_text('[{"question": "Q", "gt_answer": "CT", "gt_answer": "MRI", "image_path": '
                  '"Images/x/0.png", "option_A": "CT", "option_B": "MRI", '
                  '"modality_type": "CT", "question_type": "x"}]')
    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks" / "toy.yaml").write_text(task_yaml())
    tasks = TaskIndex.build([tmp_path / "tasks"], builtin=False).resolve(["toy"])
    block = evaluate(spec_for(tmp_path, tasks), model=OOMAbove4())["tasks"]["toy"]
    assert (block["n"], block["n_errors"]) == (1, 1)
    rows = read_samples(tmp_path / "out" / "r" / "toy" / "samples.jsonl")
    assert "duplicate key 'gt_answer'" in rows["Open-access/Dup/*"].error
    assert "Dup.json" in rows["Open-access/Dup/*"].error


def test_nan_and_inf_in_reference_labels_are_handled_explicitly() -> None:
    from healthbench.suites.mimic_cxr.loader import csv_labels
    from healthbench.suites.mimic_cxr.labels import BLANK, CHEXPERT_LABELS

    row = {name: "" for name in CHEXPERT_LABELS}
    assert csv_labels({**row, "Edema": "nan"}, "negative")["Edema"] == BLANK  # pandas' blank
    with pytest.raises(ValueError, match="column 'Edema' has 'inf'"):
        csv_labels({**row, "Edema": "inf"}, "negative")
    with pytest.raises(ValueError, match="column 'Edema' has 'NaN'"):
        csv_labels({**row, "Edema": "NaN"}, "negative")


def test_a_sample_builder_never_deletes_a_folder_it_did_not_build(tmp_path: Path) -> None:
    from healthbench.run.prepare import SampleTargetError, ensure_sample_data
    from healthbench.taskconfig.schema import parse_task

    precious = tmp_path / "root" / "Mine"
    precious.mkdir(parents=True)
    (precious / "keep.txt").write_text("x")
    base = {"task": "t", "version": "1", "output": "text", "prompt": "{question}",
            "metrics": ["accuracy"], "extract": "choice_letter"}
    for path in ("", "Mine"):
        task = parse_task({**base, "dataset": {"format": "omnimedvqa", "path": path,
                                               "sample_builder": "omnimedvqa_sample"}}, "t.yaml")
        with pytest.raises(SampleTargetError):
            ensure_sample_data(task, tmp_path / "root")
    assert (precious / "keep.txt").read_text() == "x"

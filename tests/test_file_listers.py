"""Every loader's file list (``data.paths.declare_files``) is exactly the ``files`` it loads.

A finished run is recognised from the data checksum over the listed files alone
(``run.prepare.listed_checksum``), so a list that differed from what the loader reads would
either re-run finished work or, worse, accept a run made on other data. Each case builds the
small real-format dataset the suite's own tests build, with files the loader must skip (other
splits, other sequences, refused symlinks, patients missing a volume), and compares the list
with the load for the default options and for options that change which files are read.
"""
from __future__ import annotations

import builtins
import inspect
import json
import shutil
from pathlib import Path
from typing import Any, Callable

import nibabel as nib
import numpy as np
import pytest

from healthbench.core.catalog import LOADERS
from helpers import write_png
from test_generation import write_ixi, write_synthrad
from test_medvqa import write_hub_parquet, write_pmc, write_slake, write_vqa_rad_osf
from test_mimic_cxr import write_mimic
from test_mimic_cxr_protocols import write_llava_rad, write_unix
from test_mmmu import ROWS, write_mmmu
from test_mmoral import write_opg, write_uni
from test_pmc_mi_bench import write_pmc as write_pmc_mi_bench

#: Loaders that cannot list their files without reading them, each with the reason. Empty
#: today: every built-in loader's files are found by listing folders and checking names. A
#: loader added without a lister fails ``test_every_loader_lists_its_files_or_says_why_not``
#: until it gets one or an entry here.
CANNOT_LIST: dict[str, str] = {}


def _nii(path: Path, shape: tuple[int, int, int] = (8, 8, 6)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(np.arange(np.prod(shape), dtype=np.int16).reshape(shape),
                             np.eye(4)), str(path))


def _image_folder(tmp: Path) -> Path:
    root = tmp / "images"
    write_png(root / "CT" / "b.png")
    write_png(root / "a.png", seed=1)
    _nii(root / "MR" / "vol.nii.gz")
    (root / "notes.txt").write_text("not an image")
    write_png(tmp / "outside" / "secret.png")
    (root / "CT" / "link.png").symlink_to(tmp / "outside" / "secret.png")  # refused
    return root


def _ixi(tmp: Path) -> Path:
    write_ixi(tmp)
    root = tmp / "IXI"
    _nii(root / "IXI-T2" / "IXI007-HH-T2.nii.gz")
    _nii(root / "other" / "brain.nii.gz")  # not an IXI name: never read
    _nii(tmp / "outside" / "IXI009-T1.nii.gz")
    (root / "IXI-T1" / "IXI009-T1.nii.gz").symlink_to(tmp / "outside" / "IXI009-T1.nii.gz")
    return root


def _synthrad(tmp: Path) -> Path:
    root = write_synthrad(tmp)
    for name in ("ct", "mr"):  # no body mask: an error row with mask: body, read with none
        _nii(root / "brain" / "1BA009" / f"{name}.nii.gz")
    _nii(tmp / "outside" / "ct.nii.gz")
    for name in ("mr", "mask"):
        _nii(root / "pelvis" / "1PA011" / f"{name}.nii.gz")
    (root / "pelvis" / "1PA011" / "ct.nii.gz").symlink_to(tmp / "outside" / "ct.nii.gz")
    (root / "brain" / "README.txt").write_text("not a patient")
    return root


def _mmmu(tmp: Path) -> Path:
    root = write_mmmu(tmp)
    write_mmmu(tmp, {"Pharmacy": ROWS["Pharmacy"]}, split="dev")
    return root


def _vqa_rad(tmp: Path) -> Path:
    root = write_vqa_rad_osf(tmp)  # both layouts in one folder: ``layout`` picks
    write_hub_parquet(root, "test", [[("is there effusion?", "yes")], [("is it normal?", "no")]])
    write_hub_parquet(root, "train", [[("is there a mass?", "no")]])
    return root


def _vqa_rad_hub_only(tmp: Path) -> Path:
    root = tmp / "VQA-RAD"
    write_hub_parquet(root, "test", [[("is there effusion?", "yes")]])
    return root


def _slake(tmp: Path) -> Path:
    root = write_slake(tmp)
    shutil.copyfile(root / "test.json", root / "train.json")
    return root


def _pathvqa(tmp: Path) -> Path:
    root = tmp / "PathVQA"
    write_hub_parquet(root, "test", [[("is this necrotic?", "yes")], [("what stain?", "H&E")]])
    write_hub_parquet(root, "validation", [[("is there fibrosis?", "no")]])
    return root


def _pmc_vqa(tmp: Path) -> Path:
    from test_medvqa import pmc_row

    write_pmc(tmp, [pmc_row(0, "B"), pmc_row(1, "A")])
    return write_pmc(tmp, [pmc_row(2, "C")], name="test_clean.csv")


def _with_copy(root: Path, name: str, copy: str) -> Path:
    shutil.copyfile(root / name, root / copy)
    return root


def _cxr_findings(tmp: Path) -> Path:
    root = tmp / "cxr"
    write_png(root / "img" / "a.jpg")
    (root / "test.jsonl").write_text(json.dumps({"image": "img/a.jpg", "findings": "Clear."}))
    (root / "other.csv").write_text("image,findings\nimg/a.jpg,No effusion.\n")
    return root


def _mimic_no_metadata(tmp: Path) -> Path:
    root = write_mimic(tmp)
    (root / "mimic-cxr-2.0.0-metadata.csv").unlink()
    return root


def _mimic_split_only(tmp: Path) -> Path:
    """Only the split CSV, gzipped: the optional CSVs are absent, not listed."""
    import gzip

    root = write_mimic(tmp)
    for name in ("mimic-cxr-2.0.0-chexpert.csv", "mimic-cxr-2.0.0-metadata.csv"):
        (root / name).unlink()
    split = root / "mimic-cxr-2.0.0-split.csv"
    (root / "mimic-cxr-2.0.0-split.csv.gz").write_bytes(gzip.compress(split.read_bytes()))
    split.unlink()
    return root


#: Loaders none of whose options changes which files they read.
NO_FILE_OPTIONS = {"image_folder"}

#: (format, builder of the data folder, option sets to compare: the defaults first). Where the
#: loader refuses an option set (a file it needs is absent) the lister must refuse it too.
CASES: list[tuple[str, Callable[[Path], Path], list[dict[str, Any]]]] = [
    ("image_folder", _image_folder, [{}, {"modality": "CT", "slices": {"mode": "all"}}]),
    ("ixi", _ixi, [{}, {"sequence": "T2"}, {"sequence": "T1", "factor": 2}]),
    ("synthrad2023", _synthrad, [{}, {"mask": "none"},
                                 {"regions": ["pelvis"], "direction": "ct2mr"}]),
    ("mmmu", _mmmu, [{}, {"subjects": ["Pharmacy"], "splits": ["dev", "validation"]}]),
    ("vqa_rad", _vqa_rad, [{}, {"layout": "hub"}, {"layout": "hub", "split": "train"},
                           {"layout": "osf", "split": "train"}]),
    ("vqa_rad", _vqa_rad_hub_only, [{}, {"layout": "osf"}]),  # auto → hub; no OSF file
    ("slake", _slake, [{}, {"split": "train", "languages": ["en", "zh"]}]),
    ("pathvqa", _pathvqa, [{}, {"split": "validation"}]),
    ("pmc_vqa", _pmc_vqa, [{}, {"file": "test_clean.csv"}]),
    ("pmc_mi_bench", write_pmc_mi_bench, [{"subtask": "puretext"}, {"subtask": "bboxVQA"}]),
    ("mmoral_opg", write_opg, [{}, {"splits": ["open"]}, {"splits": ["open", "closed"]}]),
    ("mmoral_uni", lambda tmp: _with_copy(write_uni(tmp), "MMOral-Omni-Bench.tsv", "v2.tsv"),
     [{}, {"file": "v2.tsv"}]),
    ("mimic_cxr", write_mimic, [{}]),  # all three CSVs: every option set reads them all
    ("mimic_cxr", _mimic_no_metadata, [{}, {"reference_labels": "csv"}, {"views": ["PA"]}]),
    ("mimic_cxr", _mimic_split_only, [{}, {"reference_labels": "csv"}, {"views": ["PA"]}]),
    ("cxr_findings", _cxr_findings, [{}, {"file": "other.csv"}]),
    ("llava_rad_findings", lambda tmp: _with_copy(
        write_llava_rad(tmp), "chat_test_MIMIC_CXR_all_gpt4extract_rulebased_v1.json", "v.json"),
     [{}, {"file": "v.json", "split": "train"}]),
    ("unix_test_data", lambda tmp: _with_copy(write_unix(tmp), "test_data.json", "copy.json"),
     [{}, {"file": "copy.json"}]),
]


@pytest.mark.parametrize("name, build, option_sets", CASES,
                         ids=[f"{c[0]}-{n}" for n, c in enumerate(CASES)])
def test_the_listed_files_are_exactly_the_loaded_files(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str,
        build: Callable[[Path], Path], option_sets: list[dict[str, Any]]) -> None:
    root = build(tmp_path)
    loader = LOADERS.get(name)
    outcomes: list[list[Path] | None] = []  # None: refused
    for options in option_sets:
        try:
            loaded = loader(root, **options).files
        except (FileNotFoundError, ValueError):
            with pytest.raises((FileNotFoundError, ValueError)):
                loader.list_files(root, **options)
            outcomes.append(None)
            continue
        assert loader.list_files(root, **options) == loaded, (name, options)
        outcomes.append(loaded)
    assert outcomes[0], name  # the defaults load files: a case that loads none proves nothing
    if len(option_sets) > 1 and name not in NO_FILE_OPTIONS:  # options chosen to change them
        assert any(other != outcomes[0] for other in outcomes[1:]), name
    # Listing reads no file: with every listed file's bytes replaced by junk and Python's
    # ``open`` refused, the lists are the same.
    for path in {p for listed in outcomes if listed for p in listed}:
        path.write_bytes(b"\0junk, not the dataset\n")
    with monkeypatch.context() as patched:
        patched.setattr(builtins, "open", _refuse_open)
        again = [loader.list_files(root, **options)
                 for options, listed in zip(option_sets, outcomes) if listed is not None]
    assert again == [listed for listed in outcomes if listed is not None]


def _refuse_open(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError(f"a file lister opened {args[0] if args else kwargs}")


def test_every_loader_lists_its_files_or_says_why_not() -> None:
    for name in LOADERS.names():
        loader = LOADERS.get(name)
        assert hasattr(loader, "list_files") != (name in CANNOT_LIST), (
            f"loader {name!r}: give it a file lister (data.paths.declare_files) or add it to "
            "CANNOT_LIST with the reason")
    tested = {case[0] for case in CASES}
    assert tested == {n for n in LOADERS.names()
                      if n not in CANNOT_LIST and n != "omnimedvqa"}  # test_finished_resume


def test_each_lister_takes_exactly_its_loaders_options_and_defaults() -> None:
    """``listed_checksum`` calls the lister with the task's options: same names, same
    defaults, so an option left out uses the same value in both."""
    for name in LOADERS.names():
        loader = LOADERS.get(name)
        lister = getattr(loader, "list_files", None)
        if lister is None:
            continue
        shape = [(p.name, p.default, p.kind) for p in inspect.signature(loader).parameters.values()]
        assert [(p.name, p.default, p.kind)
                for p in inspect.signature(lister).parameters.values()] == shape, name


SAMPLE_TASKS = ["reconstruction_sample", "super_resolution_sample", "mimic_cxr_sample",
                "mmmu_med_sample", "pathvqa_sample", "pmc_mi_bench_sample_spatial",
                "pmc_vqa_sample", "slake_sample", "vqa_rad_sample"]


@pytest.mark.parametrize("name", SAMPLE_TASKS)
def test_a_shipped_tasks_listed_checksum_is_the_loaded_one(sample_data_root: Path,
                                                           name: str) -> None:
    """Through ``run.prepare`` with a shipped task file's own options: the checksum (and the
    per-file checksums) from the list equal those the load records."""
    from healthbench.run.prepare import listed_checksum, load_task_data
    from healthbench.taskconfig.index import TaskIndex

    (task,) = TaskIndex.build().resolve([name])
    loaded, checksum = load_task_data(task, sample_data_root)
    assert listed_checksum(task, sample_data_root) == (checksum, loaded.file_checksums)

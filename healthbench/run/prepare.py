"""From a task config and a data root to the task's samples (building bundled samples if needed)."""
from __future__ import annotations

import shutil
from pathlib import Path

from healthbench.core.catalog import LOADERS, SAMPLE_BUILDERS
from healthbench.data.bulk import gc_paused
from healthbench.data.paths import LoadedDataset, data_checksum, one_pass, resolve_inside
from healthbench.data.options import OptionError, check_options
from healthbench.taskconfig.schema import TaskConfig, TaskConfigError

BUILT_MARKER = ".healthbench-sample-complete"


def dataset_dir(task: TaskConfig, data_root: Path) -> Path:
    return resolve_inside(data_root, task.dataset.path or ".", f"{task.source}: dataset.path")


class SampleTargetError(ValueError):
    """A sample suite would be built over a folder healthbench did not make."""


def ensure_sample_data(task: TaskConfig, data_root: Path) -> None:
    """Build a bundled sample suite at first use: into a ``.building`` folder, then renamed into
    place, so a build killed half-way is redone rather than half-used. An existing folder that
    healthbench did not build (no marker) is never deleted or written into."""
    if not task.dataset.sample_builder:
        return
    target = dataset_dir(task, data_root)
    if target == data_root.resolve() or not task.dataset.path:
        raise SampleTargetError(f"{task.source}: key 'dataset.path': a task with a "
                                "sample_builder needs its own folder under the data root")
    if (target / BUILT_MARKER).exists():
        return
    if target.exists():
        raise SampleTargetError(
            f"{target} exists but was not built by healthbench (no {BUILT_MARKER}); move it "
            f"away or point {task.source}'s dataset.path elsewhere: it is never overwritten")
    staging = target.with_name(target.name + ".building")
    shutil.rmtree(staging, ignore_errors=True)  # only our own half-built folder
    staging.mkdir(parents=True)
    SAMPLE_BUILDERS.get(task.dataset.sample_builder)(staging)
    (staging / BUILT_MARKER).write_text("built by healthbench\n")
    staging.rename(target)


class ManifestMismatchError(ValueError):
    """The data on disk is not the data the task file pins (its ``manifest``)."""


def load_task_data(task: TaskConfig, data_root: Path) -> tuple[LoadedDataset, str]:
    """The task's samples and the checksum of the files they came from, checked against the
    task's ``manifest`` (file count, sample count, checksum) when it has one."""
    loader = LOADERS.get(task.dataset.format)
    try:  # the options are checked before anything is built or read
        check_options(loader, task.dataset.options, task.source, task.dataset.format)
    except OptionError as exc:
        raise TaskConfigError(str(exc)) from None
    ensure_sample_data(task, data_root)
    root = dataset_dir(task, data_root)
    # each folder resolved once for the whole pass (data.paths); no collections while 100k
    # acyclic sample records are built (data.bulk)
    with one_pass(), gc_paused():
        loaded: LoadedDataset = loader(root, **task.dataset.options)
    checksum = data_checksum(loaded.files, root, loaded.file_checksums)
    wrong = manifest_problems(task, {"files": len(loaded.files), "samples": len(loaded.items),
                                     "checksum": checksum})
    if wrong:
        raise ManifestMismatchError(f"{root}: the data does not match the manifest in "
                                    f"{task.source}: {'; '.join(wrong)}")
    return loaded, checksum


def manifest_problems(task: TaskConfig, found: dict[str, object]) -> list[str]:
    """How the data found differ from the task's ``manifest`` (none: they agree)."""
    return [f"{key} {expected!r} expected, {found[key]!r} found"
            for key, expected in task.manifest.items() if found[key] != expected]


def listed_checksum(task: TaskConfig, data_root: Path) -> tuple[str, dict[str, str]] | None:
    """The data checksum and per-file checksums ``load_task_data`` would record, from the
    loader's file list (``data.paths.declare_files``) without loading a sample; None when the
    loader has no list or anything is amiss (the ordinary load then says what)."""
    loader = LOADERS.get(task.dataset.format)
    lister = getattr(loader, "list_files", None)
    if lister is None:
        return None
    try:
        check_options(loader, task.dataset.options, task.source, task.dataset.format)
        root = dataset_dir(task, data_root)
        if task.dataset.sample_builder and not (root / BUILT_MARKER).exists():
            return None
        per_file: dict[str, str] = {}
        checksum = data_checksum(lister(root, **task.dataset.options), root, per_file)
    except Exception:  # a probe: the ordinary load reports the same problem properly
        return None
    return checksum, per_file


def subsample_items(items: list, k: int, seed: int) -> list:
    """A deterministic subsample in dataset order: ``random.Random(seed).sample(range(N), k)``,
    sorted (the M3LLM-v2 ``eval_sample_num`` rule), so the same seed picks the same samples."""
    import random

    if k >= len(items):
        return list(items)
    picked = sorted(random.Random(seed).sample(range(len(items)), k))
    return [items[i] for i in picked]

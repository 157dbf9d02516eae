"""Resolving and loading lm-eval tasks for the bridge (``healthbench.run.lmeval``): lm-eval's
``TaskManager`` over its built-in tasks plus ``--lmeval-include-path`` folders, task code refused
unless allowed, loading with the hub offline unless allowed, and the model's capabilities checked
before anything is generated."""
from __future__ import annotations

import random
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

from healthbench.models.base import Model
from healthbench.run.lmeval_safety import (LmevalTaskError, hub_access, include_path_yaml,
                                           needs_hub, needs_hub_error, refuse_task_code,
                                           resolved_yaml, scan_for_task_code)

NEEDS = {"generate_until": "text", "multiple_choice": "loglikelihood",
         "loglikelihood": "loglikelihood"}


@contextmanager
def isolated_random_state(seed: int) -> Iterator[None]:
    """Within: Python's, numpy's and (if already imported) torch's global generators seeded with
    ``seed``; on exit each is put back exactly as it was."""
    import sys

    import numpy as np

    torch = sys.modules.get("torch")
    saved = (random.getstate(), np.random.get_state(),
             torch.random.get_rng_state() if torch is not None else None)
    random.seed(seed)
    np.random.seed(seed)
    if torch is not None:
        torch.manual_seed(seed)
    try:
        yield
    finally:
        random.setstate(saved[0])
        np.random.set_state(saved[1])
        if torch is not None:
            torch.random.set_rng_state(saved[2])


@dataclass
class LmevalPlan:
    """Loaded lm-eval tasks, ready to run; ``loaded`` is ``TaskManager.load``'s TaskDict."""

    names: list[str]
    manager: Any
    loaded: dict[str, Any]
    allow_download: bool = False


def _task_manager(names: Sequence[str], include_paths: Sequence[Path]) -> Any:
    from lm_eval.tasks import TaskManager

    paths = [str(Path(p).resolve()) for p in include_paths]
    for path in paths:
        if not Path(path).is_dir():
            raise LmevalTaskError(f"--lmeval-include-path: {path} is not a folder")
    if paths:
        manager = TaskManager(include_path=paths, include_defaults=False)
        if all(name in manager.all_tasks for name in names):
            return manager  # every name is local: skip indexing lm-eval's built-in tasks
    manager = TaskManager(include_path=paths or None)
    unknown = [name for name in names if name not in manager.all_tasks]
    if unknown:
        raise LmevalTaskError(f"unknown lm-eval task(s): {', '.join(unknown)} (see "
                              "`lm-eval ls tasks`, or add --lmeval-include-path DIR)")
    return manager


def one_line(exc: BaseException, limit: int = 300) -> str:
    text = " ".join(str(exc).split())
    text = text if len(text) <= limit else text[:limit - 1] + "…"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _load(manager: Any, names: Sequence[str], allow_download: bool) -> dict[str, Any]:
    # loading draws from the global generators (datasets, task set-up): isolated, like the run
    with hub_access(allow_download), isolated_random_state(0):
        try:
            return manager.load(list(names))
        except Exception as exc:
            culprit = ", ".join(names)
            for name in [*_leaf_names(manager, names), *names]:  # which one: each alone
                try:
                    manager.load([name])
                except Exception:
                    culprit = name
                    break
            if not allow_download and needs_hub(exc):
                raise needs_hub_error(culprit) from exc
            raise LmevalTaskError(f"lm-eval could not load task {culprit}: "
                                  f"{one_line(exc)}") from exc


def _leaf_names(manager: Any, names: Sequence[str]) -> list[str]:
    index = getattr(manager, "task_index", {}) or {}
    out: list[str] = []
    todo, done = list(names), set()
    while todo:
        name = todo.pop(0)
        if not isinstance(name, str) or name in done or name not in index:
            continue
        done.add(name)
        entry = index[name]
        cfg = getattr(entry, "cfg", None) or {}
        members = cfg.get("task") if "group" in cfg else None
        if isinstance(members, (list, tuple)):
            todo += [m for m in members if isinstance(m, str)]
        elif getattr(entry, "tags", None) and not getattr(entry, "yaml_path", None):
            todo += sorted(entry.tags)
        else:
            out.append(name)
    return out


def prepare(names: Sequence[str], include_paths: Sequence[Path], model: Model,
            model_name: str, *, allow_task_code: bool = False,
            allow_download: bool = False) -> LmevalPlan:
    """Resolve and load the tasks; refuse those the model cannot run, before any generation.
    Task code (``!function``) is refused unless ``allow_task_code``; loading happens with the
    hub offline unless ``allow_download``."""
    if not allow_task_code:  # before lm-eval reads a file of the include paths
        found: list[str] = []
        scan_for_task_code(include_path_yaml(include_paths), found, set())
        refuse_task_code(found)
    manager = _task_manager(names, include_paths)
    if not allow_task_code:
        found = []
        scan_for_task_code(resolved_yaml(manager, names), found, set())
        refuse_task_code(found)
    loaded = _load(manager, names, allow_download)
    for name, task in loaded["tasks"].items():
        output_type = task.get_config("output_type")
        needed = NEEDS.get(output_type)
        if needed is None:
            raise LmevalTaskError(f"lm-eval task {name!r}: output type {output_type!r} is not "
                                  f"supported (healthbench runs {', '.join(NEEDS)})")
        if needed not in model.capabilities:
            raise LmevalTaskError(
                f"model {model_name!r} cannot run lm-eval task {name!r} ({output_type}): it "
                f"needs {needed} but the model offers {', '.join(sorted(model.capabilities))}")
    return LmevalPlan(list(names), manager, loaded, allow_download)

"""Safety of the lm-eval bridge (task files never import code; data is never downloaded
implicitly).

* A task YAML that names Python code with ``!function`` (lm-eval imports and runs that file) is
  refused unless ``allow_task_code`` (``--allow-task-code``). Every YAML file under the include
  paths is scanned before lm-eval reads any of them, then the resolved configs of the requested
  tasks (their ``include:`` chains, group members, tag members). lm-eval's own task folder, part
  of the installed package, is trusted like the rest of that package.
* Loading and evaluation run with the Hugging Face hub offline (``HF_DATASETS_OFFLINE`` /
  ``HF_HUB_OFFLINE``) unless ``allow_download`` (``--allow-download``): a task whose dataset is
  not in the ``datasets`` cache (``HF_DATASETS_CACHE``) and not local is a one-line error naming
  the task. Any other lm-eval failure is a one-line ``LmevalTaskError`` naming the task(s); the
  original exception is chained (``--debug`` shows it).
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Sequence

OFFLINE_ENV = ("HF_DATASETS_OFFLINE", "HF_HUB_OFFLINE")
TASK_CODE_TAG = "!function"


class LmevalTaskError(ValueError):
    """An lm-eval task that cannot run here (unknown, unloadable, or beyond the model)."""


def _lm_eval_dir() -> Path | None:
    try:
        import lm_eval
    except ImportError:
        return None
    return Path(lm_eval.__file__).resolve().parent


def _function_tags(path: Path) -> tuple[list[str], list[Path]]:
    """(``file:line`` of every ``!function`` tag, files named by ``include:``) of one YAML file.
    The file is composed (parsed to nodes), never constructed: nothing in it runs."""
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return [], []
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:  # unparseable here: refuse on the bare tag, as lm-eval would read it
        return [f"{path}:{i + 1}" for i, line in enumerate(text.splitlines())
                if TASK_CODE_TAG in line], []
    found: list[str] = []
    includes: list[Path] = []
    stack = [root] if root is not None else []
    seen: set[int] = set()
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if node.tag == TASK_CODE_TAG:
            found.append(f"{path}:{node.start_mark.line + 1}")
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                stack += [key, value]
                if node is root and isinstance(key, yaml.ScalarNode) and key.value == "include":
                    items = value.value if isinstance(value, yaml.SequenceNode) else [value]
                    includes += [path.parent / str(item.value) for item in items
                                 if isinstance(item, yaml.ScalarNode)]
        elif isinstance(node, yaml.SequenceNode):
            stack += list(node.value)
    return sorted(found), includes


def scan_for_task_code(paths: Iterable[Path], found: list[str], seen: set[Path]) -> None:
    """Add the ``!function`` uses of ``paths`` and of their ``include:`` chains to ``found``;
    files inside the installed lm-eval package are trusted."""
    trusted = _lm_eval_dir()
    for path in paths:
        path = Path(path).resolve()
        if path in seen or not path.is_file():
            continue
        seen.add(path)
        if trusted is not None and trusted in path.parents:
            continue
        tags, includes = _function_tags(path)
        found += tags
        scan_for_task_code(includes, found, seen)


def include_path_yaml(include_paths: Sequence[Path]) -> list[Path]:
    out: list[Path] = []
    for folder in include_paths:
        if Path(folder).is_dir():
            out += sorted(p for pattern in ("*.yaml", "*.yml")
                          for p in Path(folder).rglob(pattern) if p.is_file())
    return out


def resolved_yaml(manager: Any, names: Sequence[str]) -> list[Path]:
    """The YAML files the requested names resolve to: tasks, group and tag members."""
    index = getattr(manager, "task_index", {}) or {}
    out: list[Path] = []
    todo, done = list(names), set()
    while todo:
        name = todo.pop()
        if not isinstance(name, str) or name in done:
            continue
        done.add(name)
        entry = index.get(name)
        if entry is None:
            continue
        if getattr(entry, "yaml_path", None):
            out.append(Path(entry.yaml_path))
        cfg = getattr(entry, "cfg", None) or {}
        members = cfg.get("task") if "group" in cfg else None
        if isinstance(members, (list, tuple)):
            todo += [m for m in members if isinstance(m, str)]
        todo += sorted(getattr(entry, "tags", ()) or ())
    return out


def refuse_task_code(found: Sequence[str]) -> None:
    if found:
        shown = ", ".join(found[:3]) + (f" and {len(found) - 3} more" if len(found) > 3 else "")
        raise LmevalTaskError(
            f"lm-eval task config uses {TASK_CODE_TAG} (it would import and run Python code): "
            f"{shown}; pass --allow-task-code to run task code you trust")


@contextmanager
def hub_access(allow_download: bool):
    """Within: the Hugging Face hub offline (env and the already-imported libraries' flags),
    unless ``allow_download``. Restored on exit."""
    if allow_download:
        yield
        return
    import sys

    saved_env = {key: os.environ.get(key) for key in OFFLINE_ENV}
    flags = [(sys.modules.get(mod), attr) for mod, attr in (
        ("datasets.config", "HF_HUB_OFFLINE"), ("datasets.config", "HF_DATASETS_OFFLINE"),
        ("huggingface_hub.constants", "HF_HUB_OFFLINE"))]
    flags = [(mod, attr, getattr(mod, attr)) for mod, attr in flags
             if mod is not None and hasattr(mod, attr)]
    for key in OFFLINE_ENV:
        os.environ[key] = "1"
    for mod, attr, _ in flags:
        setattr(mod, attr, True)
    try:
        yield
    finally:
        for mod, attr, value in flags:
            setattr(mod, attr, value)
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def needs_hub(exc: BaseException) -> bool:
    """Whether ``exc`` (or what it wraps) is the hub being unreachable in offline mode."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        name = type(current).__name__
        text = str(current).lower()
        if isinstance(current, ConnectionError) or name in {
                "OfflineModeIsEnabled", "LocalEntryNotFoundError"} or "offline" in text:
            return True
        current = current.__cause__ or current.__context__
    return False


def needs_hub_error(task: str) -> LmevalTaskError:
    return LmevalTaskError(
        f"lm-eval task {task} needs its dataset from the Hugging Face hub; pass "
        "--allow-download or point the task at local files")

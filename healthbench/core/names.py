"""Names that become paths (task names, run ids), and the check that every write stays inside
the output folder.

A task name becomes ``<output>/<run-id>/<task>/``; a run id becomes ``<output>/<run-id>/``. Both
are therefore held to a path-safe pattern at the boundary where they enter (the task file, the
``--run-id`` flag), and every path a run writes is additionally resolved and checked against the
output folder before writing, so a name that slipped past (a task built in Python, a symlink in
the output folder) still cannot write elsewhere.
"""
from __future__ import annotations

import re
from pathlib import Path

#: Letters, digits, ``.``, ``_`` and ``-``; no leading dot (no ``..``, no hidden folders), no
#: separators, at most 200 characters.
SAFE_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,199}")


class UnsafeNameError(ValueError):
    """A task name or run id that could not safely be a folder name."""


class OutsideOutputError(ValueError):
    """A path a run was about to write lies outside its output folder."""


def check_name(name: object, where: str) -> str:
    """``name`` if it is path-safe; else an ``UnsafeNameError`` naming ``where`` it came from
    (a file and key, or a flag)."""
    if not isinstance(name, str) or not SAFE_NAME.fullmatch(name):
        raise UnsafeNameError(f"{where}: {name!r} is not a safe name (letters, digits, '.', '_' "
                              "and '-' only, not starting with '.', at most 200 characters)")
    return name


def require_inside(base: Path, path: Path) -> Path:
    """``path`` if, resolved (symlinks followed), it lies inside ``base`` resolved; else an
    ``OutsideOutputError``. Called before a run writes anything under its output folder."""
    base_real, full = Path(base).resolve(), Path(path).resolve()
    if full != base_real and base_real not in full.parents:
        raise OutsideOutputError(f"refusing to write {path}: it resolves to {full}, outside the "
                                 f"output folder {base_real}")
    return path

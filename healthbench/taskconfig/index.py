"""Finding tasks and groups by name in ``tasks/`` and in ``--include-path`` folders.

Every ``*.yaml`` file under a task folder is read (safely) once; a mapping with a ``task`` key is a
task, one with a ``group`` key is a group. Names must be unique across all folders searched: a
user's folder cannot silently shadow a built-in task.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from healthbench.taskconfig.schema import (GroupConfig, TaskConfig, TaskConfigError, parse_group,
                                    parse_task, read_yaml)


def _builtin_tasks_dir() -> Path:
    """The built-in task folder: the copy a wheel ships inside the package (``healthbench/_tasks``,
    made by setup.py's build step from ``tasks/``) if there is one, else the repository's own
    top-level ``tasks/`` (editable install or source checkout). The packaged copy is looked at
    first because in an installed wheel the "repository" folder would be ``site-packages/tasks``,
    which another distribution may own; a source checkout never has ``healthbench/_tasks``."""
    here = Path(__file__).resolve().parent.parent  # the healthbench package folder
    packaged = here / "_tasks"
    return packaged if packaged.is_dir() else here.parent / "tasks"


BUILTIN_TASKS_DIR = _builtin_tasks_dir()


@dataclass
class TaskIndex:
    tasks: dict[str, TaskConfig] = field(default_factory=dict)
    groups: dict[str, GroupConfig] = field(default_factory=dict)

    @classmethod
    def build(cls, include_paths: Iterable[Path] = (), builtin: bool = True) -> "TaskIndex":
        index = cls()
        folders = ([BUILTIN_TASKS_DIR] if builtin else []) + [Path(p) for p in include_paths]
        for folder in folders:
            if not folder.is_dir():
                raise TaskConfigError(f"{folder}: task folder does not exist")
            for path in sorted(folder.rglob("*.yaml")):
                index._add(path)
        return index

    def _add(self, path: Path) -> None:
        data = read_yaml(path)
        if isinstance(data, dict) and "group" in data:
            group = parse_group(data, str(path))
            self._claim(group.name, path)
            self.groups[group.name] = group
        elif isinstance(data, dict) and "task" in data:
            task = parse_task(data, str(path))
            self._claim(task.name, path)
            self.tasks[task.name] = task
        else:
            raise TaskConfigError(f"{path}: a task file needs a 'task' key, a group file a "
                                  "'group' key")

    def _claim(self, name: str, path: Path) -> None:
        earlier = self.tasks.get(name) or self.groups.get(name)
        if earlier is not None:
            raise TaskConfigError(f"{path}: name {name!r} is already defined in {earlier.source}")

    def resolve(self, names: Iterable[str]) -> list[TaskConfig]:
        """Expand groups (recursively) into tasks, keeping order and dropping repeats."""
        out: dict[str, TaskConfig] = {}

        def visit(name: str, trail: tuple[str, ...]) -> None:
            if name in trail:
                raise TaskConfigError(f"group cycle: {' -> '.join(trail + (name,))}")
            if name in self.tasks:
                out.setdefault(name, self.tasks[name])
            elif name in self.groups:
                for child in self.groups[name].tasks:
                    visit(child, trail + (name,))
            else:
                import difflib

                names = sorted(self.tasks) + sorted(self.groups)
                where = f" (in group {trail[-1]})" if trail else ""
                close = difflib.get_close_matches(name, names, n=3, cutoff=0.6)
                hint = (f"did you mean {', '.join(close)}?" if close
                        else "`healthbench tasks` lists them")
                raise TaskConfigError(f"unknown task or group {name!r}{where}; {hint} "
                                      f"(known: {', '.join(names)})")

        for name in names:
            visit(name, ())
        return list(out.values())

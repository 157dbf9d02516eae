"""Named registries: the only way a task file or a CLI name can reach code.

A task YAML names loaders, prompt builders, answer extractors and metrics by their registered
names; it never imports anything. Built-in names map to ``"module:attr"`` targets (or to a
``"module"`` whose import registers a family of names) and are imported on first use, the way
lm-eval's registry and Python entry points work: importing the catalog to list or check names
imports no loader, metric or model. Third-party models come from an entry-point group, also
loaded only when asked for.
"""
from __future__ import annotations

import importlib
from importlib import metadata
from typing import Callable, Generic, Iterator, Mapping, TypeVar

T = TypeVar("T")


class UnknownNameError(KeyError):
    """A name that no registry entry answers to; the message lists what exists."""

    def __str__(self) -> str:  # KeyError quotes its argument; we want the plain sentence
        return str(self.args[0])


class Registry(Generic[T]):
    """A dictionary of named things, filled lazily from import targets, with clear misses.

    ``targets`` maps built-in names to ``"package.module:attr"`` (the object itself) or to
    ``"package.module"`` (a module whose import registers the name through :meth:`register`).
    ``entry_point_group`` (optional) names a Python entry-point group searched on a miss, so
    plugins installed as separate packages are found without importing them up front.
    """

    def __init__(self, kind: str, targets: Mapping[str, str] | None = None,
                 entry_point_group: str | None = None) -> None:
        self.kind = kind
        self.entry_point_group = entry_point_group
        self._targets: dict[str, str] = dict(targets or {})
        self._items: dict[str, T] = {}

    def register(self, name: str, obj: T | None = None) -> Callable[[T], T] | T:
        """Register ``obj`` under ``name``; without ``obj`` acts as a decorator."""

        def add(item: T) -> T:
            if name in self._items and self._items[name] is not item:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._items[name] = item
            return item

        return add if obj is None else add(obj)

    def target(self, name: str) -> str | None:
        """The import target of a built-in name (None for names registered at run time)."""
        return self._targets.get(name)

    def get(self, name: str) -> T:
        if name not in self._items and name in self._targets:
            self._resolve(name)
        if name not in self._items and self.entry_point_group:
            self._load_entry_point(name)
        try:
            return self._items[name]
        except KeyError:
            known = ", ".join(sorted(self.names())) or "none"
            raise UnknownNameError(f"unknown {self.kind} {name!r}; registered: {known}") from None

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        return name in self._items or name in self._targets or name in self._entry_point_names()

    def names(self) -> list[str]:
        return sorted(set(self._items) | set(self._targets) | set(self._entry_point_names()))

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def _resolve(self, name: str) -> None:
        module_name, _, attr = self._targets[name].partition(":")
        module = importlib.import_module(module_name)  # a module target registers on import
        if attr and name not in self._items:
            self._items[name] = getattr(module, attr)
        if name not in self._items:
            raise RuntimeError(f"{self.kind} {name!r}: importing {module_name} did not register it")

    def _entry_points(self) -> list[metadata.EntryPoint]:
        if not self.entry_point_group:
            return []
        return list(metadata.entry_points(group=self.entry_point_group))

    def _entry_point_names(self) -> list[str]:
        return [ep.name for ep in self._entry_points()]

    def _load_entry_point(self, name: str) -> None:
        for ep in self._entry_points():
            if ep.name == name:
                self._items[name] = ep.load()
                return

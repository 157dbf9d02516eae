"""Named registries: the only way a task file can reach code.

A task YAML names loaders, prompt builders, answer extractors and metrics by their registered
names; it never imports anything. Model plugins are found here too, from built-ins and from the
``healthbench.models`` entry-point group, so a third party adds a model without touching
healthbench.
"""
from __future__ import annotations

from importlib import metadata
from typing import Callable, Generic, Iterator, TypeVar

T = TypeVar("T")


class UnknownNameError(KeyError):
    """A name that no registry entry answers to; the message lists what exists."""

    def __str__(self) -> str:  # KeyError quotes its argument; we want the plain sentence
        return str(self.args[0])


class Registry(Generic[T]):
    """A dictionary of named things with a decorator to fill it and clear errors when it misses.

    ``entry_point_group`` (optional) names a Python entry-point group searched on a miss, so
    plugins installed as separate packages are found lazily, without importing them up front.
    """

    def __init__(self, kind: str, entry_point_group: str | None = None) -> None:
        self.kind = kind
        self.entry_point_group = entry_point_group
        self._items: dict[str, T] = {}

    def register(self, name: str, obj: T | None = None) -> Callable[[T], T] | T:
        """Register ``obj`` under ``name``; without ``obj`` acts as a decorator."""

        def add(item: T) -> T:
            if name in self._items and self._items[name] is not item:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._items[name] = item
            return item

        return add if obj is None else add(obj)

    def get(self, name: str) -> T:
        if name not in self._items and self.entry_point_group:
            self._load_entry_point(name)
        try:
            return self._items[name]
        except KeyError:
            known = ", ".join(sorted(self.names())) or "none"
            raise UnknownNameError(f"unknown {self.kind} {name!r}; registered: {known}") from None

    def __contains__(self, name: object) -> bool:
        return name in self._items or (isinstance(name, str) and name in self._entry_point_names())

    def names(self) -> list[str]:
        return sorted(set(self._items) | set(self._entry_point_names()))

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

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

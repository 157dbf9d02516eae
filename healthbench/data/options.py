"""Loader options (``dataset.options`` in a task file), declared next to each loader and checked
like every other task key before the loader runs.

A loader states each option's name, type and, where the set is closed, its allowed values::

    @LOADERS.register("slake")
    @declare_options(split=Option((str,), choices=("train", "validation", "test")),
                     languages=Option((list,), items=(str,), choices=("en", "zh")))
    def load_slake(root, split="test", languages=("en",)): ...

``check_options`` turns an unknown option, a wrong type or a value outside the choices into one
line naming the task file and the key (``dataset.options.NAME``), instead of a ``TypeError``
traceback from inside the loader. A loader without a declaration (a third party's) gets its
keyword names checked from its signature, types unchecked.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


class OptionError(ValueError):
    """A ``dataset.options`` entry the loader does not accept; the message names file and key."""


@dataclass(frozen=True)
class Option:
    """One loader option: accepted types; for lists, the item types; allowed values (of the value,
    or of each item of a list); for mappings, the declared fields; whether it must be given."""

    types: tuple[type, ...]
    items: tuple[type, ...] | None = None
    choices: tuple[Any, ...] | None = None
    fields: Mapping[str, "Option"] = field(default_factory=dict)
    required: bool = False


def declare_options(**options: Option) -> Callable[[F], F]:
    """Attach the declaration to the loader (read by ``check_options``)."""

    def mark(loader: F) -> F:
        loader.options = options  # type: ignore[attr-defined]
        return loader

    return mark


def _names(types: tuple[type, ...]) -> str:
    return " or ".join(t.__name__ for t in types)


def _check_value(value: Any, spec: Option, key: str, fail: Callable[[str, str], OptionError]
                 ) -> None:
    if not isinstance(value, spec.types) or (isinstance(value, bool) and bool not in spec.types):
        raise fail(key, f"expected {_names(spec.types)}, got {type(value).__name__}")
    values = value if isinstance(value, list) else [value]
    if isinstance(value, list) and spec.items is not None:
        for item in value:
            if not isinstance(item, spec.items) or (isinstance(item, bool)
                                                    and bool not in spec.items):
                raise fail(key, f"expected a list of {_names(spec.items)}, got an item "
                                f"{item!r}")
    if spec.choices is not None and not isinstance(value, dict):
        wrong = [v for v in values if v not in spec.choices]
        if wrong:
            raise fail(key, f"{wrong[0]!r} is not allowed (allowed: "
                            f"{', '.join(map(str, spec.choices))})")
    if isinstance(value, dict) and spec.fields:
        _check_mapping(value, spec.fields, key, fail)


def _check_mapping(values: Mapping[str, Any], declared: Mapping[str, Option], key: str,
                   fail: Callable[[str, str], OptionError]) -> None:
    for name, value in values.items():
        where = f"{key}.{name}"
        if name not in declared:
            raise fail(where, f"unknown option (allowed: {', '.join(sorted(declared)) or 'none'})")
        _check_value(value, declared[name], where, fail)
    for name, spec in declared.items():
        if spec.required and name not in values:
            raise fail(f"{key}.{name}", "required option is missing")


def declared_options(loader: Callable[..., Any]) -> Mapping[str, Option]:
    """The loader's declaration, or its keyword names (any type) when it has none."""
    declared = getattr(loader, "options", None)
    if declared is not None:
        return declared
    params = list(inspect.signature(loader).parameters.values())[1:]  # after ``root``
    return {p.name: Option((object,), required=p.default is inspect.Parameter.empty)
            for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


def check_options(loader: Callable[..., Any], options: Mapping[str, Any], source: str,
                  fmt: str) -> None:
    """Raise ``OptionError`` (one line: ``SOURCE: key 'dataset.options.X': …``) unless
    ``options`` suits the loader registered as ``fmt``."""

    def fail(key: str, message: str) -> OptionError:
        return OptionError(f"{source}: key '{key}': {message} (dataset.format {fmt})")

    _check_mapping(options, declared_options(loader), "dataset.options", fail)

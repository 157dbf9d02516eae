"""Import every module of a package so that its ``@REGISTRY.register`` decorators run.

Adding a loader, metric or model is then one new file, with no import list to edit. Modules must
keep heavy imports (torch, transformers) inside functions so that importing them stays cheap.
"""
from __future__ import annotations

import importlib
import pkgutil


def import_submodules(package_name: str) -> None:
    package = importlib.import_module(package_name)
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
        if not info.name.startswith("_"):
            importlib.import_module(f"{package_name}.{info.name}")

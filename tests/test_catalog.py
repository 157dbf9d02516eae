"""The lazy catalog: every built-in name resolves to what its module registers, no module
registers a name the catalog does not list, and importing the report layer loads no loader,
benchmark metric, model plugin, torch or transformers (checked with ``-X importtime``)."""
from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys

import pytest

import healthbench
from healthbench.core import catalog
from healthbench.core.registry import Registry, UnknownNameError

REGISTRIES = {name: getattr(catalog, name) for name in
              ("LOADERS", "SAMPLE_BUILDERS", "PROMPT_BUILDERS", "EXTRACTORS", "METRICS",
               "MODELS", "LABELERS")}


@pytest.mark.parametrize("registry_name", sorted(REGISTRIES))
def test_every_builtin_target_resolves(registry_name: str) -> None:
    registry = REGISTRIES[registry_name]
    for name in registry._targets:
        assert registry.get(name) is not None, name
        module, _, attr = registry.target(name).partition(":")
        if attr:
            assert registry.get(name) is getattr(importlib.import_module(module), attr), name


def test_no_module_registers_a_name_missing_from_the_catalog() -> None:
    for info in pkgutil.walk_packages(healthbench.__path__, "healthbench."):
        importlib.import_module(info.name)
    for registry_name, registry in REGISTRIES.items():
        unlisted = sorted(set(registry._items) - set(registry._targets))
        assert not unlisted, f"{registry_name}: registered but not in catalog.py: {unlisted}"


def test_a_lazy_name_imports_its_module_only_when_used() -> None:
    code = ("import sys; from healthbench.core.catalog import METRICS; "
            "assert 'mmmu_accuracy' in METRICS; "
            "print('healthbench.suites.mmmu.metrics' in sys.modules); "
            "METRICS.get('mmmu_accuracy'); "
            "print('healthbench.suites.mmmu.metrics' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "True"]


def test_a_module_target_that_registers_nothing_is_a_clear_error() -> None:
    registry = Registry("thing", {"ghost": "healthbench.core.types"})
    with pytest.raises(RuntimeError, match="did not register it"):
        registry.get("ghost")
    with pytest.raises(UnknownNameError, match="unknown thing 'nope'"):
        registry.get("nope")


FORBIDDEN = ("torch", "transformers", "healthbench.suites", "healthbench.models",
             "healthbench.run")


def test_importing_the_report_layer_loads_no_loader_metric_model_or_torch() -> None:
    modules = ["healthbench.report"] + [
        f"healthbench.report.{m.name}" for m in pkgutil.iter_modules(
            importlib.import_module("healthbench.report").__path__)]
    code = "; ".join(f"import {m}" for m in modules)
    out = subprocess.run([sys.executable, "-X", "importtime", "-c", code], capture_output=True,
                         text=True, check=True)
    imported = [line.split("|")[-1].strip() for line in out.stderr.splitlines()
                if line.startswith("import time:") and "|" in line]
    assert "healthbench.report" in imported  # the check sees what it should
    loaded = sorted({m for m in imported if m.startswith(FORBIDDEN)})
    assert not loaded, f"import healthbench.report loads {loaded}"

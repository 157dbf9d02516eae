"""healthbench: evaluation harness for unified medical vision-language models.

``healthbench.evaluate(model=..., tasks=[...], ...)`` runs an evaluation from Python and returns
its typed results (``healthbench.Results``; ``healthbench.read_results(run_folder)`` reads a
finished run the same way), and ``healthbench.metrics`` holds the metrics as plain functions
(docs/api.md). All load on first use, so ``import healthbench`` stays cheap.
"""
from __future__ import annotations

from typing import Any

from healthbench.core.version import __version__
__all__ = ["__version__", "Results", "evaluate", "metrics", "read_results"]


def __getattr__(name: str) -> Any:
    if name == "evaluate":
        from healthbench.api import evaluate

        return evaluate
    if name in ("Results", "read_results"):
        from healthbench.results import schema

        return getattr(schema, name)
    if name == "metrics":
        import importlib

        return importlib.import_module("healthbench.metrics")
    raise AttributeError(f"module 'healthbench' has no attribute {name!r}")

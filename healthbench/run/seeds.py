"""One seed per run: ``--seed`` reaches every seeded part unless an argument sets its own.

The seeded parts are the model (sampling, random baselines, tiny random weights: any plugin that
takes a ``seed`` argument), subsampling (``--subsample``), the bootstrap intervals and the
official random fallbacks of metrics and extractors that take a ``seed`` argument (MMMU's
``accuracy_official``, MMOral's ``mode: official``). A ``seed`` written in the task YAML
(``metrics[i].args`` / ``extract.args``) or in ``--model-args`` is explicit and wins.
results.json records the effective seed of each part (``seeds``, and ``tasks.<t>.seeds``).
"""
from __future__ import annotations

import inspect
from dataclasses import replace
from typing import Any, Mapping

from healthbench.core.catalog import EXTRACTORS, METRICS
from healthbench.taskconfig.schema import NamedCall, TaskConfig


def takes_seed(func: Any) -> bool:
    """Whether ``func`` (a factory, extractor or plugin class) names a ``seed`` parameter; a bare
    ``**kwargs`` does not count, so nothing gets a seed it never asked for."""
    try:
        return "seed" in inspect.signature(func).parameters
    except (TypeError, ValueError):
        return False


def _seeded(call: NamedCall, registry: Any, seed: int) -> NamedCall:
    if "seed" in call.args:
        return call
    try:
        func = registry.get(call.name)
    except Exception:  # an unknown name: left for build_metrics to report with the file name
        return call
    return NamedCall(call.name, {**call.args, "seed": seed}) if takes_seed(func) else call


def seeded_task(task: TaskConfig, seed: int) -> TaskConfig:
    """``task`` with the run's seed added to every metric and extractor call that takes one and
    does not set it."""
    return replace(task, metrics=tuple(_seeded(c, METRICS, seed) for c in task.metrics),
                   extract=_seeded(task.extract, EXTRACTORS, seed))


def fallback_seeds(task: TaskConfig) -> dict[str, Any]:
    """``{"metrics[i]:<name>" | "extract:<name>": seed}`` for the seeded calls of a task (after
    ``seeded_task``): the seeds its official random fallbacks draw from."""
    out = {f"metrics[{i}]:{c.name}": c.args["seed"] for i, c in enumerate(task.metrics)
           if "seed" in c.args}
    if "seed" in task.extract.args:
        out[f"extract:{task.extract.name}"] = task.extract.args["seed"]
    return out


def seeded_model_args(model_cls: Any, args: Mapping[str, Any],
                      seed: int) -> tuple[dict[str, Any], Any]:
    """(the model arguments to build it with, the seed it gets): the run's seed is added when
    the plugin takes a ``seed`` and ``--model-args`` does not set one; None when it takes none."""
    out = dict(args)
    if "seed" in out:
        return out, _as_int(out["seed"])
    if takes_seed(model_cls):
        out["seed"] = seed
        return out, seed
    return out, None


def _as_int(value: Any) -> Any:
    try:
        return int(value)
    except (TypeError, ValueError):
        return value

"""Per-task metrics over all samples (micro), per group value, and macro over groups.

Input is the list of sample records as samples.jsonl gives them back (read back, or kept as
written where that is identical: ``results.samples.as_read_back``), so a resumed run aggregates
exactly what an uninterrupted one would. Error records are counted (``n_errors``) and left out of
every metric: a sample whose image could not be read says nothing about the model.
"""
from __future__ import annotations

import math
from collections import defaultdict
from typing import Any, Sequence

from healthbench.scoring.base import Metric, aggregate
from healthbench.scoring.stats import bootstrap_ci, bootstrap_mean_ci, stratified_macro_ci
from healthbench.core.types import SampleResult


def _clean(value: float) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def metric_summary(metric: Metric, records: Sequence[SampleResult], seed: int) -> dict[str, Any]:
    """``{"value", "ci", "n"}`` for one metric over ``records``."""
    if metric.corpus is not None:
        value = metric.corpus(records)
        ci = bootstrap_ci(list(records), metric.corpus, seed=seed)
        n = len(records)
    else:
        scores = [r.scores.get(metric.name) for r in records]
        kept = [s for s in scores if s is not None]
        value = aggregate(metric, records)
        ci = bootstrap_mean_ci(kept, seed=seed)
        n = len(kept)
    out: dict[str, Any] = {"value": _clean(value), "ci": ci, "n": n}
    if metric.extra_summary is not None:
        out.update(metric.extra_summary(records))
    return out


def _group_value(record: SampleResult, key: str) -> str:
    value = record.meta.get(key)
    return "(missing)" if value is None or value == "" else str(value)


def group_values(record: SampleResult, key: str) -> list[str]:
    """A list-valued meta key (e.g. MMOral's dimension tags) puts the sample in every group it
    names; an empty list is "(missing)"; any other value is one group."""
    value = record.meta.get(key)
    if isinstance(value, (list, tuple)):
        names = list(dict.fromkeys("(missing)" if v is None or v == "" else str(v)
                                   for v in value))
        return names or ["(missing)"]
    return [_group_value(record, key)]


def summarize_task(metrics: Sequence[Metric], records: Sequence[SampleResult],
                   group_by: Sequence[str], seed: int) -> dict[str, Any]:
    """The ``tasks.<name>`` block of results.json (without version/checksum, added by the caller).

    ``metrics`` are micro (over samples); ``groups.<key>.<value>`` per group; ``macro.<key>`` the
    unweighted mean of the per-group values for per-sample metrics (corpus metrics are macro-
    averaged without an interval being claimed for them).
    """
    errors = [r for r in records if r.error]
    scored = [r for r in records if not r.error]
    out: dict[str, Any] = {
        "n": len(scored), "n_errors": len(errors), "n_total": len(records),
        "metrics": {m.name: metric_summary(m, scored, seed) for m in metrics},
        "groups": {}, "macro": {},
    }
    for key in group_by:
        buckets: dict[str, list[SampleResult]] = defaultdict(list)
        error_counts: dict[str, int] = defaultdict(int)
        for record in records:
            for value in group_values(record, key):
                if record.error:
                    error_counts[value] += 1
                else:
                    buckets[value].append(record)
        groups: dict[str, Any] = {}
        for value in sorted(set(buckets) | set(error_counts)):
            members = buckets.get(value, [])
            groups[value] = {"n": len(members), "n_errors": error_counts.get(value, 0),
                             "metrics": {m.name: metric_summary(m, members, seed)
                                         for m in metrics}}
        out["groups"][key] = groups
        out["macro"][key] = {m.name: _macro(m, buckets, groups, seed) for m in metrics}
    return out


def _macro(metric: Metric, buckets: dict[str, list[SampleResult]], groups: dict[str, Any],
           seed: int) -> dict[str, Any]:
    values = [g["metrics"][metric.name]["value"] for g in groups.values()
              if g["metrics"][metric.name]["value"] is not None]
    value = sum(values) / len(values) if values else None
    scores = [[r.scores.get(metric.name) for r in members] for members in buckets.values()]
    smallest = min((sum(s is not None for s in group) for group in scores), default=0)
    if metric.corpus is not None or smallest < 2:
        # a group of one sample has no within-group spread to resample: an interval would
        # look tighter than the data allow, so none is claimed
        ci: list[float | None] = [None, None]
    else:
        ci = stratified_macro_ci(scores, seed=seed)
    return {"value": value, "ci": ci, "n_groups": len(values)}

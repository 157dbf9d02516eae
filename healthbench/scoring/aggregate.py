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

from healthbench.scoring.base import Metric
from healthbench.scoring.stats import bootstrap_ci, bootstrap_mean_ci, stratified_macro_ci
from healthbench.core.types import SampleResult


def _clean(value: float) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def metric_summary(metric: Metric, records: Sequence[SampleResult], seed: int,
                   scores: Sequence[Any] | None = None) -> dict[str, Any]:
    """``{"value", "ci", "n"}`` for one metric over ``records``. ``scores``: the records'
    ``scores.get(metric.name)`` in order, when the caller has them already."""
    if metric.corpus is not None:
        value = metric.corpus(records)
        ci = bootstrap_ci(list(records), metric.corpus, seed=seed)
        n = len(records)
    else:
        if scores is None:
            scores = [r.scores.get(metric.name) for r in records]
        kept = [s for s in scores if s is not None]
        floats = [float(v) for v in kept]  # base.mean_of_scores, from the scores at hand
        value = sum(floats) / len(floats) if floats else float("nan")
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
    # each per-sample metric's score column, read once (groups index into it: at 100k samples
    # reading scores per group and metric was most of the aggregation time)
    columns = {m.name: [r.scores.get(m.name) for r in scored]
               for m in metrics if m.corpus is None}
    out: dict[str, Any] = {
        "n": len(scored), "n_errors": len(errors), "n_total": len(records),
        "metrics": {m.name: metric_summary(m, scored, seed, columns.get(m.name))
                    for m in metrics},
        "groups": {}, "macro": {},
    }
    for key in group_by:
        buckets, error_counts = _buckets(records, key)
        groups: dict[str, Any] = {}
        for value in sorted(set(buckets) | set(error_counts)):
            at = buckets.get(value, [])
            members = [scored[i] for i in at]
            groups[value] = {"n": len(members), "n_errors": error_counts.get(value, 0),
                             "metrics": {m.name: metric_summary(
                                 m, members, seed,
                                 None if m.corpus is not None else [columns[m.name][i]
                                                                    for i in at])
                                         for m in metrics}}
        out["groups"][key] = groups
        out["macro"][key] = {m.name: _macro(m, buckets, groups, seed, columns.get(m.name))
                             for m in metrics}
    return out


def _buckets(records: Sequence[SampleResult], key: str
             ) -> tuple[dict[str, list[int]], dict[str, int]]:
    """Per group value of ``key``: the positions of its scored records among the scored
    records (in order), and its count of error records."""
    buckets: dict[str, list[int]] = defaultdict(list)
    error_counts: dict[str, int] = defaultdict(int)
    position = 0
    for record in records:
        value = record.meta.get(key)
        # a non-empty string is its own one group (group_values' answer, without the call)
        values = (value,) if type(value) is str and value else group_values(record, key)
        if record.error:
            for value in values:
                error_counts[value] += 1
        else:
            for value in values:
                buckets[value].append(position)
            position += 1
    return buckets, error_counts


def _macro(metric: Metric, buckets: dict[str, list[int]], groups: dict[str, Any],
           seed: int, column: Sequence[Any] | None) -> dict[str, Any]:
    values = [g["metrics"][metric.name]["value"] for g in groups.values()
              if g["metrics"][metric.name]["value"] is not None]
    value = sum(values) / len(values) if values else None
    scores = [[column[i] for i in at] for at in buckets.values()] if column is not None else []
    smallest = min((sum(s is not None for s in group) for group in scores), default=0)
    if metric.corpus is not None or smallest < 2:
        # a group of one sample has no within-group spread to resample: an interval would
        # look tighter than the data allow, so none is claimed
        ci: list[float | None] = [None, None]
    else:
        ci = stratified_macro_ci(scores, seed=seed)
    return {"value": value, "ci": ci, "n_groups": len(values)}

"""Aggregation reading each score column once (issue 18) gives the old block, number for number.

``summarize_task`` used to read ``record.scores`` per group and per metric three times over;
it now reads each metric's column once and indexes it by group. The old code is restated here
and both are run on records with errors, missing scores, integer and boolean scores, list-valued
and missing group keys, and a corpus metric.
"""
from __future__ import annotations

import math
import random
from collections import defaultdict
from typing import Any, Sequence

from healthbench.core.types import SampleResult
from healthbench.scoring.aggregate import _clean, group_values, summarize_task
from healthbench.scoring.base import Metric, aggregate
from healthbench.scoring.stats import bootstrap_ci, bootstrap_mean_ci, stratified_macro_ci


def _old_metric_summary(metric: Metric, records: Sequence[SampleResult],
                        seed: int) -> dict[str, Any]:
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


def _old_summarize_task(metrics, records, group_by, seed):
    errors = [r for r in records if r.error]
    scored = [r for r in records if not r.error]
    out: dict[str, Any] = {
        "n": len(scored), "n_errors": len(errors), "n_total": len(records),
        "metrics": {m.name: _old_metric_summary(m, scored, seed) for m in metrics},
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
                             "metrics": {m.name: _old_metric_summary(m, members, seed)
                                         for m in metrics}}
        out["groups"][key] = groups
        macro = {}
        for m in metrics:
            values = [g["metrics"][m.name]["value"] for g in groups.values()
                      if g["metrics"][m.name]["value"] is not None]
            value = sum(values) / len(values) if values else None
            scores = [[r.scores.get(m.name) for r in members] for members in buckets.values()]
            smallest = min((sum(s is not None for s in group) for group in scores), default=0)
            ci = [None, None] if m.corpus is not None or smallest < 2 else \
                stratified_macro_ci(scores, seed=seed)
            macro[m.name] = {"value": value, "ci": ci, "n_groups": len(values)}
        out["macro"][key] = macro
    return out


def _records(rng: random.Random, n: int) -> list[SampleResult]:
    out = []
    for i in range(n):
        error = "bad input: x" if rng.random() < 0.1 else None
        scores: dict[str, Any] = {}
        if not error:
            scores["accuracy"] = rng.choice([0.0, 1.0, 1.0, 1, True, None])
            if rng.random() < 0.8:
                scores["rating"] = rng.choice([0.25, 0.5, 3, 0.1 + 0.2])
        meta: dict[str, Any] = {"modality": rng.choice(["CT", "MR", "", None, 7]),
                                "tags": rng.choice([["a", "b"], ["a", "a"], [], ["", None], "c"])}
        if rng.random() < 0.2:
            meta.pop("modality")
        out.append(SampleResult(id=f"s{i}", task="t", target="A", response="A",
                                parsed=rng.choice(["A", "B"]), scores=scores, meta=meta,
                                error=error))
    return out


def test_column_aggregation_gives_the_old_block() -> None:
    def corpus_accuracy(records):
        return sum(r.parsed == r.target for r in records) / len(records) if records else math.nan

    metrics = [Metric("accuracy", per_sample=lambda s, r, p: 1.0),
               Metric("rating", per_sample=lambda s, r, p: 1.0, percent=False),
               Metric("corpus_acc", corpus=corpus_accuracy,
                      extra_summary=lambda records: {"count": len(records)})]
    rng = random.Random(18)
    for n in (0, 1, 5, 60, 1500):  # 1500: past the index-draw limit of the bootstrap
        records = _records(rng, n)
        for seed in (0, 3):
            assert summarize_task(metrics, records, ["modality", "tags"], seed) == \
                _old_summarize_task(metrics, records, ["modality", "tags"], seed), n

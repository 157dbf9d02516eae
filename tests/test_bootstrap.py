"""Bootstrap intervals cover the true value at about the nominal rate, and are reproducible.

Small simulations (fixed seeds, so the test is deterministic): draw many data sets from a known
distribution, build the 95 % interval on each, count how often it contains the true value.
Percentile intervals on n≈60–80 run slightly under nominal; the accepted band is 0.88–0.99
(±~2.5 binomial standard errors around 0.95 with these trial counts, plus that known bias).
"""
from __future__ import annotations

import numpy as np
import pytest

from healthbench.scoring.stats import bootstrap_ci, bootstrap_mean_ci, stratified_macro_ci


def _covers(ci: list, truth: float) -> bool:
    return ci[0] is not None and ci[0] <= truth <= ci[1]


def test_mean_interval_coverage_for_accuracy() -> None:
    rng = np.random.default_rng(2024)
    truth, trials = 0.7, 300
    hits = sum(_covers(bootstrap_mean_ci(rng.random(80) < truth, seed=t, resamples=400), truth)
               for t in range(trials))
    assert 0.88 <= hits / trials <= 0.99


def test_mean_interval_coverage_for_a_continuous_score() -> None:
    rng = np.random.default_rng(7)
    a, b, trials = 2.0, 5.0, 300  # Beta(2, 5): skewed, like SSIM/BLEU per-sample scores
    truth = a / (a + b)
    hits = sum(_covers(bootstrap_mean_ci(rng.beta(a, b, 60), seed=t, resamples=400), truth)
               for t in range(trials))
    assert 0.88 <= hits / trials <= 0.99


def test_corpus_interval_coverage_for_a_ratio_statistic() -> None:
    """A micro-averaged statistic (Σ hits / Σ predictions, like micro-precision), recomputed on
    each resample of the records as corpus metrics are."""
    rng = np.random.default_rng(11)
    truth, trials = 0.6, 120

    def micro(items):
        return sum(h for h, _ in items) / max(1, sum(p for _, p in items))

    hits = 0
    for t in range(trials):
        preds = rng.integers(1, 5, 70)
        items = list(zip(rng.binomial(preds, truth), preds))
        hits += _covers(bootstrap_ci(items, micro, seed=t, resamples=200), truth)
    assert 0.88 <= hits / trials <= 0.99


def test_stratified_macro_interval_coverage() -> None:
    rng = np.random.default_rng(5)
    truths, trials = (0.5, 0.8, 0.65), 200
    truth = float(np.mean(truths))
    hits = sum(_covers(stratified_macro_ci([rng.random(n) < p for p, n in zip(truths, (40, 25, 60))],
                                           seed=t, resamples=400), truth)
               for t in range(trials))
    assert 0.88 <= hits / trials <= 0.99


def test_same_seed_same_interval_other_seed_other_interval() -> None:
    scores = np.random.default_rng(0).random(50).tolist()
    assert bootstrap_mean_ci(scores, seed=3) == bootstrap_mean_ci(scores, seed=3)
    assert bootstrap_mean_ci(scores, seed=3) != bootstrap_mean_ci(scores, seed=4)
    items = list(range(30))
    stat = lambda xs: float(np.mean(xs))  # noqa: E731
    assert bootstrap_ci(items, stat, seed=1) == bootstrap_ci(items, stat, seed=1)


def test_corpus_metric_interval_through_registered_metric() -> None:
    """A registered corpus metric (micro-F1) gets a reproducible interval around its value."""
    from healthbench.scoring.aggregate import metric_summary
    from healthbench.core.catalog import METRICS
    from healthbench.core.types import SampleResult

    rng = np.random.default_rng(3)
    truth = (rng.random((60, 5)) < 0.4).astype(int)
    pred = np.where(rng.random((60, 5)) < 0.8, truth, 1 - truth)
    records = [SampleResult(id=str(i), task="t", target=t.tolist(), response="",
                            parsed=p.tolist(), scores={}, meta={})
               for i, (t, p) in enumerate(zip(truth, pred))]
    summary = metric_summary(METRICS.get("micro_f1")(), records, seed=0)
    lo, hi = summary["ci"]
    assert lo < summary["value"] < hi
    assert metric_summary(METRICS.get("micro_f1")(), records, seed=0)["ci"] == [lo, hi]


@pytest.mark.parametrize("empty", [[], [None, None]])
def test_no_scores_no_interval(empty: list) -> None:
    assert bootstrap_mean_ci(empty) == [None, None]


def test_no_macro_interval_is_claimed_when_a_group_has_one_sample() -> None:
    from healthbench.scoring.aggregate import summarize_task
    from healthbench.scoring.base import Metric
    from healthbench.core.types import SampleResult

    def rec(i: int, group: str, score: float) -> SampleResult:
        return SampleResult(id=str(i), task="t", target=None, response=None, parsed=None,
                            scores={"acc": score}, meta={"g": group})

    metric = Metric("acc", per_sample=lambda *a: None)
    many = [rec(i, "a" if i % 2 else "b", float(i % 3 == 0)) for i in range(20)]
    block = summarize_task([metric], many, ["g"], seed=0)
    assert None not in block["macro"]["g"]["acc"]["ci"]
    block = summarize_task([metric], many + [rec(99, "lonely", 1.0)], ["g"], seed=0)
    assert block["macro"]["g"]["acc"]["ci"] == [None, None]
    assert block["macro"]["g"]["acc"]["value"] is not None

"""Bootstrap intervals cover the true value at about the nominal rate, and are reproducible.

Small simulations (fixed seeds, so the test is deterministic): draw many data sets from a known
distribution, build the 95 % interval on each, count how often it contains the true value.
Percentile intervals on n≈60–80 run slightly under nominal; the accepted band is 0.88–0.99
(±~2.5 binomial standard errors around 0.95 with these trial counts, plus that known bias).
"""
from __future__ import annotations

import numpy as np
import pytest

from healthbench.scoring.stats import (
    bootstrap_ci,
    bootstrap_mean_ci,
    percentile_interval,
    stratified_macro_ci,
)


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


# --- Bounded memory (issue 18): the old draw restated, then compared --------------------------

def _old_mean_ci(scores: np.ndarray, seed: int, resamples: int = 1000) -> list:
    """The interval as computed before issue 18: one ``resamples × n`` index matrix."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, scores.size, size=(resamples, scores.size))
    return percentile_interval(scores[idx].mean(axis=1), 0.95)


def _old_macro_ci(groups: list[np.ndarray], seed: int, resamples: int = 1000) -> list:
    rng = np.random.default_rng(seed)
    totals = np.zeros(resamples)
    for arr in groups:
        totals += arr[rng.integers(0, arr.size, size=(resamples, arr.size))].mean(axis=1)
    return percentile_interval(totals / len(groups), 0.95)


@pytest.mark.parametrize("n", [1, 37, 800, 1000])
def test_zero_one_intervals_identical_to_the_old_draw_up_to_the_limit(n: int) -> None:
    scores = (np.random.default_rng(n).random(n) < 0.62).astype(float)
    for seed in (0, 7):
        assert bootstrap_mean_ci(scores.tolist(), seed=seed) == _old_mean_ci(scores, seed)


def test_macro_intervals_identical_to_the_old_draw() -> None:
    rng = np.random.default_rng(1)
    groups = [(rng.random(n) < p).astype(float) for n, p in ((40, 0.5), (333, 0.8), (1000, 0.3))]
    assert stratified_macro_ci([g.tolist() for g in groups], seed=4) == _old_macro_ci(groups, 4)
    continuous = [rng.beta(2, 5, n) for n in (60, 9000)]  # chunked draw, same stream
    assert stratified_macro_ci([g.tolist() for g in continuous], seed=2) == \
        _old_macro_ci(continuous, 2)


def test_continuous_intervals_identical_to_the_old_draw_at_any_size() -> None:
    scores = np.random.default_rng(3).beta(2, 5, 12_001)  # several chunks of resamples
    assert bootstrap_mean_ci(scores.tolist(), seed=5) == _old_mean_ci(scores, 5)


def test_multinomial_draw_is_statistically_equivalent_to_the_index_draw() -> None:
    """Beyond the limit 0/1 scores are drawn as multinomial counts: another draw, same
    distribution. Documented equivalence check: (1) a two-sample Kolmogorov–Smirnov test cannot
    tell 2000 resampled means of each method apart; (2) both intervals lie within Monte Carlo
    error of the exact bootstrap interval, Binomial(n, p̂)/n quantiles (scipy)."""
    from scipy.stats import binom, ks_2samp

    from healthbench.scoring.stats import INDEX_DRAW_LIMIT, _index_resampled_means, \
        resampled_means

    n = 4 * INDEX_DRAW_LIMIT
    scores = (np.random.default_rng(11).random(n) < 0.3).astype(float)
    new = resampled_means(scores, 2000, np.random.default_rng(0))
    old = _index_resampled_means(scores, 2000, np.random.default_rng(1))
    assert ks_2samp(new, old).pvalue > 0.01
    p_hat = scores.mean()
    exact = binom.ppf([0.025, 0.975], n, p_hat) / n
    se = np.sqrt(p_hat * (1 - p_hat) / n)
    for ci in (bootstrap_mean_ci(scores.tolist(), seed=0), _old_mean_ci(scores, 0)):
        assert np.allclose(ci, exact, atol=0.3 * se)  # ~3.5 MC standard errors (1000 draws)


def test_full_size_interval_needs_no_index_matrix() -> None:
    """128k 0/1 scores: the old draw allocated 1000 × 128k int64 indices (1 GB); now a few MB."""
    import tracemalloc

    scores = (np.random.default_rng(0).random(128_000) < 0.7).astype(float)
    tracemalloc.start()
    try:
        bootstrap_mean_ci(scores, seed=0)
        stratified_macro_ci([scores[:64_000], scores[64_000:]], seed=0)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20 * 2**20

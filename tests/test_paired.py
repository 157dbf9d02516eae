"""healthbench.scoring.paired against scipy (and statsmodels values computed once and written down)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from healthbench.scoring.base import Metric
from healthbench.scoring.paired import (MCNEMAR, PAIRED_BOOTSTRAP, PAIRED_T, compare_metric,
                                compare_scores, holm, mcnemar_exact, pair_records,
                                paired_bootstrap_mean, paired_bootstrap_statistic,
                                paired_t_test, stable_seed)
from healthbench.core.types import SampleResult


def _binary_pairs(b: int, c: int, both: int, neither: int) -> tuple[list[float], list[float]]:
    base = [1.0] * b + [0.0] * c + [1.0] * both + [0.0] * neither
    new = [0.0] * b + [1.0] * c + [1.0] * both + [0.0] * neither
    return base, new


def test_mcnemar_matches_scipy_binomtest_and_statsmodels_exact() -> None:
    base, new = _binary_pairs(b=12, c=3, both=30, neither=55)
    b, c, p = mcnemar_exact(base, new)
    assert (b, c) == (12, 3)
    assert p == pytest.approx(stats.binomtest(3, 15, 0.5).pvalue, rel=1e-12)
    # statsmodels.stats.contingency_tables.mcnemar([[30, 12], [3, 55]], exact=True).pvalue
    assert p == pytest.approx(0.03515625, rel=1e-12)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 40), st.integers(0, 40), st.integers(0, 20), st.integers(0, 20))
def test_mcnemar_equals_binomtest_for_any_table(b: int, c: int, both: int, neither: int) -> None:
    base, new = _binary_pairs(b, c, both, neither)
    _, _, p = mcnemar_exact(base, new)
    expected = 1.0 if b + c == 0 else stats.binomtest(b, b + c, 0.5).pvalue
    assert p == pytest.approx(expected, rel=1e-9, abs=1e-15)


def test_mcnemar_refuses_non_binary_scores() -> None:
    with pytest.raises(ValueError, match="0/1"):
        mcnemar_exact([0.5, 1.0], [1.0, 1.0])


def test_paired_t_matches_scipy_ttest_rel() -> None:
    rng = np.random.default_rng(3)
    base = rng.normal(0.7, 0.1, 80)
    new = base + rng.normal(-0.02, 0.05, 80)
    assert paired_t_test(base, new) == pytest.approx(stats.ttest_rel(new, base).pvalue, rel=1e-12)


def test_paired_t_degenerate_cases_do_not_divide_by_zero() -> None:
    assert paired_t_test([0.5, 0.6], [0.5, 0.6]) == 1.0
    assert paired_t_test([0.5, 0.6], [0.4, 0.5]) == 0.0
    assert paired_t_test([0.5], [0.1]) == 1.0


def test_holm_matches_statsmodels_multipletests() -> None:
    p = [0.01, 0.04, 0.03, 0.005, 0.2, 0.04]
    # statsmodels.stats.multitest.multipletests(p, method="holm")[1]
    assert holm(p) == pytest.approx([0.05, 0.12, 0.12, 0.03, 0.2, 0.12])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(0.0, 1.0), min_size=1, max_size=30))
def test_holm_is_monotone_bounded_and_never_below_raw(p: list[float]) -> None:
    adjusted = holm(p)
    assert all(raw <= adj <= 1.0 for raw, adj in zip(p, adjusted, strict=True))
    order = sorted(range(len(p)), key=lambda i: p[i])
    assert all(adjusted[order[i]] <= adjusted[order[i + 1]] for i in range(len(p) - 1))


def test_compare_scores_picks_mcnemar_for_binary_and_t_test_for_continuous() -> None:
    base, new = _binary_pairs(b=10, c=2, both=40, neither=48)
    binary = compare_scores(base, new, seed=1)
    assert binary.test == MCNEMAR
    assert binary.counts == {"both": 40, "neither": 48, "baseline_only": 10, "new_only": 2}
    assert binary.diff == pytest.approx(-0.08)
    assert binary.ci[0] < -0.08 < binary.ci[1]
    continuous = compare_scores([0.81, 0.79, 0.9], [0.8, 0.7, 0.85])
    assert continuous.test == PAIRED_T


def test_same_inputs_and_seed_give_same_results() -> None:
    rng = np.random.default_rng(0)
    base, new = rng.random(200), rng.random(200)
    assert paired_bootstrap_mean(base, new, seed=5) == paired_bootstrap_mean(base, new, seed=5)
    assert paired_bootstrap_mean(base, new, seed=5) != paired_bootstrap_mean(base, new, seed=6)
    assert compare_scores(base, new, seed=9) == compare_scores(base, new, seed=9)


def test_bootstrap_interval_of_mean_difference_covers_the_truth() -> None:
    rng = np.random.default_rng(1)
    base = rng.normal(30.0, 3.0, 400)  # PSNR-like values in dB
    new = base - 1.0 + rng.normal(0, 0.5, 400)
    lo, hi = paired_bootstrap_mean(base, new, seed=0)
    assert lo < -1.0 < hi and hi - lo < 0.2


def _record(i: int, target: str, parsed: str, error: str | None = None) -> SampleResult:
    return SampleResult(id=str(i), task="t", target=target, response=parsed, parsed=parsed,
                        scores={}, meta={}, error=error)


def _micro_f1(records) -> float:
    """Micro-F1 over comma-separated label sets (a corpus metric: not a mean of sample scores)."""
    tp = fp = fn = 0
    for r in records:
        gold = set(filter(None, str(r.target).split(",")))
        pred = set(filter(None, str(r.parsed or "").split(",")))
        tp, fp, fn = tp + len(gold & pred), fp + len(pred - gold), fn + len(gold - pred)
    return 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0


def test_corpus_metric_is_recomputed_on_paired_resamples() -> None:
    metric = Metric("micro_f1", corpus=_micro_f1)
    rng = np.random.default_rng(2)
    labels = ["a", "b", "c", "d"]
    base, new = [], []
    for i in range(150):
        gold = ",".join(sorted(rng.choice(labels, size=2, replace=False)))
        base.append(_record(i, gold, gold if rng.random() < 0.8 else "a"))
        new.append(_record(i, gold, gold if rng.random() < 0.5 else "a"))
    result = compare_metric(metric, base, new, seed=0, resamples=300)
    assert result.test == PAIRED_BOOTSTRAP
    assert result.diff == pytest.approx(_micro_f1(new) - _micro_f1(base))
    assert result.ci[1] < 0 and result.p_value < 0.01
    same = compare_metric(metric, base, base, seed=0, resamples=100)
    assert same.diff == 0.0 and same.p_value == 1.0
    assert compare_metric(metric, base, new, seed=0, resamples=300) == result


def test_paired_bootstrap_p_value_is_not_floored_by_the_resample_count() -> None:
    rng = np.random.default_rng(4)
    base = rng.normal(0.0, 1.0, 400)
    new = base - 0.06 + rng.normal(0, 0.3, 400)
    diff, ci, p = paired_bootstrap_statistic(base.tolist(), new.tolist(),
                                             lambda xs: float(np.mean(xs)), resamples=99)
    assert p < 1 / 100  # far beyond what 99 resamples could count
    # the bootstrap-SE test of a mean agrees with the paired t-test on a large sample
    assert np.log10(p) == pytest.approx(np.log10(stats.ttest_rel(new, base).pvalue), rel=0.3)
    assert ci[0] < diff < ci[1] < 0
    _, ci, p = paired_bootstrap_statistic([0.0] * 50, [1.0] * 50, lambda xs: float(np.mean(xs)),
                                          resamples=20)
    assert ci == (1.0, 1.0) and p == 0.0


def test_multinomial_shortcut_matches_the_index_bootstrap_distribution() -> None:
    base, new = _binary_pairs(b=30, c=10, both=100, neither=60)
    lo, hi = paired_bootstrap_mean(base, new, seed=0, resamples=4000)
    diffs = np.asarray(new) - np.asarray(base)
    rng = np.random.default_rng(1)
    means = diffs[rng.integers(0, diffs.size, size=(4000, diffs.size))].mean(axis=1)
    ref_lo, ref_hi = np.percentile(means, [2.5, 97.5])
    assert lo == pytest.approx(ref_lo, abs=0.011) and hi == pytest.approx(ref_hi, abs=0.011)


def test_per_sample_metric_skips_pairs_without_a_score() -> None:
    metric = Metric("accuracy", per_sample=lambda s, r, p: 0.0)
    base = [SampleResult(str(i), "t", "A", "A", "A", {"accuracy": 1.0}, {}) for i in range(4)]
    new = [SampleResult(str(i), "t", "A", "B", "B", {"accuracy": None if i == 0 else 0.0}, {})
           for i in range(4)]
    result = compare_metric(metric, base, new)
    assert result.n == 3 and result.counts["baseline_only"] == 3


def test_pair_records_leaves_out_errored_and_unmatched_pairs() -> None:
    base = {str(i): _record(i, "A", "A") for i in range(5)}
    new = {str(i): _record(i, "A", "B", error="boom" if i == 1 else None) for i in range(1, 6)}
    b, n, excluded = pair_records(base, new)
    assert [r.id for r in b] == [r.id for r in n] == ["2", "3", "4"]
    assert excluded == 1


def test_stable_seed_depends_only_on_labels() -> None:
    assert stable_seed(0, "task", "modality", "CT") == stable_seed(0, "task", "modality", "CT")
    assert stable_seed(0, "task", "modality", "CT") != stable_seed(0, "task", "modality", "MR")
    assert stable_seed(1, "x") != stable_seed(0, "x")

"""Paired comparison of two runs scored on the same samples.

Two runs of a benchmark see the same samples, so their scores are paired: the sample-to-sample
variation (an easy image, a hard question) cancels out and a paired test detects a change that an
unpaired comparison of two intervals would miss. The test follows the metric:

* **0/1 per-sample scores** (accuracy, exact match, parse failure): the exact McNemar test, i.e. a
  two-sided binomial test of the discordant pairs (``b`` = right before, wrong now; ``c`` = wrong
  before, right now) against p = 1/2. Identical to ``scipy.stats.binomtest(b, b + c, 0.5)``.
* **continuous per-sample scores** (SSIM, PSNR of one image): a paired t-test on the per-sample
  differences (``scipy.stats.ttest_rel``).
* **corpus metrics** (micro-F1, BLEU, CIDEr): a paired bootstrap. Pairs of records are resampled
  together and the metric is *recomputed* by its own ``Metric.corpus`` function on both sides of
  every resample; the p-value comes from the bootstrap standard error of the difference (normal
  approximation), so it is not floored at 1/(resamples + 1).

Every comparison also gets a percentile paired-bootstrap interval of the difference
(new − baseline), so all metrics report intervals on one footing. ``holm`` controls the
family-wise error rate over many comparisons (tasks × groups × metrics).

Everything is seeded: the same inputs and seed give the same intervals and p-values.
"""
from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence, TypeVar

import numpy as np

from healthbench.scoring.base import Metric
from healthbench.scoring.stats import percentile_interval, resampled_means
from healthbench.core.types import SampleResult

T = TypeVar("T")

DEFAULT_RESAMPLES = 2000
CORPUS_RESAMPLES = 300  # a corpus metric costs two full recomputes per resample
CONFIDENCE = 0.95

MCNEMAR = "mcnemar_exact"
PAIRED_T = "paired_t"
PAIRED_BOOTSTRAP = "paired_bootstrap"


@dataclass(frozen=True)
class PairedResult:
    """The comparison of one metric between two runs on ``n`` paired samples.

    ``diff`` is ``new - baseline`` in the metric's own units (fractions for accuracy), ``ci`` its
    paired-bootstrap interval, ``p_value`` the two-sided p-value of the named ``test`` for "no
    difference". ``counts`` holds the McNemar table for 0/1 scores: ``both`` right in both runs,
    ``neither``, ``baseline_only`` (right before, wrong now) and ``new_only``.
    """

    test: str
    n: int
    baseline: float
    new: float
    diff: float
    ci: tuple[float | None, float | None]
    p_value: float
    counts: Mapping[str, int] = field(default_factory=dict)


def stable_seed(seed: int, *labels: object) -> int:
    """A seed for one comparison that depends only on ``seed`` and its labels, so adding a task
    or a group to a comparison does not change the intervals of the others."""
    return (seed * 1_000_003 + zlib.crc32("\0".join(map(str, labels)).encode())) % (2 ** 32)


# --- the tests -------------------------------------------------------------------------------

def mcnemar_exact(baseline: Sequence[float], new: Sequence[float]) -> tuple[int, int, float]:
    """``(b, c, p)``: discordant counts and the exact two-sided McNemar p-value.

    ``b`` counts pairs right in the baseline and wrong in the new run, ``c`` the reverse. With no
    discordant pair the runs agree everywhere and p = 1.
    """
    from scipy.stats import binom

    base = _as_binary(baseline, "baseline")
    newer = _as_binary(new, "new")
    if base.shape != newer.shape:
        raise ValueError(f"paired scores differ in length: {base.size} vs {newer.size}")
    b = int(np.sum(base & ~newer))
    c = int(np.sum(~base & newer))
    if b + c == 0:
        return b, c, 1.0
    # The binomial(b + c, 1/2) is symmetric: the two-sided exact p is twice the smaller tail.
    p = min(1.0, 2.0 * float(binom.cdf(min(b, c), b + c, 0.5)))
    return b, c, p


def paired_t_test(baseline: Sequence[float], new: Sequence[float]) -> float:
    """Two-sided p-value of the paired t-test of ``new - baseline`` against 0.

    Degenerate cases are decided without dividing by zero: identical scores give p = 1, a
    constant non-zero difference p = 0, fewer than two pairs p = 1 (nothing can be concluded).
    """
    diffs = np.asarray(new, dtype=np.float64) - np.asarray(baseline, dtype=np.float64)
    if diffs.size < 2:
        return 1.0
    if np.allclose(diffs, diffs[0], rtol=0.0, atol=1e-12):
        return 1.0 if abs(diffs[0]) <= 1e-12 else 0.0
    from scipy.stats import ttest_rel

    return float(ttest_rel(new, baseline).pvalue)


def paired_bootstrap_mean(baseline: Sequence[float], new: Sequence[float], seed: int = 0,
                          resamples: int = DEFAULT_RESAMPLES,
                          confidence: float = CONFIDENCE) -> tuple[float | None, float | None]:
    """Percentile interval of the mean paired difference ``new - baseline``."""
    diffs = np.asarray(new, dtype=np.float64) - np.asarray(baseline, dtype=np.float64)
    if diffs.size == 0:
        return (None, None)
    rng = np.random.default_rng(seed)
    values, counts = np.unique(diffs, return_counts=True)
    if values.size <= 16:
        # Few distinct differences (always so for 0/1 scores: -1, 0, 1): resampling n pairs is
        # drawing multinomial counts of those values, the same distribution at a fraction of
        # the cost on large sets.
        draws = rng.multinomial(diffs.size, counts / diffs.size, size=resamples)
        return _percentile(draws @ values / diffs.size, confidence)
    return _percentile(resampled_means(diffs, resamples, rng), confidence)


def paired_bootstrap_statistic(baseline: Sequence[T], new: Sequence[T],
                               statistic: Callable[[Sequence[T]], float], seed: int = 0,
                               resamples: int = CORPUS_RESAMPLES,
                               confidence: float = CONFIDENCE,
                               ) -> tuple[float, tuple[float | None, float | None], float]:
    """``(diff, ci, p)`` for a statistic recomputed on paired resamples of two item lists.

    ``baseline[i]`` and ``new[i]`` are the same sample in the two runs; each resample draws pair
    indices once and recomputes ``statistic`` on both sides. ``ci`` is the percentile interval of
    the resampled differences; ``p`` the two-sided normal-approximation p-value of ``d / se``
    with ``se`` the bootstrap standard error. (A count-based bootstrap p-value cannot go below
    1/(B+1): with a few hundred resamples, Holm over many comparisons could then never reject.)
    """
    if len(baseline) != len(new):
        raise ValueError(f"paired items differ in length: {len(baseline)} vs {len(new)}")
    n = len(baseline)
    if n == 0:
        return float("nan"), (None, None), 1.0
    observed = float(statistic(new)) - float(statistic(baseline))
    rng = np.random.default_rng(seed)
    diffs = np.empty(resamples)
    for i in range(resamples):
        idx = rng.integers(0, n, size=n)
        diffs[i] = float(statistic([new[j] for j in idx])) - \
            float(statistic([baseline[j] for j in idx]))
    finite = diffs[np.isfinite(diffs)]
    if not math.isfinite(observed) or finite.size == 0:
        return observed, (None, None), 1.0
    se = float(np.std(finite, ddof=1)) if finite.size > 1 else 0.0
    if abs(observed) <= 1e-12:
        p = 1.0
    elif se <= 1e-12:
        p = 0.0  # every resample gives the same non-zero difference
    else:
        from scipy.stats import norm

        p = float(2.0 * norm.sf(abs(observed) / se))
    return observed, _percentile(finite, confidence), p


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm–Bonferroni adjusted p-values, in the input order.

    The i-th smallest p is multiplied by (m - i + 1), adjusted values are made monotone and capped
    at 1; rejecting where the adjusted p < alpha controls the family-wise error rate at alpha
    under any dependence between the tests.
    """
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [1.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * float(p_values[i])))
        adjusted[i] = running
    return adjusted


# --- one metric on paired records ------------------------------------------------------------

def is_binary(values: Sequence[float]) -> bool:
    arr = np.asarray(values, dtype=np.float64)
    return bool(np.all((arr == 0.0) | (arr == 1.0)))


def compare_scores(baseline: Sequence[float], new: Sequence[float], seed: int = 0,
                   resamples: int | None = None) -> PairedResult:
    """Per-sample scores of the same samples: McNemar when both are 0/1, else a paired t-test.
    ``resamples`` of the interval: None is ``DEFAULT_RESAMPLES``."""
    base = np.asarray(baseline, dtype=np.float64)
    newer = np.asarray(new, dtype=np.float64)
    if base.shape != newer.shape:
        raise ValueError(f"paired scores differ in length: {base.size} vs {newer.size}")
    n = int(base.size)
    if n == 0:
        return PairedResult(PAIRED_T, 0, float("nan"), float("nan"), float("nan"),
                            (None, None), 1.0)
    ci = paired_bootstrap_mean(base, newer, seed=seed,
                               resamples=DEFAULT_RESAMPLES if resamples is None else resamples)
    mean_base, mean_new = float(base.mean()), float(newer.mean())
    if is_binary(base) and is_binary(newer):
        b, c, p = mcnemar_exact(base, newer)
        both = int(np.sum((base == 1) & (newer == 1)))
        counts = {"both": both, "neither": n - both - b - c, "baseline_only": b, "new_only": c}
        return PairedResult(MCNEMAR, n, mean_base, mean_new, mean_new - mean_base, ci, p, counts)
    return PairedResult(PAIRED_T, n, mean_base, mean_new, mean_new - mean_base, ci,
                        paired_t_test(base, newer))


def pair_records(baseline: Mapping[str, SampleResult], new: Mapping[str, SampleResult],
                 ids: Sequence[str] | None = None,
                 ) -> tuple[list[SampleResult], list[SampleResult], int]:
    """Records of the same ids, in one order, leaving out pairs where either run errored.

    Returns ``(baseline_records, new_records, n_excluded)``. ``ids`` restricts (and orders) the
    pairing; by default every id present in both runs, sorted.
    """
    keys = sorted(set(baseline) & set(new)) if ids is None else list(ids)
    base_out, new_out, excluded = [], [], 0
    for key in keys:
        a, b = baseline.get(key), new.get(key)
        if a is None or b is None or a.error or b.error:
            excluded += 1
            continue
        base_out.append(a)
        new_out.append(b)
    return base_out, new_out, excluded


def compare_metric(metric: Metric, baseline: Sequence[SampleResult], new: Sequence[SampleResult],
                   seed: int = 0, resamples: int | None = None) -> PairedResult:
    """Compare one metric between paired record lists (``baseline[i]`` pairs with ``new[i]``).

    A corpus metric is recomputed by ``metric.corpus`` on paired resamples; a per-sample metric
    uses the stored scores, leaving out pairs where either score is missing (None: the metric
    does not apply to that sample).
    """
    if len(baseline) != len(new):
        raise ValueError(f"paired records differ in length: {len(baseline)} vs {len(new)}")
    if metric.corpus is not None:
        corpus = metric.corpus
        diff, ci, p = paired_bootstrap_statistic(
            baseline, new, corpus, seed=seed,
            resamples=resamples if resamples is not None else CORPUS_RESAMPLES)
        base_value = float(corpus(baseline)) if baseline else float("nan")
        new_value = float(corpus(new)) if new else float("nan")
        return PairedResult(PAIRED_BOOTSTRAP, len(baseline), base_value, new_value, diff, ci, p)
    base_scores, new_scores = [], []
    for a, b in zip(baseline, new, strict=True):
        x, y = a.scores.get(metric.name), b.scores.get(metric.name)
        if x is None or y is None:
            continue
        base_scores.append(float(x))
        new_scores.append(float(y))
    return compare_scores(base_scores, new_scores, seed=seed, resamples=resamples)


# --- helpers ---------------------------------------------------------------------------------

def _as_binary(values: Sequence[float], which: str) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if not np.all((arr == 0.0) | (arr == 1.0)):
        raise ValueError(f"McNemar needs 0/1 scores; the {which} scores have other values")
    return arr == 1.0


def _percentile(values: np.ndarray, confidence: float) -> tuple[float | None, float | None]:
    lo, hi = percentile_interval(values, confidence)
    return (lo, hi)

"""Bootstrap intervals for any metric, resampling *samples* with a fixed seed.

Per-sample metrics resample their score vector (vectorised); corpus metrics (BLEU, micro-F1…)
are recomputed on each resample of the sample records, so their intervals reflect sample-level
variation, not a per-sample approximation. Same inputs and seed → same intervals.

Memory and time stay bounded at full benchmark size (OmniMedVQA: ~128k questions). The resampled
means of a score vector are computed in chunks of resamples, so no ``resamples × n`` index matrix
is ever built; the chunks consume the generator exactly as the one big draw did, so intervals
are the same as before for the same seed. For scores with few distinct values (0/1 accuracy,
parse failure) and more than ``INDEX_DRAW_LIMIT`` of them, each resample is drawn directly as
multinomial counts of those values (as ``paired.paired_bootstrap_mean`` does): the same bootstrap
distribution (a resample's counts *are* multinomial), at a cost independent of n, but another
draw from the generator, so those intervals differ from the index draw's within Monte Carlo
error (tests/test_bootstrap.py checks the two distributions agree). Up to the limit the index
draw is kept, so small runs (the bundled sample suites, the tests) keep their intervals exactly.
"""
from __future__ import annotations

from typing import Callable, Sequence, TypeVar

import numpy as np

T = TypeVar("T")

DEFAULT_RESAMPLES = 1000
CORPUS_RESAMPLES = 200  # a corpus metric costs a full recompute per resample
CONFIDENCE = 0.95
#: Above this many scores, few-valued scores are resampled as multinomial counts (see above).
INDEX_DRAW_LIMIT = 1000
#: "Few distinct values": at most this many (0/1 scores have 2; a 5-point rating 5).
FEW_VALUES = 16


def percentile_interval(values: np.ndarray, confidence: float) -> list[float | None]:
    values = values[np.isfinite(values)]
    if values.size == 0:
        return [None, None]
    tail = (1.0 - confidence) / 2.0 * 100.0
    lo, hi = np.percentile(values, [tail, 100.0 - tail])
    return [float(lo), float(hi)]


def bootstrap_mean_ci(scores: Sequence[float], seed: int = 0,
                      resamples: int = DEFAULT_RESAMPLES,
                      confidence: float = CONFIDENCE) -> list[float | None]:
    """Percentile bootstrap interval of the mean of ``scores``."""
    arr = np.asarray([s for s in scores if s is not None], dtype=np.float64)
    if arr.size == 0:
        return [None, None]
    return percentile_interval(resampled_means(arr, resamples, np.random.default_rng(seed)),
                               confidence)


def resampled_means(arr: np.ndarray, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """Means of ``resamples`` bootstrap resamples of ``arr``, in bounded memory.

    Few-valued scores beyond ``INDEX_DRAW_LIMIT`` are drawn as multinomial counts; everything
    else as chunked index draws (identical to one ``resamples × n`` draw, for the same seed).
    """
    if arr.size > INDEX_DRAW_LIMIT:
        values, counts = np.unique(arr, return_counts=True)
        if values.size <= FEW_VALUES:
            draws = rng.multinomial(arr.size, counts / arr.size, size=resamples)
            return draws @ values / arr.size
    return _index_resampled_means(arr, resamples, rng)


def _index_resampled_means(arr: np.ndarray, resamples: int,
                           rng: np.random.Generator) -> np.ndarray:
    """The plain bootstrap draw (indices with replacement), a chunk of resamples at a time."""
    means = np.empty(resamples)
    chunk = max(1, 2_000_000 // arr.size)
    for start in range(0, resamples, chunk):
        stop = min(resamples, start + chunk)
        idx = rng.integers(0, arr.size, size=(stop - start, arr.size))
        means[start:stop] = arr[idx].mean(axis=1)
    return means


def bootstrap_ci(items: Sequence[T], statistic: Callable[[Sequence[T]], float], seed: int = 0,
                 resamples: int = CORPUS_RESAMPLES,
                 confidence: float = CONFIDENCE) -> list[float | None]:
    """Percentile bootstrap interval of ``statistic`` recomputed on resampled ``items``."""
    if not items:
        return [None, None]
    rng = np.random.default_rng(seed)
    n = len(items)
    values = np.array([statistic([items[i] for i in rng.integers(0, n, size=n)])
                       for _ in range(resamples)], dtype=np.float64)
    return percentile_interval(values, confidence)


def stratified_macro_ci(groups: Sequence[Sequence[float]], seed: int = 0,
                        resamples: int = DEFAULT_RESAMPLES,
                        confidence: float = CONFIDENCE) -> list[float | None]:
    """Interval of the unweighted mean of group means, resampling within each group."""
    arrays = [np.asarray([s for s in g if s is not None], dtype=np.float64) for g in groups]
    arrays = [a for a in arrays if a.size]
    if not arrays:
        return [None, None]
    rng = np.random.default_rng(seed)
    totals = np.zeros(resamples)
    for arr in arrays:
        totals += resampled_means(arr, resamples, rng)
    return percentile_interval(totals / len(arrays), confidence)

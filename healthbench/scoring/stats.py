"""Bootstrap intervals for any metric, resampling *samples* with a fixed seed.

Per-sample metrics resample their score vector (vectorised); corpus metrics (BLEU, micro-F1…)
are recomputed on each resample of the sample records, so their intervals reflect sample-level
variation, not a per-sample approximation. Same inputs and seed → same intervals.
"""
from __future__ import annotations

from typing import Callable, Sequence, TypeVar

import numpy as np

T = TypeVar("T")

DEFAULT_RESAMPLES = 1000
CORPUS_RESAMPLES = 200  # a corpus metric costs a full recompute per resample
CONFIDENCE = 0.95


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
    """Means of ``resamples`` bootstrap resamples of ``arr``, in chunks that bound memory."""
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
        idx = rng.integers(0, arr.size, size=(resamples, arr.size))
        totals += arr[idx].mean(axis=1)
    return percentile_interval(totals / len(arrays), confidence)

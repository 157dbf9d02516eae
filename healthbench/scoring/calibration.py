"""Calibration of likelihood-scored multiple-choice tasks: is the model's confidence honest?

For a task with ``scorer: loglikelihood`` each record holds one score per option (the response)
and the chosen option (argmax, ties to the first). The model's *confidence* is the softmax of the
option scores at the chosen option; *correct* is whether the chosen option is the target. From
these (confidence, correct) pairs, overall and per group, with bootstrap intervals (resampling
questions):

* ``ece`` — expected calibration error over ``BINS`` = 15 **equal-mass** bins (questions sorted
  by confidence and split into 15 bins of (nearly) equal count, ``numpy.array_split``):
  ``Σ_b (n_b / N) · |acc_b − conf_b|``;
* ``brier`` — the Brier score of the confidence in the chosen option: ``mean((conf − correct)²)``;
* ``accuracy_at_coverage`` — selective prediction: accuracy on the ``c·N`` most confident
  questions (rounded up; ties by record order) for each coverage ``c`` in ``COVERAGES``;
* ``bins`` — each bin's confidence range, mean confidence, accuracy and count: the reliability
  diagram the HTML report draws.

Records of re-asked option orders (``scoring.robustness``) are left out by the caller.
"""
from __future__ import annotations

import math
from collections import defaultdict
from typing import Any, Sequence

import numpy as np

from healthbench.core.types import SampleResult
from healthbench.scoring.aggregate import group_values
from healthbench.scoring.stats import CONFIDENCE, CORPUS_RESAMPLES, percentile_interval

BINS = 15
COVERAGES = (0.2, 0.5, 0.8, 1.0)


def confidence(scores: Sequence[float]) -> tuple[int, float]:
    """(index of the chosen option, its softmax probability); ties go to the first option, as
    the scorer picks it."""
    values = np.asarray(scores, dtype=np.float64)
    best = int(np.argmax(values))  # first maximum
    shifted = np.exp(values - values[best])
    return best, float(shifted[best] / shifted.sum())


def pairs(records: Sequence[SampleResult]) -> list[tuple[float, float]]:
    """(confidence, correct) for each scored record with one finite score per option."""
    out = []
    for record in records:
        scores = record.response
        if record.error or not isinstance(scores, list) or len(scores) < 1:
            continue
        if not all(isinstance(s, (int, float)) and math.isfinite(s) for s in scores):
            continue
        _, conf = confidence(scores)
        correct = record.parsed is not None and \
            str(record.parsed).strip().upper() == str(record.target).strip().upper()
        out.append((conf, float(correct)))
    return out


def _split(conf: np.ndarray, bins: int) -> list[np.ndarray]:
    """Indices sorted by confidence (stable), in ``bins`` chunks of (nearly) equal count."""
    order = np.argsort(conf, kind="stable")
    return [chunk for chunk in np.array_split(order, min(bins, len(order))) if chunk.size]


def ece(conf: Sequence[float], correct: Sequence[float], bins: int = BINS) -> float:
    """Expected calibration error, equal-mass bins."""
    c, y = np.asarray(conf, dtype=np.float64), np.asarray(correct, dtype=np.float64)
    if c.size == 0:
        return float("nan")
    return float(sum(idx.size / c.size * abs(y[idx].mean() - c[idx].mean())
                     for idx in _split(c, bins)))


def brier(conf: Sequence[float], correct: Sequence[float]) -> float:
    c, y = np.asarray(conf, dtype=np.float64), np.asarray(correct, dtype=np.float64)
    return float(np.mean((c - y) ** 2)) if c.size else float("nan")


def accuracy_at_coverage(conf: Sequence[float], correct: Sequence[float],
                         coverage: float) -> float:
    """Accuracy on the ``ceil(coverage·N)`` most confident answers."""
    c, y = np.asarray(conf, dtype=np.float64), np.asarray(correct, dtype=np.float64)
    if c.size == 0:
        return float("nan")
    keep = max(1, math.ceil(coverage * c.size - 1e-9))
    order = np.argsort(-c, kind="stable")[:keep]
    return float(y[order].mean())


def reliability_bins(conf: Sequence[float], correct: Sequence[float],
                     bins: int = BINS) -> list[dict[str, Any]]:
    c, y = np.asarray(conf, dtype=np.float64), np.asarray(correct, dtype=np.float64)
    return [{"conf_lo": float(c[idx].min()), "conf_hi": float(c[idx].max()),
             "confidence": float(c[idx].mean()), "accuracy": float(y[idx].mean()),
             "n": int(idx.size)} for idx in _split(c, bins)]


def _interval(conf: np.ndarray, correct: np.ndarray, statistic: Any,
              seed: int) -> list[float | None]:
    """Percentile bootstrap over questions (resampled pairs), as ``stats.bootstrap_ci`` does,
    on index arrays so that a large task stays fast."""
    rng = np.random.default_rng(seed)
    n = conf.size
    values = np.array([statistic(conf[idx], correct[idx]) for idx in
                       (rng.integers(0, n, size=n) for _ in range(CORPUS_RESAMPLES))])
    return percentile_interval(values, CONFIDENCE)


def _summary(items: list[tuple[float, float]], seed: int) -> dict[str, Any]:
    conf = np.asarray([p[0] for p in items], dtype=np.float64)
    correct = np.asarray([p[1] for p in items], dtype=np.float64)

    def entry(statistic: Any) -> dict[str, Any]:
        value = statistic(conf, correct) if items else float("nan")
        return {"value": value if math.isfinite(value) else None,
                "ci": _interval(conf, correct, statistic, seed) if items else [None, None],
                "n": len(items)}

    return {"n": len(items), "ece": entry(ece), "brier": entry(brier),
            "accuracy_at_coverage": {
                f"{c:g}": entry(lambda a, b, c=c: accuracy_at_coverage(a, b, c))
                for c in COVERAGES},
            "mean_confidence": float(conf.mean()) if items else None,
            "bins": reliability_bins(conf, correct) if items else []}


def calibration_summary(records: Sequence[SampleResult], group_by: Sequence[str],
                        seed: int) -> dict[str, Any]:
    """The ``calibration`` block of a likelihood-scored task in results.json."""
    items = pairs(records)
    block: dict[str, Any] = {"bins_rule": f"{BINS} equal-mass bins", **_summary(items, seed),
                             "groups": {}}
    for key in group_by:
        buckets: dict[str, list[SampleResult]] = defaultdict(list)
        for record in records:
            for value in group_values(record, key):
                buckets[value].append(record)
        block["groups"][key] = {value: _summary(pairs(members), seed)
                                for value, members in sorted(buckets.items())}
    return block

"""Multi-label metrics (micro/macro/weighted/per-label F1, precision, recall), sklearn semantics.

Corpus metrics over records whose ``parsed`` (prediction) and ``target`` are label vectors of
0/1 (or booleans) of one length. An unparsed prediction (null) counts as predicting no label at
all (never a guess); report ``parse_failure`` beside it. Labels absent from both prediction and
reference get F1 0 under sklearn's ``zero_division=0``, which is what LLaVA-Rad / CheXbert
scorers use; pass ``zero_division: 1`` to count them as perfect instead.

``label_matrices`` and ``prf`` are plain functions other modules (e.g. CheXpert scorers) call.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from healthbench.core.catalog import METRICS
from healthbench.scoring.base import UNPARSED, Metric
from healthbench.core.types import SampleResult

AVERAGES = ("micro", "macro", "weighted", "samples")
_PARTS = {"precision": 0, "recall": 1, "f1": 2}


def _vector(value: Any, width: int | None, where: str) -> np.ndarray:
    arr = np.asarray(value)
    if arr.ndim != 1 or (width is not None and arr.size != width):
        raise ValueError(f"{where}: expected a label vector of length {width}, got {value!r}")
    if not np.isin(arr, (0, 1)).all():
        raise ValueError(f"{where}: label vectors hold 0/1 only, got {value!r}")
    return arr.astype(np.int8)


def label_matrices(records: Sequence[SampleResult]) -> tuple[np.ndarray, np.ndarray]:
    """(y_true, y_pred) as n×L 0/1 matrices; an unparsed prediction becomes all zeros.

    Built in one numpy call (a bootstrap rebuilds them per resample); only when that fails is
    each row checked, so the error names the offending sample.
    """
    if not records:
        return np.zeros((0, 0), np.int8), np.zeros((0, 0), np.int8)
    try:
        truth = np.asarray([r.target for r in records])
        width = truth.shape[1] if truth.ndim == 2 else -1
        preds = np.asarray([[0] * width if r.parsed is UNPARSED else r.parsed for r in records])
        if truth.ndim == 2 and preds.shape == truth.shape and np.isin(truth, (0, 1)).all() \
                and np.isin(preds, (0, 1)).all():
            return truth.astype(np.int8), preds.astype(np.int8)
    except (ValueError, TypeError):
        pass
    width = _vector(records[0].target, None, f"sample {records[0].id!r} target").size
    for r in records:  # raises, naming the first malformed row
        _vector(r.target, width, f"sample {r.id!r} target")
        if r.parsed is not UNPARSED:
            _vector(r.parsed, width, f"sample {r.id!r} prediction")
    raise ValueError("label vectors could not be stacked")  # not reached for 0/1 vectors


def _ratio(num: np.ndarray, den: np.ndarray, zero_division: float) -> np.ndarray:
    num, den = np.asarray(num, np.float64), np.asarray(den, np.float64)
    out = np.full(np.broadcast(num, den).shape, float(zero_division))
    np.divide(num, den, out=out, where=den > 0)
    return out


def prf(y_true: np.ndarray, y_pred: np.ndarray, average: str | None = "micro",
        zero_division: float = 0.0) -> tuple[Any, Any, Any]:
    """(precision, recall, F1) with scikit-learn's ``precision_recall_fscore_support``
    semantics (``average`` micro/macro/weighted/samples/binary, or None for per-label arrays;
    ``zero_division`` where a denominator is 0). Counted with numpy because a bootstrap calls it
    hundreds of times per group and sklearn's input checks dominate (tests compare the two)."""
    t = np.asarray(y_true, dtype=bool)
    p = np.asarray(y_pred, dtype=bool)
    if t.ndim == 1:
        t, p = t[:, None], p[:, None]
        average = None if average == "binary" else average
    axis = 1 if average == "samples" else 0
    tp = (t & p).sum(axis)
    n_pred, n_true = p.sum(axis), t.sum(axis)
    if average == "micro":
        tp, n_pred, n_true = tp.sum(), n_pred.sum(), n_true.sum()
    prec = _ratio(tp, n_pred, zero_division)
    rec = _ratio(tp, n_true, zero_division)
    f1 = _ratio(2 * tp, n_pred + n_true, zero_division)
    if average in (None, "micro"):
        squeeze = (lambda a: float(a[0]) if a.size == 1 and y_true.ndim == 1 else a) \
            if average is None else float
        return squeeze(prec), squeeze(rec), squeeze(f1)
    if average == "weighted":
        total = n_true.sum()
        if total == 0:
            return (float(zero_division),) * 3
        return tuple(float((m * n_true).sum() / total) for m in (prec, rec, f1))
    if average in ("macro", "samples"):
        return float(prec.mean()), float(rec.mean()), float(f1.mean())
    raise ValueError(f"average must be one of {AVERAGES}, 'binary' or None, got {average!r}")


def _factory(part: str, average: str):
    def make(label: int | str | None = None, labels: Sequence[str] | None = None,
             zero_division: float = 0.0, name: str | None = None) -> Metric:
        """``label``: score one label (its index, or its name in ``labels``) instead of the
        ``average``; e.g. ``{name: f1, args: {label: Edema, labels: [...]}}``."""
        index: int | None = None
        if label is not None:
            if isinstance(label, str):
                if not labels or label not in labels:
                    raise ValueError(f"label {label!r} is not in labels {labels!r}")
                index = list(labels).index(label)
            else:
                index = int(label)
        if zero_division not in (0, 1, 0.0, 1.0):
            raise ValueError(f"zero_division must be 0 or 1, got {zero_division!r}")

        def corpus(records: Sequence[SampleResult]) -> float:
            y_true, y_pred = label_matrices(records)
            if y_true.size == 0:
                return float("nan")
            if index is not None:
                if not 0 <= index < y_true.shape[1]:
                    raise ValueError(f"label index {index} out of range {y_true.shape[1]}")
                return float(prf(y_true[:, index], y_pred[:, index], "binary",
                                 zero_division)[_PARTS[part]])
            return float(prf(y_true, y_pred, average, zero_division)[_PARTS[part]])

        default = (f"{average}_{part}" if label is None else f"{label}_{part}")
        return Metric(name or default, corpus=corpus)

    make.__name__ = f"{average}_{part}"
    return make


for _avg in AVERAGES:
    for _part in _PARTS:
        METRICS.register(f"{_avg}_{_part}", _factory(_part, _avg))
METRICS.register("label_f1", _factory("f1", "binary"))
METRICS.register("label_precision", _factory("precision", "binary"))
METRICS.register("label_recall", _factory("recall", "binary"))

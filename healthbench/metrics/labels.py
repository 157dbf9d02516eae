"""Multi-label metrics (micro/macro/weighted/per-label F1, precision, recall) via scikit-learn.

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

from healthbench.catalog import METRICS
from healthbench.metrics.base import UNPARSED, Metric
from healthbench.types import SampleResult

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
    """(y_true, y_pred) as n×L 0/1 matrices; an unparsed prediction becomes all zeros."""
    if not records:
        return np.zeros((0, 0), np.int8), np.zeros((0, 0), np.int8)
    truth = [_vector(r.target, None, f"sample {r.id!r} target") for r in records]
    width = truth[0].size
    truth = [_vector(t, width, f"sample {r.id!r} target") for t, r in zip(truth, records)]
    preds = [np.zeros(width, np.int8) if r.parsed is UNPARSED
             else _vector(r.parsed, width, f"sample {r.id!r} prediction") for r in records]
    return np.vstack(truth), np.vstack(preds)


def prf(y_true: np.ndarray, y_pred: np.ndarray, average: str | None = "micro",
        zero_division: float = 0.0) -> tuple[Any, Any, Any]:
    """(precision, recall, F1): sklearn ``precision_recall_fscore_support`` with explicit
    ``zero_division``; ``average=None`` gives per-label arrays."""
    from sklearn.metrics import precision_recall_fscore_support

    p, r, f, _ = precision_recall_fscore_support(y_true, y_pred, average=average,
                                                 zero_division=zero_division)
    return p, r, f


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

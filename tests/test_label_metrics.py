"""Multi-label F1/precision/recall over records agree with scikit-learn on random matrices."""
from __future__ import annotations

import numpy as np
import pytest

from healthbench.core.catalog import METRICS
from healthbench.scoring.labels import label_matrices, prf
from healthbench.core.types import SampleResult


def _records(y_true: np.ndarray, y_pred: list) -> list[SampleResult]:
    return [SampleResult(id=str(i), task="t", target=t.tolist(), response="",
                         parsed=None if p is None else list(p), scores={}, meta={})
            for i, (t, p) in enumerate(zip(y_true, y_pred))]


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("average", ["micro", "macro", "weighted", "samples"])
def test_averaged_metrics_match_sklearn(seed: int, average: str) -> None:
    from sklearn.metrics import f1_score, precision_score, recall_score

    rng = np.random.default_rng(seed)
    y_true = (rng.random((60, 14)) < 0.3).astype(int)
    y_pred = (rng.random((60, 14)) < 0.3).astype(int)
    records = _records(y_true, list(y_pred))
    for part, ref in (("f1", f1_score), ("precision", precision_score),
                      ("recall", recall_score)):
        metric = METRICS.get(f"{average}_{part}")()
        assert metric.name == f"{average}_{part}"
        expected = ref(y_true, y_pred, average=average, zero_division=0)
        assert metric.corpus(records) == pytest.approx(expected, abs=1e-12)


def test_per_label_by_name_and_index() -> None:
    from sklearn.metrics import f1_score

    rng = np.random.default_rng(1)
    y_true = (rng.random((40, 3)) < 0.5).astype(int)
    y_pred = (rng.random((40, 3)) < 0.5).astype(int)
    records = _records(y_true, list(y_pred))
    per_label = f1_score(y_true, y_pred, average=None, zero_division=0)
    by_name = METRICS.get("label_f1")(label="Edema", labels=["Atelectasis", "Edema", "Mass"])
    assert by_name.name == "Edema_f1"
    assert by_name.corpus(records) == pytest.approx(per_label[1])
    assert METRICS.get("label_f1")(label=2).corpus(records) == pytest.approx(per_label[2])


def test_unparsed_prediction_is_no_label_not_a_guess() -> None:
    y_true = np.array([[1, 0], [0, 1]])
    records = _records(y_true, [None, [0, 1]])
    t, p = label_matrices(records)
    assert p.tolist() == [[0, 0], [0, 1]]
    assert METRICS.get("micro_recall")().corpus(records) == pytest.approx(0.5)


def test_zero_division_is_explicit() -> None:
    y = np.zeros((4, 2), int)
    assert prf(y, y, "macro", 0.0)[2] == 0.0
    assert prf(y, y, "macro", 1.0)[2] == 1.0


@pytest.mark.parametrize("bad", [[1, 0, 1], [2, 0], "10"])
def test_malformed_vectors_name_the_sample(bad) -> None:
    records = _records(np.array([[1, 0]]), [bad])
    with pytest.raises(ValueError, match="sample '0'"):
        METRICS.get("micro_f1")().corpus(records)


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("zero_division", [0.0, 1.0])
def test_prf_function_matches_sklearn_including_empty_labels(seed: int,
                                                             zero_division: float) -> None:
    from sklearn.metrics import precision_recall_fscore_support

    rng = np.random.default_rng(seed)
    y_true = (rng.random((25, 6)) < 0.2).astype(int)
    y_pred = (rng.random((25, 6)) < 0.2).astype(int)
    y_true[:, 0] = 0  # a label nobody has
    y_pred[:, 1] = 0  # a label nobody predicts
    y_true[3], y_pred[3] = 0, 0  # an empty row
    for average in ("micro", "macro", "weighted", "samples", None):
        expected = precision_recall_fscore_support(y_true, y_pred, average=average,
                                                   zero_division=zero_division)[:3]
        got = prf(y_true, y_pred, average, zero_division)
        for e, g in zip(expected, got):
            np.testing.assert_allclose(g, e, atol=1e-12)
    for col in range(6):
        expected = precision_recall_fscore_support(y_true[:, col], y_pred[:, col],
                                                   average="binary",
                                                   zero_division=zero_division)[:3]
        assert prf(y_true[:, col], y_pred[:, col], "binary", zero_division) == \
            pytest.approx(expected, abs=1e-12)

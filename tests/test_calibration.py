"""Calibration of likelihood-scored tasks: ECE (15 equal-mass bins), Brier and accuracy at
coverage on fixed (confidence, correct) tables, against hand computation and scikit-learn."""
from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.calibration import calibration_curve
from sklearn.metrics import brier_score_loss

from healthbench.core.types import SampleResult
from healthbench.scoring.calibration import (BINS, accuracy_at_coverage, brier,
                                             calibration_summary, confidence, ece,
                                             reliability_bins)

# (confidence, correct), worked by hand below with 3 equal-mass bins of 2
TABLE = [(0.9, 1), (0.8, 1), (0.7, 0), (0.6, 1), (0.3, 0), (0.2, 1)]


def test_ece_brier_and_coverage_equal_hand_computed_values() -> None:
    conf, correct = [c for c, _ in TABLE], [y for _, y in TABLE]
    # bins by confidence: {0.2, 0.3} acc .5 conf .25 | {0.6, 0.7} acc .5 conf .65 |
    # {0.8, 0.9} acc 1 conf .85  →  ECE = (2/6)(.25 + .15 + .15) = 0.55 / 3
    assert ece(conf, correct, bins=3) == pytest.approx(0.55 / 3)
    # (.1² + .2² + .7² + .4² + .3² + .8²) / 6 = 1.43 / 6
    assert brier(conf, correct) == pytest.approx(1.43 / 6)
    assert accuracy_at_coverage(conf, correct, 0.2) == 1.0  # ceil(1.2) = 2 most confident
    assert accuracy_at_coverage(conf, correct, 0.5) == pytest.approx(2 / 3)
    assert accuracy_at_coverage(conf, correct, 1.0) == pytest.approx(4 / 6)
    # 15 bins of 6 answers: one answer per bin, ECE = mean |correct - confidence|
    assert ece(conf, correct) == pytest.approx((.1 + .2 + .7 + .4 + .3 + .8) / 6)


def test_fifteen_equal_mass_bins_agree_with_scikit_learn() -> None:
    rng = np.random.default_rng(7)
    conf = rng.uniform(0.25, 1.0, size=45)  # 45 distinct values: 15 bins of 3
    correct = (rng.uniform(size=45) < conf).astype(float)
    true, pred = calibration_curve(correct, conf, n_bins=BINS, strategy="quantile")
    assert len(true) == BINS
    assert ece(conf, correct) == pytest.approx(np.mean(np.abs(true - pred)))
    assert brier(conf, correct) == pytest.approx(brier_score_loss(correct, conf))
    bins = reliability_bins(conf, correct)
    assert [b["n"] for b in bins] == [3] * BINS
    assert [b["accuracy"] for b in bins] == pytest.approx(list(true))
    assert [b["confidence"] for b in bins] == pytest.approx(list(pred))


def test_confidence_is_the_softmax_of_the_option_scores_at_the_choice() -> None:
    index, conf = confidence([math.log(0.2), math.log(0.7), math.log(0.1)])
    assert index == 1 and conf == pytest.approx(0.7)
    assert confidence([1.0, 1.0]) == (0, pytest.approx(0.5))  # ties: the first option


def test_summary_from_records_per_group() -> None:
    records = []
    for i, (conf, right) in enumerate(TABLE):
        # six options: A holds the confidence (the argmax), the rest share what is left
        scores = [math.log(conf)] + [math.log((1 - conf) / 5)] * 5
        records.append(SampleResult(id=str(i), task="t", target="A" if right else "B",
                                    response=scores, parsed="A", scores={},
                                    meta={"modality": "CT" if i < 3 else "MR"}))
    records.append(SampleResult(id="err", task="t", target="A", response=None, parsed=None,
                                scores={}, meta={"modality": "CT"}, error="model error: x"))
    block = calibration_summary(records, ["modality"], seed=0)
    assert block["n"] == 6 and block["bins_rule"] == "15 equal-mass bins"
    assert block["brier"]["value"] == pytest.approx(1.43 / 6)
    lo, hi = block["brier"]["ci"]
    assert lo <= block["brier"]["value"] <= hi
    ct = block["groups"]["modality"]["CT"]
    assert ct["n"] == 3 and ct["brier"]["value"] == pytest.approx((.01 + .04 + .49) / 3)
    assert block["accuracy_at_coverage"]["0.5"]["value"] == pytest.approx(2 / 3)

"""compare's one-pass pairing (``report.pairing.PairedTask``) gives what pairing per slice gave.

Before, compare paired the records of every slice with ``scoring.paired.pair_records`` and read
each metric's scores in ``compare_metric``. ``PairedTask`` pairs once and reads scores into
arrays; on records with errors on either side, ids missing from the new run, missing and None
scores, NaN scores, 0/1 and continuous scores and a corpus metric, every slice and metric must
give the same PairedResult (test, n, means, interval, p-value, counts) and the same excluded count.
"""
from __future__ import annotations

import random

import numpy as np
import pytest

from healthbench.core.types import SampleResult
from healthbench.report.pairing import PairedTask
from healthbench.scoring.base import Metric
from healthbench.scoring.paired import compare_metric, pair_records


def _record(sample_id: str, rng: random.Random) -> SampleResult:
    scores: dict[str, float | None] = {}
    if rng.random() < 0.9:
        scores["accuracy"] = float(rng.random() < 0.6)
    if rng.random() < 0.8:  # a NaN now and then: read_samples accepts one in a hand-edited file
        scores["ssim"] = rng.choice([None, float("nan")]) if rng.random() < 0.1 else rng.random()
    if rng.random() < 0.5:
        scores["rare"] = float(rng.random() < 0.5)
    return SampleResult(id=sample_id, task="t", target="A", response=rng.choice("ABCD"),
                        parsed=rng.choice("ABCD"), scores=scores, meta={},
                        error="bad input: x" if rng.random() < 0.05 else None)


def _corpus_accuracy(records) -> float:
    return float(np.mean([r.parsed == r.target for r in records])) if records else float("nan")


METRICS = [Metric("accuracy", per_sample=lambda *a: None),
           Metric("ssim", per_sample=lambda *a: None),
           Metric("rare", per_sample=lambda *a: None),
           Metric("absent", per_sample=lambda *a: None),
           Metric("corpus_acc", corpus=_corpus_accuracy)]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_each_slice_and_metric_gives_what_pairing_per_slice_gave(seed: int) -> None:
    rng = random.Random(seed)
    ids = [f"s{i:04d}" for i in range(600)]
    rng.shuffle(ids)  # file order is not id order
    baseline = {i: _record(i, rng) for i in ids}
    new = {i: _record(i, rng) for i in ids if rng.random() < 0.97}
    paired = PairedTask(baseline, new)
    ordered = sorted(ids)
    slices = [np.arange(len(ordered))] + [
        np.asarray(sorted(rng.sample(range(len(ordered)), k)), dtype=np.intp)
        for k in (1, 7, 150, 599)]
    compared = 0
    for positions in slices:
        slice_ids = [ordered[i] for i in positions]
        base_recs, new_recs, excluded = pair_records(baseline, new, slice_ids)
        assert paired.excluded(positions) == excluded
        assert paired.records(positions) == (base_recs, new_recs)
        for metric in METRICS:
            assert paired.has_score(metric.name, positions) == any(
                metric.name in r.scores for r in base_recs)
            expected = compare_metric(metric, base_recs, new_recs, seed=seed, resamples=200)
            got = paired.compare(metric, positions, seed=seed, resamples=200)
            # repr: exact for floats, and NaN (a mean over a NaN score) equals itself
            assert repr(got) == repr(expected) or got.n == expected.n == 0, (metric.name,
                                                                             positions.size)
            compared += expected.n > 0
    assert compared >= 15  # most slices and metrics had pairs to compare


def test_error_flags_are_the_errored_samples_both_runs_hold() -> None:
    rng = random.Random(5)
    ids = [f"s{i}" for i in range(50)]
    baseline = {i: _record(i, rng) for i in ids}
    new = {i: _record(i, rng) for i in ids[:40]}
    paired = PairedTask(baseline, new)
    everything = np.arange(len(ids))
    flags = paired.error_flags(everything)
    common = [i for i in sorted(ids) if i in new]
    if not any(baseline[i].error or new[i].error for i in common):
        assert flags is None
    else:
        assert flags is not None
        assert flags[0].tolist() == [float(bool(baseline[i].error)) for i in common]
        assert flags[1].tolist() == [float(bool(new[i].error)) for i in common]
    clean = {i: SampleResult(i, "t", "A", "A", "A", {"accuracy": 1.0}, {}) for i in ids}
    assert PairedTask(clean, clean).error_flags(everything) is None

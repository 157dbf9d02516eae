"""Two runs' records of one task, paired once, for comparing many slices and metrics.

``compare`` tests every metric on the whole task and on each group value. Pairing the records id
by id and reading each metric's score from each record again for every slice and metric was
most of its cost beyond reading the samples files (100k samples: 3 slices' worth of pairing and
6 of score reading). Here the records are paired once, in id order, and each metric's scores
are read once into arrays; a slice is then an array of positions and its paired scores two
lookups. The pairs, their order and their values are those of ``scoring.paired.pair_records``
followed by ``compare_metric``'s reading of the scores, so every test sees the same numbers
(tests/test_compare_pairing.py checks that against those two functions).
"""
from __future__ import annotations

from typing import Mapping

import numpy as np

from healthbench.core.types import SampleResult
from healthbench.scoring.base import Metric
from healthbench.scoring.paired import (
    PairedResult,
    compare_metric,
    compare_scores,
)


class PairedTask:
    """The baseline's records in id order, each with its counterpart in the new run (or None).

    A pair counts (``paired``) when the new run has the id and neither record errored, exactly
    the pairs ``pair_records`` keeps."""

    def __init__(self, baseline: Mapping[str, SampleResult],
                 new: Mapping[str, SampleResult]) -> None:
        self.ids = sorted(baseline)
        self.base = [baseline[i] for i in self.ids]
        self.new = [new.get(i) for i in self.ids]
        n = len(self.ids)
        self.in_new = np.fromiter((r is not None for r in self.new), bool, n)
        self.base_errors = np.fromiter((bool(r.error) for r in self.base), bool, n)
        self.new_errors = np.fromiter((r is not None and bool(r.error) for r in self.new),
                                      bool, n)
        self.paired = self.in_new & ~self.base_errors & ~self.new_errors
        self._scores: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = {}

    def __len__(self) -> int:
        return len(self.ids)

    def excluded(self, positions: np.ndarray) -> int:
        """Pairs of the slice left out (missing from the new run, or errored in either)."""
        return int(positions.size - np.count_nonzero(self.paired[positions]))

    def records(self, positions: np.ndarray) -> tuple[list[SampleResult], list[SampleResult]]:
        """The slice's kept pairs as two record lists, as ``pair_records`` gives them."""
        kept = positions[self.paired[positions]]
        return [self.base[i] for i in kept], [self.new[i] for i in kept]  # type: ignore[misc]

    def has_score(self, name: str, positions: np.ndarray) -> bool:
        """Whether any kept baseline record of the slice has a score named ``name``."""
        return bool(self._read(name)[2][positions].any())

    def scores(self, name: str, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The slice's paired scores of ``name``: kept pairs where both scores are given."""
        base, new, _, given = self._read(name)
        kept = positions[given[positions]]
        return base[kept], new[kept]

    def error_flags(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """1.0/0.0 per sample of the slice that both runs hold: did it error? None when no
        sample errored in either run."""
        common = positions[self.in_new[positions]]
        base, new = self.base_errors[common], self.new_errors[common]
        if not (base.any() or new.any()):
            return None
        return base.astype(np.float64), new.astype(np.float64)

    def compare(self, metric: Metric, positions: np.ndarray, seed: int,
                resamples: int | None) -> PairedResult:
        """``compare_metric`` on the slice's kept pairs: a corpus metric on the records, a
        per-sample one on the stored scores."""
        if metric.corpus is not None:
            base, new = self.records(positions)
            return compare_metric(metric, base, new, seed=seed, resamples=resamples)
        x, y = self.scores(metric.name, positions)
        return compare_scores(x, y, seed=seed, resamples=resamples)

    def _read(self, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(baseline scores, new scores, baseline has the key, both scores given) over kept
        pairs, read once. A score that is given may be NaN (a hand-edited file): it is kept,
        as ``compare_metric`` keeps it."""
        if name not in self._scores:
            n = len(self.ids)
            base, new = np.zeros(n), np.zeros(n)
            has, given = np.zeros(n, bool), np.zeros(n, bool)
            for i in np.flatnonzero(self.paired).tolist():
                a, b = self.base[i].scores, self.new[i].scores  # type: ignore[union-attr]
                has[i] = name in a
                x, y = a.get(name), b.get(name)
                if x is not None and y is not None:
                    base[i], new[i], given[i] = float(x), float(y), True
            self._scores[name] = (base, new, has, given)
        return self._scores[name]

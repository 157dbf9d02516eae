"""Per-sample metrics every suite uses: accuracy, parse failure, exact match."""
from __future__ import annotations

import re
from typing import Any

from healthbench.core.catalog import METRICS
from healthbench.scoring.base import UNPARSED, Metric
from healthbench.core.types import Response, Sample


def _normalise(text: Any) -> str:
    return re.sub(r"\s+", " ", str(text).strip().lower()).strip(" .")


@METRICS.register("accuracy")
def accuracy() -> Metric:
    """1 when the parsed answer equals the target, else 0; an unparsed answer counts as wrong."""

    def score(sample: Sample, response: Response, parsed: Any) -> float:
        if parsed is UNPARSED:
            return 0.0
        return float(str(parsed).strip().upper() == str(sample.target).strip().upper())

    return Metric("accuracy", per_sample=score)


@METRICS.register("parse_failure")
def parse_failure() -> Metric:
    """1 when the extractor found no answer; reported so that 'wrong' and 'unreadable' differ."""

    def score(sample: Sample, response: Response, parsed: Any) -> float:
        return float(parsed is UNPARSED)

    return Metric("parse_failure", per_sample=score, higher_is_better=False)


@METRICS.register("exact_match")
def exact_match() -> Metric:
    """1 when the answer equals the target after lower-casing and collapsing whitespace."""

    def score(sample: Sample, response: Response, parsed: Any) -> float:
        if parsed is UNPARSED:
            return 0.0
        return float(_normalise(parsed) == _normalise(sample.target))

    return Metric("exact_match", per_sample=score)

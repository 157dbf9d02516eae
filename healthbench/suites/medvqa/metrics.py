"""Scores for the short-answer medical VQA sets: VQA-RAD, SLAKE, PathVQA (benchmarks.md §7.2).

Closed and open questions are scored by different rules and reported under different names, so
that a table never mixes them silently. Which kind a sample is comes from ``meta["answer_type"]``
(``closed`` | ``open``), set by the loader: the dataset's own field where it has one that papers
use (SLAKE), otherwise the yes/no rule the standard harnesses apply (VQA-RAD, PathVQA).

* ``closed_accuracy`` (closed questions only). A yes/no target: correct iff exactly one of the
  words "yes" and "no" occurs in the response and it is the target. Every closed question counts
  in the denominator — LLaVA-Med's scorer drops wrong yes/no answers from it, which inflates its
  closed accuracy; that is not copied. A closed target that is not yes/no (SLAKE's "CT or MRI?"):
  correct iff the normalised response equals the normalised target (MedEvalKit's rule).
* ``open_recall`` (open questions only): the fraction of the target's tokens that the response
  contains (multiset token recall, as LLaVA-Med's "open recall").
* ``open_exact_match`` (open questions only): normalised response == normalised target.
* ``medvqa_accuracy`` (all questions): the closed rule on closed questions, exact match on open
  ones — MedEvalKit's "total" accuracy.

Normalisation: lower-case, punctuation to spaces, whitespace collapsed. Per-sample functions
return None where a metric does not apply, so each is averaged over its own questions only.
"""
from __future__ import annotations

import re
from collections import Counter
from typing import Any

from healthbench.core.catalog import METRICS
from healthbench.scoring.base import UNPARSED, Metric
from healthbench.core.types import Response, Sample

CLOSED, OPEN = "closed", "open"
YES_NO = ("yes", "no")
_PUNCT = re.compile(r"[^\w\s]|_")


def normalize(text: Any) -> str:
    return " ".join(_PUNCT.sub(" ", str(text).lower()).split())


def answer_type(sample: Sample) -> str:
    kind = sample.meta.get("answer_type")
    if kind in (CLOSED, OPEN):
        return kind
    return CLOSED if normalize(sample.target) in YES_NO else OPEN


def closed_correct(target: Any, response: Any) -> bool:
    if response is UNPARSED:
        return False
    gold, said = normalize(target), normalize(response)
    if gold in YES_NO:
        words = set(said.split())
        present = [w for w in YES_NO if w in words]
        return present == [gold]
    return said == gold


def token_recall(target: Any, response: Any) -> float:
    gold = Counter(normalize(target).split())
    if not gold:
        return 0.0
    said = Counter(normalize(response).split()) if response is not UNPARSED else Counter()
    return sum((gold & said).values()) / sum(gold.values())


def exact_match(target: Any, response: Any) -> bool:
    return response is not UNPARSED and normalize(response) == normalize(target)


@METRICS.register("closed_accuracy")
def closed_accuracy() -> Metric:
    """Closed questions: exactly one of yes/no, equal to the target (or exact match)."""

    def score(sample: Sample, response: Response, parsed: Any) -> float | None:
        if answer_type(sample) != CLOSED:
            return None
        return float(closed_correct(sample.target, parsed))

    return Metric("closed_accuracy", per_sample=score)


@METRICS.register("open_recall")
def open_recall() -> Metric:
    """Open questions: fraction of target tokens present in the response."""

    def score(sample: Sample, response: Response, parsed: Any) -> float | None:
        return token_recall(sample.target, parsed) if answer_type(sample) == OPEN else None

    return Metric("open_recall", per_sample=score)


@METRICS.register("open_exact_match")
def open_exact_match() -> Metric:
    """Open questions: normalised response equals normalised target."""

    def score(sample: Sample, response: Response, parsed: Any) -> float | None:
        if answer_type(sample) != OPEN:
            return None
        return float(exact_match(sample.target, parsed))

    return Metric("open_exact_match", per_sample=score)


@METRICS.register("medvqa_accuracy")
def medvqa_accuracy() -> Metric:
    """All questions: the closed rule on closed ones, exact match on open ones."""

    def score(sample: Sample, response: Response, parsed: Any) -> float:
        if answer_type(sample) == CLOSED:
            return float(closed_correct(sample.target, parsed))
        return float(exact_match(sample.target, parsed))

    return Metric("medvqa_accuracy", per_sample=score)

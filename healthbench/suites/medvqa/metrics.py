"""Scores for the short-answer medical VQA sets: VQA-RAD, SLAKE, PathVQA.

Closed and open questions are scored by different rules and reported under different names, so
that a table never mixes them silently. Each metric takes the task's ``protocol``:

``strict`` (the default; also when a task names no protocol). Which kind a sample is comes from
``meta["answer_type"]`` (``closed`` | ``open``), set by the loader: the dataset's own field where
it has one that papers use (SLAKE), otherwise the yes/no rule the standard harnesses apply
(VQA-RAD, PathVQA). The response is the extractor's ``parsed`` text (``medvqa_answer``: the
content of a final-answer wrapper when there is one).

* ``closed_accuracy`` (closed questions only). A yes/no target: correct iff exactly one of the
  *words* "yes" and "no" occurs in the response and it is the target. Every closed question
  counts in the denominator. A closed target that is not yes/no (SLAKE's "CT or MRI?"): correct
  iff the normalised response equals the normalised target.
* ``open_recall`` (open questions only): the fraction of the target's tokens that the response
  contains (multiset token recall).
* ``open_exact_match`` (open questions only): normalised response == normalised target.
* ``medvqa_accuracy`` (all questions): the closed rule on closed questions, exact match on open
  ones.

Normalisation: lower-case, punctuation to spaces, whitespace collapsed.

``llava-med`` (``llava_med.py``): ``closed_accuracy`` and ``open_recall`` exactly as LLaVA-Med's
``run_eval.py`` computes its "yes/no accuracy" and open "recall", from the raw response;
``open_exact_match`` and ``medvqa_accuracy`` are refused (that script has no such numbers).

``medevalkit`` (``medevalkit_vqa.py``): ``closed_accuracy``, ``open_exact_match`` and
``medvqa_accuracy`` exactly as MedEvalKit's ``close.acc``, ``open.acc`` (divided once) and total
``acc``, from the raw response; ``open_recall`` is refused (MedEvalKit's printed "recall" is the
token *precision*: ``judge_open_end_vqa`` unpacks ``calculate_f1``'s ``(f1, precision, recall)``
as ``precision, recall, f1``).

Per-sample functions return None where a metric does not apply, so each is averaged over its
own questions only. docs/metrics.md lists every rule where the protocols differ, with examples.
"""
from __future__ import annotations

import re
from collections import Counter
from typing import Any

from healthbench.core.catalog import EXTRACTORS, METRICS
from healthbench.scoring.base import UNPARSED, Metric
from healthbench.scoring.extract import final_answer
from healthbench.core.types import Response, Sample
from healthbench.suites.medvqa import llava_med, medevalkit_vqa

CLOSED, OPEN = "closed", "open"
YES_NO = ("yes", "no")
_PUNCT = re.compile(r"[^\w\s]|_")
STRICT, LLAVA_MED, MEDEVALKIT = "strict", "llava-med", "medevalkit"
PROTOCOLS = (STRICT, LLAVA_MED, MEDEVALKIT)


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


_NO_LLAVA_MED = ("LLaVA-Med's run_eval.py reports open recall and yes/no accuracy only (its "
                 "'exact match score' is a token ratio, its 'open accuracy' needs a candidate "
                 "file); use closed_accuracy and open_recall")


def _raw(response: Response) -> str:
    """The model's text as the peers' scorers receive it (no extraction of ours)."""
    return response.text if isinstance(response.text, str) else ""


def _check(metric: str, protocol: str, refused: dict[str, str]) -> None:
    if protocol not in PROTOCOLS:
        raise ValueError(f"{metric}: unknown protocol {protocol!r}; choose one of "
                         f"{', '.join(PROTOCOLS)}")
    if protocol in refused:
        raise ValueError(f"{metric} is not part of protocol {protocol!r}: {refused[protocol]}")


@EXTRACTORS.register("medvqa_answer")
def medvqa_answer(text: str, sample: Sample, protocol: str = STRICT) -> Any:
    """The answer text each protocol compares, recorded as ``parsed`` in samples.jsonl.

    ``strict``: the content of a final-answer wrapper (``<answer>…</answer>``, ``\\boxed{…}``,
    "Final answer: …"; ``final_answer``), else the whole response, stripped. ``llava-med``: the
    response unchanged (its scorer extracts nothing). ``medevalkit``: the boxed, else
    ``<answer>``, content, then ``parse_response``'s cue cuts (what its judges compare).
    """
    _check("medvqa_answer", protocol, {})
    if not isinstance(text, str):
        return UNPARSED
    if protocol == LLAVA_MED:
        return text
    if protocol == MEDEVALKIT:
        return medevalkit_vqa.parse_response(medevalkit_vqa.first_cut(text))
    return final_answer(text, sample)


@METRICS.register("closed_accuracy")
def closed_accuracy(protocol: str = STRICT) -> Metric:
    """Closed questions: exactly one of yes/no, equal to the target (or exact match); the
    peers' closed rules under ``llava-med`` / ``medevalkit``."""
    _check("closed_accuracy", protocol, {})

    def score(sample: Sample, response: Response, parsed: Any) -> float | None:
        if protocol == LLAVA_MED:
            if llava_med.answer_type(sample) != CLOSED:
                return None
            return llava_med.closed_hit(sample.target, _raw(response))
        if protocol == MEDEVALKIT:
            if medevalkit_vqa.answer_type(sample) != CLOSED:
                return None
            return float(medevalkit_vqa.correct(sample, _raw(response)))
        if answer_type(sample) != CLOSED:
            return None
        return float(closed_correct(sample.target, parsed))

    return Metric("closed_accuracy", per_sample=score)


@METRICS.register("open_recall")
def open_recall(protocol: str = STRICT) -> Metric:
    """Open questions: fraction of target tokens present in the response (LLaVA-Med's recall
    under ``llava-med``)."""
    _check("open_recall", protocol, {MEDEVALKIT: "MedEvalKit's printed 'recall' is the token "
                                                 "precision (swapped unpacking); not reproduced"})

    def score(sample: Sample, response: Response, parsed: Any) -> float | None:
        if protocol == LLAVA_MED:
            if llava_med.answer_type(sample) != OPEN:
                return None
            return llava_med.open_recall(sample.target, _raw(response))
        return token_recall(sample.target, parsed) if answer_type(sample) == OPEN else None

    return Metric("open_recall", per_sample=score)


@METRICS.register("open_exact_match")
def open_exact_match(protocol: str = STRICT) -> Metric:
    """Open questions: normalised response equals normalised target (MedEvalKit's ``em`` under
    ``medevalkit``)."""
    _check("open_exact_match", protocol, {LLAVA_MED: _NO_LLAVA_MED})

    def score(sample: Sample, response: Response, parsed: Any) -> float | None:
        if protocol == MEDEVALKIT:
            if medevalkit_vqa.answer_type(sample) != OPEN:
                return None
            return float(medevalkit_vqa.correct(sample, _raw(response)))
        if answer_type(sample) != OPEN:
            return None
        return float(exact_match(sample.target, parsed))

    return Metric("open_exact_match", per_sample=score)


@METRICS.register("medvqa_accuracy")
def medvqa_accuracy(protocol: str = STRICT) -> Metric:
    """All questions: the closed rule on closed ones, exact match on open ones (MedEvalKit's
    total accuracy under ``medevalkit``)."""
    _check("medvqa_accuracy", protocol, {LLAVA_MED: _NO_LLAVA_MED})

    def score(sample: Sample, response: Response, parsed: Any) -> float:
        if protocol == MEDEVALKIT:
            return float(medevalkit_vqa.correct(sample, _raw(response)))
        if answer_type(sample) == CLOSED:
            return float(closed_correct(sample.target, parsed))
        return float(exact_match(sample.target, parsed))

    return Metric("medvqa_accuracy", per_sample=score)

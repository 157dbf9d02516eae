"""MMMU answer parsing and scoring, reimplemented to agree with the official scorer.

The official code (``MMMU-Benchmark/MMMU``, ``mmmu/utils/eval_utils.py``)
parses a multiple-choice response in three passes — ``(A)``-style brackets, then a bare letter
between spaces, then (only for responses longer than five words) the option text — and, when all
three find nothing, picks a letter with ``random.choice`` from a module-level ``random.seed(42)``
stream. Open answers are cut to their "key" tails and expanded with the numbers they contain;
a gold string is correct if it is a substring of any prediction, a gold number if it equals one.

Here the parsing is the same, step for step, with one difference of policy (docs/metrics.md): the
extractor never guesses. An unparseable multiple-choice response is ``UNPARSED`` and counts as
wrong under ``mmmu_accuracy`` (the default), and its rate is the ``parse_failure`` metric.
``mmmu_accuracy`` with ``mode: official`` gives such a response a random letter, as the official
scorer does, but drawn per sample from (seed, sample id) rather than from one stream in the
official order: a stream would make a sample's letter depend on which samples were scored before
it (a subset, a group, a bootstrap resample, another run), so the metric could not be a function
of the records alone. The drawn letter is written into samples.jsonl. The official stream's exact
letters are therefore not reproduced; the official value's expectation (chance on the guessed
questions) is.
"""
from __future__ import annotations

import re
from typing import Any, Mapping, Sequence

from healthbench.core.catalog import EXTRACTORS, METRICS
from healthbench.core.types import Response, Sample
from healthbench.scoring.base import UNPARSED, Metric
from healthbench.scoring.fallback import seeded_choice
from healthbench.scoring.score import Detailed

MULTIPLE_CHOICE = "multiple-choice"
OPEN = "open"
OFFICIAL_SEED = 42

_STRIP_CHARS = (",", ".", "!", "?", ";", ":", "'")
_KEY_INDICATORS = ("could be ", "so ", "is ", "thus ", "therefore ", "final ", "answer ",
                   "result ")
_TRIVIAL_TAILS = (":", ",", ".", "!", "?", ";", "'")
_NUMBER_COMMAS = re.compile(r"-?\b\d{1,3}(?:,\d{3})+\b")
_NUMBER_SCIENTIFIC = re.compile(r"-?\d+(?:\.\d+)?[eE][+-]?\d+")
_NUMBER_SIMPLE = re.compile(r"-?(?:\d+\.\d+|\.\d+|\d+\b)(?![eE][+-]?\d+)(?![,\d])")
# Lower-cased text never matches the sentence branch; kept so the split is the official one.
_SUBRESPONSE_SPLIT = re.compile(r"\.\s(?=[A-Z])|\n")


# --- multiple choice ----------------------------------------------------------------------------

def parse_choice(response: str, options: Mapping[str, str]) -> str | None:
    """The option letter the official parser finds in ``response``, or None where it would fall
    back to a random letter. ``options`` maps letters ("A", "B", …) to option text, in order."""
    for char in _STRIP_CHARS:
        response = response.strip(char)
    response = f" {response} "
    letters = list(options)

    candidates = [c for c in letters if f"({c})" in response]
    if candidates:
        positions = [response.rfind(f"({c})") for c in candidates]
    else:
        candidates = [c for c in letters if f" {c} " in response]
        positions = [response.rfind(f" {c} ") for c in candidates]
    if not candidates and len(response.split()) > 5:
        lowered = response.lower()
        candidates = [c for c in letters if options[c].lower() in lowered]
        positions = [lowered.rfind(options[c].lower()) for c in candidates]
    if not candidates:
        return None
    # Several candidates: the one mentioned last; equal positions go to the earlier letter.
    best = max(range(len(candidates)), key=lambda i: (positions[i], -i))
    return candidates[best]


def choice_is_correct(gold: str | Sequence[str], letter: str) -> bool:
    """``eval_multi_choice``: equal to the gold letter, or to any of a list of gold letters."""
    if isinstance(gold, (list, tuple)):
        return letter in gold
    return gold == letter


# --- open answers ---------------------------------------------------------------------------------

def _is_number(text: str) -> bool:
    try:
        float(text.replace(",", ""))
    except ValueError:
        return False
    return True


def normalize_answer(text: str) -> list[float | str]:
    """``normalize_str``: a number becomes ``[round(value, 2)]``; other text is lower-cased, and a
    single character ``c`` becomes ``[" c", "c "]`` so that it cannot match inside a word."""
    text = text.strip()
    if _is_number(text):
        return [round(float(text.replace(",", "")), 2)]
    text = text.lower()
    return [" " + text, text + " "] if len(text) == 1 else [text]


def extract_numbers(text: str) -> list[str]:
    """Every number written in ``text``: with thousands commas, scientific, then plain."""
    return (_NUMBER_COMMAS.findall(text) + _NUMBER_SCIENTIFIC.findall(text)
            + _NUMBER_SIMPLE.findall(text))


def key_subresponses(response: str) -> list[str]:
    """The tails of a response most likely to hold its answer (``get_key_subresponses``)."""
    response = response.strip().strip(".").lower()
    parts = _SUBRESPONSE_SPLIT.split(response)
    found: list[str] = []
    for index, part in enumerate(parts):
        indicators = _KEY_INDICATORS + (("=",) if index == len(parts) - 1 else ())
        shortest: str | None = None
        for indicator in indicators:
            if indicator in part:
                tail = part.split(indicator)[-1].strip()
                if not shortest or len(tail) < len(shortest):
                    shortest = tail
        if shortest and shortest.strip() not in _TRIVIAL_TAILS:
            found.append(shortest)
    return found or [response]


def parse_open(response: str) -> list[float | str]:
    """``parse_open_response``: normalised key tails and the numbers in them, without repeats.

    Returned sorted (numbers first) so that samples.jsonl is stable; the official list comes from
    a ``set`` and its order never affects the verdict.
    """
    keys = key_subresponses(response)
    raw = keys + [n for key in keys for n in extract_numbers(key)]
    values: set[float | str] = set()
    for item in raw:
        values.update(normalize_answer(item))
    return sorted(values, key=lambda v: (isinstance(v, str), str(v) if isinstance(v, str)
                                         else float(v)))


def open_is_correct(gold: str | Sequence[str], predictions: Sequence[float | str]) -> bool:
    """``eval_open``: a gold string inside any predicted string, or a gold number equal to a
    predicted number (both rounded to 2 decimals)."""
    golds: list[float | str] = []
    for answer in (gold if isinstance(gold, (list, tuple)) else [gold]):
        golds.extend(normalize_answer(str(answer)))
    for pred in predictions:
        if isinstance(pred, str):
            if any(isinstance(g, str) and g in pred for g in golds):
                return True
        elif pred in golds:
            return True
    return False


# --- registered extractor and metrics -------------------------------------------------------------

def _question_type(meta: Mapping[str, Any]) -> str:
    return OPEN if meta.get("question_type") == OPEN else MULTIPLE_CHOICE


@EXTRACTORS.register("mmmu")
def mmmu_answer(text: str, sample: Sample) -> Any:
    """A multiple-choice letter (or UNPARSED: no random guess here), or the list of normalised
    open-answer predictions (UNPARSED for an empty response)."""
    if not isinstance(text, str):
        return UNPARSED
    if _question_type(sample.meta) == OPEN:
        return parse_open(text) if text.strip() else UNPARSED
    letter = parse_choice(text, sample.options)
    return UNPARSED if letter is None else letter


def _correct(question_type: str, gold: Any, parsed: Any) -> bool:
    if parsed is None:
        return False
    if question_type == OPEN:
        return open_is_correct(gold, parsed)
    return choice_is_correct(gold, parsed)


def official_fallback(seed: int, sample: Sample) -> str:
    """The letter the official scorer guesses for an unparseable multiple-choice answer, drawn
    from (seed, sample id) alone (``scoring.fallback``): a pure function of the sample."""
    n = int(sample.meta.get("n_options") or len(sample.options))
    return seeded_choice(seed, sample.id, [chr(ord("A") + i) for i in range(n)])


@METRICS.register("mmmu_accuracy")
def mmmu_accuracy(mode: str = "strict", seed: int = OFFICIAL_SEED) -> Metric:
    """MMMU accuracy. ``strict`` (default): an unparseable multiple-choice answer is wrong.
    ``official``: it gets a random letter, as the official scorer does (named
    ``accuracy_official``); the letter and its seed are written into samples.jsonl
    (``meta.details.accuracy_official``). A run passes its ``--seed`` unless the task sets one."""
    if mode not in ("strict", "official"):
        raise ValueError(f"mmmu_accuracy: mode must be 'strict' or 'official', got {mode!r}")
    if mode == "strict":
        def score(sample: Sample, response: Response, parsed: Any) -> float:
            value = None if parsed is UNPARSED else parsed
            return float(_correct(_question_type(sample.meta), sample.target, value))

        return Metric("accuracy", per_sample=score)

    def official(sample: Sample, response: Response, parsed: Any) -> Detailed | float:
        question_type = _question_type(sample.meta)
        if question_type == MULTIPLE_CHOICE and parsed is UNPARSED:
            letter = official_fallback(seed, sample)
            return Detailed(float(_correct(question_type, sample.target, letter)),
                            {"fallback_letter": letter, "seed": seed})
        value = None if parsed is UNPARSED else parsed
        return float(_correct(question_type, sample.target, value))

    return Metric("accuracy_official", per_sample=official)

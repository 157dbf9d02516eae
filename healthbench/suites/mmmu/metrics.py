"""MMMU answer parsing and scoring, reimplemented to agree with the official scorer.

The official code (``MMMU-Benchmark/MMMU``, ``mmmu/utils/eval_utils.py``; benchmarks.md §2.4)
parses a multiple-choice response in three passes — ``(A)``-style brackets, then a bare letter
between spaces, then (only for responses longer than five words) the option text — and, when all
three find nothing, picks a letter with ``random.choice`` from a module-level ``random.seed(42)``
stream. Open answers are cut to their "key" tails and expanded with the numbers they contain;
a gold string is correct if it is a substring of any prediction, a gold number if it equals one.

Here the parsing is the same, step for step, with one difference of policy (design.md): the
extractor never guesses. An unparseable multiple-choice response is ``UNPARSED`` and counts as
wrong under ``mmmu_accuracy`` (the default), and its rate is the ``parse_failure`` metric.
``mmmu_accuracy`` with ``mode: official`` reproduces the official random fallback with its own
``random.Random(42)``, drawing in the official order (subject order of ``CAT_SHORT2LONG``, then
dataset row order) — see ``_OfficialDraws``.
"""
from __future__ import annotations

import hashlib
import random
import re
from typing import Any, Mapping, Sequence

from healthbench.core.catalog import EXTRACTORS, METRICS
from healthbench.scoring.base import UNPARSED, Metric
from healthbench.core.types import Response, Sample, SampleResult

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


class _OfficialDraws:
    """The letters the official scorer would draw for unparseable multiple-choice responses.

    The official code draws ``random.choice(all_choices)`` from one seeded stream, in the order it
    meets the samples: subjects in ``CAT_SHORT2LONG`` order, rows in dataset order (the loader
    records this as ``meta["order"]``). Draws are made over a whole record set in that order and
    kept as one table, keyed by a fingerprint of the set's ordered (id, parsed) list, so a record
    set once scored always gets the same draws, whatever was scored before or after it. A call on
    records that a kept table contains (same ids, same parsed answers) — a per-subject group, a
    bootstrap resample — reuses that table (the most recently scored such), so groups and
    intervals use the draws of the whole task instead of restarting the stream, as the official
    per-subject accuracies do. Which whole a subset belongs to is the caller's to make clear:
    healthbench scores the whole task before its groups and resamples (``summarize_task``), and
    ``compare`` gives each run its own metric instance, primed with that run's whole task.
    """

    MAX_TABLES = 16  # whole-task tables kept (a few runs); groups and resamples add none

    def __init__(self, seed: int = OFFICIAL_SEED) -> None:
        self.seed = seed
        # fingerprint -> ({id: answer key}, {id: drawn letter}), oldest first
        self._tables: dict[str, tuple[dict[str, str], dict[str, str]]] = {}

    @staticmethod
    def needs_draw(record: SampleResult) -> bool:
        return _question_type(record.meta) == MULTIPLE_CHOICE and record.parsed is None

    @staticmethod
    def _key(record: SampleResult) -> str:
        return repr((record.parsed, _question_type(record.meta), record.meta.get("order"),
                     record.meta.get("n_options")))

    @staticmethod
    def _ordered(records: Sequence[SampleResult]) -> list[SampleResult]:
        unique = {r.id: r for r in records}.values()
        return sorted(unique, key=lambda r: (float(r.meta.get("order", 0)), r.id))

    def letters_for(self, records: Sequence[SampleResult]) -> dict[str, str]:
        """{id: drawn letter} for the records that need a draw (see the class docstring)."""
        ordered = self._ordered(records)
        keys = {r.id: self._key(r) for r in ordered}
        fingerprint = hashlib.sha256("\n".join(f"{i}\t{k}" for i, k in keys.items())
                                     .encode()).hexdigest()
        if fingerprint in self._tables:
            self._tables[fingerprint] = self._tables.pop(fingerprint)  # most recent last
            return self._tables[fingerprint][1]
        for table in reversed(self._tables.values()):  # the most recently scored first
            if len(table[0]) >= len(keys) and all(table[0].get(i) == k for i, k in keys.items()):
                return table[1]
        rng = random.Random(self.seed)
        letters: dict[str, str] = {}
        for record in ordered:
            if self.needs_draw(record):
                n = int(record.meta.get("n_options") or len(record.inputs.get("options") or {}))
                letters[record.id] = rng.choice([chr(ord("A") + i) for i in range(n)])
        self._tables[fingerprint] = (keys, letters)
        while len(self._tables) > self.MAX_TABLES:
            self._tables.pop(next(iter(self._tables)))
        return letters


@METRICS.register("mmmu_accuracy")
def mmmu_accuracy(mode: str = "strict", seed: int = OFFICIAL_SEED) -> Metric:
    """MMMU accuracy. ``strict`` (default): an unparseable multiple-choice answer is wrong.
    ``official``: it gets the official random letter (named ``accuracy_official``)."""
    if mode == "strict":
        def score(sample: Sample, response: Response, parsed: Any) -> float:
            value = None if parsed is UNPARSED else parsed
            return float(_correct(_question_type(sample.meta), sample.target, value))

        return Metric("accuracy", per_sample=score)
    if mode != "official":
        raise ValueError(f"mmmu_accuracy: mode must be 'strict' or 'official', got {mode!r}")
    draws = _OfficialDraws(seed)

    def corpus(records: Sequence[SampleResult]) -> float:
        if not records:
            return float("nan")
        letters = draws.letters_for(records)
        right = 0
        for record in records:
            parsed = record.parsed
            if draws.needs_draw(record):
                parsed = letters[record.id]
            right += _correct(_question_type(record.meta), record.target, parsed)
        return right / len(records)

    return Metric("accuracy_official", corpus=corpus)

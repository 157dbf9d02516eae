"""MMOral-OPG and MMOral-Uni scoring (isbrycee/OralGPT, ``vlmeval/dataset/utils/mmoral.py``).

Closed MMOral-OPG questions use the official letter extraction (``get_single_choice_prediction``
in ``vlmeval/dataset/utils/mmoral.py``), reproduced step by step:

1. strip ``, . ! ? ; : '`` from the ends (one character class after the other, as the loop
   does), pad with one space each side;
2. letters X with ``(X)`` in the response; else letters with `` X ``, `` X.`` or `` X,``;
   else letters whose option text occurs in the response;
3. of those, the one found earliest (searching `` X ``, then ``(X)``, then the option text);
   a candidate found by none of these searches is dropped;
4. nothing left: the official code draws ``random.choice(['A','B','C','D'])`` unseeded.

``mode: strict`` (default) differs in two documented ways: step 4 gives no answer (UNPARSED,
scored wrong and counted in ``parse_failure``), and a blank option (an empty cell, which the
official code sees as the text ``nan``) is never matched by its text — otherwise any response
containing "nan" (e.g. "maintenance") would pick it. ``mode: official`` keeps both quirks; its
random draw is seeded by (``seed``, sample id), so a rerun gives the same letters, and
``parse_failure`` then counts how often the draw fired.

Open questions are graded by ``llm_judge`` (healthbench/metrics/judge.py) with the official
prompt from the task YAML. Aggregation is the official one: per dimension / tag the mean over
items whose category names it (an item counts in each), Overall the mean over all items (micro);
MMOral-OPG's leaderboard "Avg." is (closed Overall + open Overall) / 2 (``avg_accuracy``), and
MMOral-Uni's "II" column is the unweighted mean of II_Loc, II_Dx-I and II_Dx-R
(``ii_accuracy``). Fractions in [0, 1]; the papers print ×100.
"""
from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

from healthbench.core.catalog import EXTRACTORS, METRICS
from healthbench.scoring.base import UNPARSED, Metric
from healthbench.scoring.fallback import seeded_choice
from healthbench.core.types import Response, Sample, SampleResult

ALL_CHOICES = ("A", "B", "C", "D")
MODES = ("strict", "official")
II_TASKS = ("II_Loc", "II_Dx-I", "II_Dx-R")
_STRIP = (",", ".", "!", "?", ";", ":", "'")


def _check_mode(mode: str) -> None:
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")


def choice_texts(sample: Sample, mode: str) -> dict[str, str | None]:
    """Letter → the text the official code matches (``str(cell)``); None = not matchable."""
    blanks = set(sample.meta.get("blank_options") or ())
    out: dict[str, str | None] = {}
    for letter in ALL_CHOICES:
        if letter in blanks:
            out[letter] = "nan" if mode == "official" else None
        else:
            out[letter] = str(sample.options.get(letter, ""))
    return out


def official_letter(response: str, index2ans: Mapping[str, str | None]) -> str | None:
    """Steps 1–3 of ``get_single_choice_prediction``; None where the official code would guess."""
    for char in _STRIP:
        response = response.strip(char)
    response = " " + response + " "
    candidates = [c for c in ALL_CHOICES if f"({c})" in response]
    if not candidates:
        candidates = [c for c in ALL_CHOICES
                      if f" {c} " in response or f" {c}." in response or f" {c}," in response]
    if not candidates:
        candidates = [c for c in ALL_CHOICES
                      if index2ans.get(c) is not None and index2ans[c] in response]
    positions: dict[str, int] = {}
    for c in candidates:
        pos = response.find(f" {c} ")
        if pos == -1:
            pos = response.find(f"({c})")
        if pos == -1 and index2ans.get(c) is not None:
            pos = response.find(index2ans[c])  # type: ignore[arg-type]
        if pos != -1:
            positions[c] = pos
    if positions:
        return min(positions.items(), key=lambda item: item[1])[0]
    return None


def official_random_letter(seed: int, sample_id: str) -> str:
    """The official guess, drawn from (seed, sample id) alone (``scoring.fallback``)."""
    return seeded_choice(seed, sample_id, ALL_CHOICES)


@EXTRACTORS.register("mmoral_opg_answer")
def mmoral_opg_answer(text: str, sample: Sample, mode: str = "strict", seed: int = 0) -> Any:
    """Closed question: the option letter (see the module docstring); open question: the text."""
    _check_mode(mode)
    if not isinstance(text, str):
        return UNPARSED
    if not sample.options:
        return text.strip()
    letter = official_letter(text, choice_texts(sample, mode))
    if letter is None and mode == "official":
        return official_random_letter(seed, sample.id)
    return UNPARSED if letter is None else letter


def _is_closed(sample: Sample) -> bool:
    return bool(sample.options)


@METRICS.register("mmoral_closed_accuracy")
def mmoral_closed_accuracy() -> Metric:
    """Closed questions only: the extracted letter equals the key (unparsed = wrong)."""

    def score(sample: Sample, response: Response, parsed: Any) -> float | None:
        if not _is_closed(sample):
            return None
        return float(parsed is not UNPARSED and parsed == sample.target)

    return Metric("closed_accuracy", per_sample=score)


@METRICS.register("mmoral_parse_failure")
def mmoral_parse_failure(mode: str = "strict") -> Metric:
    """Closed questions only: 1 when steps 1–3 find no letter (in official mode: the random
    draw fired)."""
    _check_mode(mode)

    def score(sample: Sample, response: Response, parsed: Any) -> float | None:
        if not _is_closed(sample):
            return None
        text = response.text if isinstance(response.text, str) else ""
        return float(official_letter(text, choice_texts(sample, mode)) is None)

    return Metric("parse_failure", per_sample=score, higher_is_better=False)


def _mean(values: Sequence[float | None]) -> float:
    kept = [float(v) for v in values if v is not None]
    return sum(kept) / len(kept) if kept else math.nan


@METRICS.register("mmoral_opg_average")
def mmoral_opg_average(closed: str = "closed_accuracy", open: str = "open_accuracy") -> Metric:
    """The leaderboard "Avg.": mean of closed Overall and open Overall (NaN when either has no
    scored item, e.g. no judge)."""

    def corpus(records: Sequence[SampleResult]) -> float:
        a = _mean([r.scores.get(closed) for r in records])
        b = _mean([r.scores.get(open) for r in records])
        return (a + b) / 2.0

    return Metric("avg_accuracy", corpus=corpus)


@METRICS.register("mmoral_uni_ii")
def mmoral_uni_ii(score: str = "open_accuracy") -> Metric:
    """The "II" column: unweighted mean of the II_Loc, II_Dx-I, II_Dx-R task means (NaN when
    one of them has no scored item)."""

    def corpus(records: Sequence[SampleResult]) -> float:
        means = [_mean([r.scores.get(score) for r in records if r.meta.get("task") == t])
                 for t in II_TASKS]
        return sum(means) / len(means)

    return Metric("ii_accuracy", corpus=corpus)

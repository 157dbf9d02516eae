"""Answer extractors: model text → the answer the metric compares with the target.

Each is registered by name and called as ``extract(text, sample, **args)``. An extractor that
cannot find an answer returns ``UNPARSED`` (JSON null) rather than guessing; the parse-failure rate
is reported beside accuracy. ``final_answer`` reads a reasoning model's final-answer wrapper
for free-text answers. The paper-parity matcher that always picks an option (MedEvalKit's
nearest-option rule) lives in ``medevalkit.py`` and is opt-in by name.
"""
from __future__ import annotations

import re
from typing import Any

from healthbench.core.catalog import EXTRACTORS
from healthbench.scoring.base import UNPARSED
from healthbench.core.types import Sample

#: Letters assumed when a sample carries no options (so that a bare "B" still parses).
FALLBACK_LETTERS = "ABCDE"

_THINK = re.compile(r"<think>.*?</think>", re.S | re.I)
_ANSWER_TAG = re.compile(r"<answer>(.*?)</answer>", re.S | re.I)
_LATEX_WRAPPERS = re.compile(r"\\(?:text|textbf|mathrm|mathbf)\s*\{([^{}]*)\}")

# A letter in answer position: optionally bracketed / bolded. Group "L" is the letter.
_LETTER = r"[\(\[\{]?\s*(?P<L>[A-Za-z])\s*[\)\]\}]?"
# What may follow a letter so that it is a letter and not the first word of a sentence.
_AFTER_UPPER = r"(?![A-Za-z0-9])"
_CUE_PATTERNS = tuple(re.compile(p, re.I) for p in (
    # "Answer: B", "the correct answer is (B)", "Final answer would be option C"
    r"\banswer\s*(?:is|would\s+be|should\s+be|will\s+be|[:：=])?\s*:?\s*(?:option|choice)?\s*"
    + _LETTER,
    # "the correct option is B", "best choice: C"
    r"\b(?:correct|right|best|most\s+(?:likely|appropriate))\s+(?:option|choice)\s*"
    r"(?:is|would\s+be|[:：=])?\s*:?\s*" + _LETTER,
    # "I choose B", "I would select option (C)", "my choice is D"
    r"\b(?:i\s+(?:would\s+|will\s+)?(?:choose|select|pick|go\s+with)|my\s+choice\s+is)\s*"
    r"(?:option|choice)?\s*" + _LETTER,
    # "B is correct", "Option (C) is the right answer"
    r"(?:\b(?:option|choice)\s*)?" + r"(?<![A-Za-z])" + _LETTER
    + r"\s*(?:is|would\s+be)\s+(?:the\s+)?(?:correct|right|best)\b",
))
_HEDGE = re.compile(r"\s*(?:or|and|/|,|&)\s*(?:option\s*)?[\(\[]?\s*([A-Za-z])\s*[\)\]]?(?![A-Za-z])",
                    re.I)
# The whole response opens with a letter: "B", "(B)", "B.", "B) text", "Option B: text", "b\n…".
_LEADING = re.compile(
    r"^\s*(?:(?P<kw>option|choice)\s*)?[\(\[]?\s*(?P<L>[A-Za-z])\s*(?P<close>[\)\]])?"
    r"(?P<delim>\s*$|\s*\n|\s*[.:：,;)](?!\w)|[.:](?=\s))",
    re.I,
)
_PAREN_LETTER = re.compile(r"\((?P<L>[A-Z])\)")
_LETTER_PAIR = re.compile(r"(?<![A-Za-z0-9])([A-Z])\s*(?:or|/)\s*([A-Z])(?![A-Za-z0-9])")
_NEGATED = re.compile(r"(?:\bnot|n't|\bnever|\bexclud\w*|\brule\s+out)\s*$", re.I)
_STANDALONE = re.compile(r"(?<![A-Za-z0-9'’-])(?P<L>[A-Z])(?![A-Za-z0-9'’-])")


@EXTRACTORS.register("identity")
def identity(text: str, sample: Sample) -> Any:
    """The response text unchanged (stripped): free-text answers scored by text metrics."""
    return text.strip() if isinstance(text, str) else UNPARSED


# "Final answer: X", "final answer is X", "**Final Answer:** X" (bold removed first).
_FINAL_CUE = re.compile(r"\bfinal\s+answer\s*(?:is\b\s*:?|[:：])\s*", re.I)


def final_answer_text(text: str) -> str | None:
    """The content of a reasoning model's final-answer wrapper, or None when there is none.

    Reasoning inside ``<think>…</think>`` is ignored; then, in this order, the last
    ``<answer>…</answer>``, the last ``\\boxed{…}`` (``\\text{}`` unwrapped), or the rest of the
    line after the last "Final answer:" / "final answer is".
    """
    body = _THINK.sub(" ", text)
    tags = _ANSWER_TAG.findall(body)
    if tags:
        return tags[-1].strip()
    boxed = _boxed(body)
    if boxed is not None:
        return boxed.strip()
    body = body.replace("**", "")
    cues = list(_FINAL_CUE.finditer(body))
    if cues:
        rest = body[cues[-1].end():].strip()
        return rest.splitlines()[0].strip() if rest else ""
    return None


@EXTRACTORS.register("final_answer")
def final_answer(text: str, sample: Sample) -> Any:
    """Free-text answers (open and closed VQA): the final-answer wrapper's content when the
    response has one (``final_answer_text``), else the response without its ``<think>`` part,
    stripped. ``identity`` is this without the wrapper rules."""
    if not isinstance(text, str):
        return UNPARSED
    found = final_answer_text(text)
    return found if found is not None else _THINK.sub(" ", text).strip()


_NON_WORD = re.compile(r"[\s\W_]+")


def _norm(text: str) -> str:
    return _NON_WORD.sub(" ", str(text).lower()).strip()


def _boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{…}`` (braces balanced), or None."""
    start = text.rfind("\\boxed{")
    if start < 0:
        return None
    depth, i = 1, start + len("\\boxed{")
    for j in range(i, len(text)):
        depth += {"{": 1, "}": -1}.get(text[j], 0)
        if depth == 0:
            inner = text[i:j]
            while _LATEX_WRAPPERS.search(inner):
                inner = _LATEX_WRAPPERS.sub(r"\1", inner)
            return inner
    return None


def _letter_ok(match: re.Match, text: str) -> bool:
    """Is the captured character a letter rather than the first letter of a word / article?

    Upper case: anything but a following letter or digit. Lower case ("the answer is a lesion"):
    only when bracketed or followed by punctuation or the end of the text.
    """
    letter, end = match.group("L"), match.end("L")
    rest = text[end:]
    if re.match(r"[A-Za-z0-9]", rest):
        return False
    if letter.isupper():
        return True
    before = text[:match.start("L")].rstrip()
    return before.endswith(("(", "[", "{")) or re.match(r"\s*(?:[)\].,;:!?]|$)", rest) is not None


def _pick(found: list[str], last_mention: bool) -> str:
    return found[-1] if last_mention else found[0]


def _option_text_matches(text: str, options: dict[str, str]) -> list[str]:
    """Letters whose option text the response states exactly, or contains as whole words.

    An option text contained in another matched option text ("pneumonia" inside "viral
    pneumonia") is not counted separately. Both sides are normalised to words joined by single
    spaces, so "whole words" is plain substring search with spaces around (no regex compiled
    per response: this runs for every answer of a 100k-question suite).
    """
    norm = _norm(text)
    if not norm:
        return []
    normed = {k: _norm(v) for k, v in options.items()}
    exact = [k for k, v in normed.items() if v and v == norm]
    if exact:
        return exact
    padded = f" {norm} "
    hits = {k: v for k, v in normed.items() if v and f" {v} " in padded}
    return [k for k, v in hits.items()
            if not any(v != w and f" {v} " in f" {w} " for w in hits.values())]


def _parse(text: str, options: dict[str, str], letters: set[str],
           last_mention: bool) -> str | None:
    """The strict cascade on one piece of text; None when nothing is certain."""
    # 1. Explicit cue phrases ("the answer is B"); a hedge ("B or C") makes the answer unparsed.
    cued: list[tuple[int, str]] = []
    for pattern in _CUE_PATTERNS:
        for m in pattern.finditer(text):
            letter = m.group("L").upper()
            if letter not in letters or not _letter_ok(m, text):
                continue
            hedge = _HEDGE.match(text, m.end())
            if hedge and hedge.group(1).upper() in letters and hedge.group(1).upper() != letter:
                return None
            cued.append((m.start("L"), letter))
    if cued:
        cued.sort()
        return _pick([c for _, c in cued], last_mention)
    # An echo of the option list ("(A) x (B) y (C) z") names every letter: no answer in it.
    parens = [m.group("L") for m in _PAREN_LETTER.finditer(text) if m.group("L") in letters]
    if len(letters) > 1 and set(parens) >= letters:
        return None
    # 2. The response opens with a letter ("B", "(B)", "B. text", "Option B: text").
    lead = _LEADING.match(text)
    if lead and lead.group("L").upper() in letters:
        letter = lead.group("L").upper()
        said = _option_text_matches(text[lead.end():], options)
        if said and letter not in said and _norm(text[lead.end():]) in {
                _norm(options[k]) for k in said}:
            return None  # "B. Edema" where Edema is option C: contradicts itself
        return letter
    # 3. Bracketed letters anywhere ("I think (C) fits").
    if parens:
        return _pick(parens, last_mention)
    # 4. The text of exactly one option.
    said = _option_text_matches(text, options)
    if len(said) == 1:
        return said[0]
    if said:
        return None
    # 5. A lone capital letter ("It's B."), not an article ("A lesion"), a pronoun ("I think")
    #    or negated ("not A"); exactly one distinct letter.
    for m in _LETTER_PAIR.finditer(text):  # "it is A or B": a hedge between two options
        if {m.group(1), m.group(2)} <= letters and m.group(1) != m.group(2):
            return None
    lone = {m.group("L") for m in _STANDALONE.finditer(text)
            if m.group("L") in letters
            and not (m.group("L") in "AI" and re.match(r"\s+[a-z]", text[m.end():]))
            and not _NEGATED.search(text[:m.start()])}
    return lone.pop() if len(lone) == 1 else None


def option_letters(sample: Sample) -> tuple[dict[str, str], set[str]]:
    """A sample's options keyed by upper-case letter, and the letters that count as answers
    (the single-letter keys; A–E when it has none)."""
    options = {str(k).strip().upper(): str(v) for k, v in dict(sample.options).items()}
    letters = {k for k in options if len(k) == 1 and k.isalpha()} or set(FALLBACK_LETTERS)
    return options, letters


@EXTRACTORS.register("choice_letter")
def choice_letter(text: str, sample: Sample, last_mention: bool = True) -> Any:
    """The option letter a response names, or UNPARSED; never a guess.

    Reasoning inside ``<think>…</think>`` is ignored. The content of the last
    ``<answer>…</answer>`` or ``\\boxed{…}`` is read first; then, on the whole response and in
    this order of trust: a cue phrase ("Answer: B", "the answer is (B)", "I choose B",
    "B is correct"); a letter opening the response ("B", "(B)", "B.", "B) text", "Option B:");
    bracketed letters anywhere; the text of exactly one option; a lone capital letter. Only
    letters that are options of this sample count (A–E when it has none), case-insensitively
    where the context makes a letter unambiguous. Where a stage finds several letters, the
    last mention wins when ``last_mention`` (a model's final answer usually comes last), else
    the first. Hedges ("B or C"), self-contradictions ("B. <text of C>"), several option texts
    and several lone letters are UNPARSED.
    """
    if not isinstance(text, str):
        return UNPARSED
    options, letters = option_letters(sample)
    bare = text.strip().upper()
    if len(bare) == 1 and bare in letters:
        return bare  # a bare letter, the answer asked for: what the cascade below finds too
    return _choice_letter_cascade(text, options, letters, last_mention)


def _choice_letter_cascade(text: str, options: dict[str, str], letters: set[str],
                           last_mention: bool) -> Any:
    """``choice_letter`` without its bare-letter shortcut (tests/test_extract.py checks that the
    shortcut answers as this does)."""
    body = _THINK.sub(" ", text).replace("**", "").replace("__", "")
    tags = _ANSWER_TAG.findall(body)
    wrapped = [t for t in (tags[-1] if tags else None, _boxed(body)) if t is not None]
    for inner in wrapped:
        found = _parse(inner.strip(), options, letters, last_mention)
        if found is not None:
            return found
    found = _parse(body.strip(), options, letters, last_mention)
    return UNPARSED if found is None else found


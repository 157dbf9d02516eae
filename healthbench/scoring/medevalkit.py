"""MedEvalKit's multiple-choice matcher, reproduced for parity with published numbers (opt-in).

The numbers papers quote for HealthGPT-style models on OmniMedVQA (and PMC-MI-Bench's MC task)
come from MedEvalKit's ``judge_multi_choice`` (``utils/utils.py``). Unlike ``choice_letter`` it
never declines: a response it cannot read goes to the option whose text is most similar
(``difflib`` ratio, first option on ties, so an empty or all-dissimilar response picks A). That
is a guess, which is why it is a separately named extractor and not the default.

``judge_multi_choice`` returns correct/incorrect given the gold letter; here the same decisions
produce the *letter* it effectively chose, so ``accuracy`` over this extractor equals MedEvalKit's
accuracy whenever the gold answer is a letter (``tests/test_extract.py`` checks this
against a transcription of the original). One documented difference: with two options of
identical text, MedEvalKit's OmniMedVQA loader makes the *last* one the gold letter (a response
naming the first is wrong there); healthbench's loader makes the first the target and this
returns the first.
"""
from __future__ import annotations

import difflib
from typing import Any

from healthbench.core.catalog import EXTRACTORS
from healthbench.scoring.base import UNPARSED
from healthbench.core.types import Sample

_ANSWER_PATTERNS = ("**answer**:", "**answer**", "*answer*:", "**answer:**", "answer is",
                    "answer:", "答案:", "final answer", "final answer is")


def between_tags(text: str, tag: str) -> str:
    """MedEvalKit ``extract(text, tag)``: every ``<tag>…</tag>`` span joined by spaces, or the
    text itself when there is none."""
    start_tag, end_tag = f"<{tag}>", f"</{tag}>"
    parts: list[str] = []
    start = text.find(start_tag)
    while start != -1:
        end = text.find(end_tag, start + len(start_tag))
        if end == -1:
            break
        parts.append(text[start + len(start_tag):end])
        start = text.find(start_tag, end + len(end_tag))
    joined = " ".join(parts).strip()
    return joined if joined else text


def last_boxed(text: str) -> str:
    """mathruler ``extract_boxed_content``: the last ``\\boxed{…}``, or the string "None"."""
    start = text.rfind("\\boxed{")
    if start != -1:
        content = text[start + len("\\boxed{"):]
        depth = 0
        for i, char in enumerate(content):
            depth += {"{": 1, "}": -1}.get(char, 0)
            if depth == -1:
                return content[:i].strip()
    return "None"


def parse_response(response: str) -> str:
    """MedEvalKit ``parse_response``: cut to the boxed/answer content, then after each cue."""
    response = response.lower()
    if "boxed" in response:
        response = last_boxed(response)
    elif "<answer>" in response:
        response = between_tags(response, "answer")
    for pattern in _ANSWER_PATTERNS:
        if pattern in response:
            response = response.split(pattern)[-1]
    return response


def _most_similar_index(choices: list[str], response: str) -> int:
    best, best_ratio = 0, 0.0
    for i, choice in enumerate(choices):
        ratio = difflib.SequenceMatcher(None, choice, response).ratio()
        if ratio > best_ratio:
            best, best_ratio = i, ratio
    return best


def medevalkit_letter(choices: list[str], response: str) -> str:
    """The option letter (upper case) MedEvalKit's ``judge_multi_choice`` settles on.

    ``choices`` are the strings MedEvalKit builds: ``"A. text"`` for OmniMedVQA, bare texts for
    PMC-MI-Bench.
    """
    alphas = [chr(ord("a") + i) for i in range(len(choices))]
    response = response.lower()
    blocks = response.split("\n\n")
    if blocks[0] in alphas:
        response = blocks[0]
    elif blocks[-1].split(".")[0] in alphas:
        response = blocks[-1].split(".")[0]
    response = parse_response(response).strip().lower().replace("\n", "")
    lowered = [c.lower() for c in choices]
    head = response.split(".")[0].split(":")[-1]
    if head in alphas:
        return head.upper()
    if head in lowered:
        return alphas[lowered.index(head)].upper()
    return alphas[_most_similar_index(lowered, response)].upper()


@EXTRACTORS.register("medevalkit_choice")
def medevalkit_choice(text: str, sample: Sample, letter_prefix: bool = True,
                      answer_tag: bool = True) -> Any:
    """MedEvalKit's letter for ``text`` (paper parity; guesses, see the module docstring).

    ``letter_prefix``: choices as ``"A. text"`` (OmniMedVQA) or bare texts (PMC-MI-Bench).
    ``answer_tag``: first reduce the response to its ``<answer>`` content, as OmniMedVQA's
    ``cal_metrics`` does. Only a sample without options (or a non-string response) is UNPARSED.
    """
    if not isinstance(text, str) or not sample.options:
        return UNPARSED
    letters = [str(k).strip().upper() for k in sample.options]
    texts = [str(v) for v in sample.options.values()]
    choices = [f"{k}. {v}" if letter_prefix else v for k, v in zip(letters, texts)]
    if answer_tag:
        text = between_tags(text, "answer")
    letter = medevalkit_letter(choices, text)
    # Options are lettered A, B, C… in order in every benchmark this serves; map position back.
    return letters[ord(letter) - ord("A")]

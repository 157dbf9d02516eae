"""Choice-letter extraction: a table of responses and the letter each must give (or unparsed)."""
from __future__ import annotations

import pytest

from healthbench.catalog import EXTRACTORS
from healthbench.metrics.base import UNPARSED
from healthbench.metrics.extract import choice_letter
from healthbench.types import Sample

OPTIONS = {"A": "Pneumonia", "B": "Pleural effusion", "C": "Edema", "D": "Viral pneumonia"}
SAMPLE = Sample(id="q1", question="What is shown?", options=OPTIONS, target="B")
N = UNPARSED

TABLE: list[tuple[str, str | None]] = [
    # bare letters in many dresses
    ("B", "B"),
    ("b", "B"),
    ("(B)", "B"),
    ("[C]", "C"),
    ("B.", "B"),
    ("B)", "B"),
    ("  D  ", "D"),
    ("**C**", "C"),
    ("B. Pleural effusion", "B"),
    ("(B) Pleural effusion", "B"),
    ("B) pleural effusion", "B"),
    ("B: Pleural effusion.", "B"),
    ("Option C", "C"),
    ("Option C: Edema", "C"),
    ("c\n\nEdema is seen in both lungs.", "C"),
    # cue phrases
    ("Answer: B", "B"),
    ("answer: b", "B"),
    ("The answer is B.", "B"),
    ("The answer is B because of the meniscus sign.", "B"),
    ("The correct answer is (D).", "D"),
    ("Final answer: **C**", "C"),
    ("The correct option is A", "A"),
    ("I would choose option (D).", "D"),
    ("Option B is correct.", "B"),
    ("(C) is the correct answer.", "C"),
    ("The answer is option A, not B.", "A"),
    # last mention wins among cues
    ("At first the answer is A, but on reflection the answer is C.", "C"),
    # wrappers
    ("\\boxed{B}", "B"),
    ("Reasoning... so the final answer is \\boxed{\\text{C}}", "C"),
    ("<answer>D</answer>", "D"),
    ("<answer> (A) </answer>", "A"),
    ("<think>Option A fits the fever, but the meniscus...</think>\nB", "B"),
    ("<answer>Edema</answer>", "C"),
    # option text
    ("Pleural effusion", "B"),
    ("pleural effusion.", "B"),
    ("The image shows a viral pneumonia.", "D"),  # not also A: "pneumonia" is inside D's text
    ("Edema", "C"),
    # lone capital letter
    ("It's C.", "C"),
    ("I think it is D.", "D"),
    # hard cases: must not guess
    ("A lesion is seen in the left lower lobe.", N),
    ("The answer is a lesion in the liver.", N),
    ("I am not sure.", N),
    ("", N),
    ("B or C", N),
    ("The answer is B or C.", N),
    ("Either (A) or (C) could be right.", "C"),  # bracketed letters: last mention (MMMU rule)
    ("(A) Pneumonia (B) Pleural effusion (C) Edema (D) Viral pneumonia", N),  # echoed options
    ("B. Edema", N),  # letter and option text disagree
    ("It is not A.", N),
    ("Pneumonia or pleural effusion.", N),  # two option texts
    ("E", N),  # not an option of this sample
    ("The answer is E.", N),
    ("Answer:", N),
]


def test_table_has_at_least_forty_rows() -> None:
    assert len(TABLE) >= 40


@pytest.mark.parametrize("response, expected", TABLE)
def test_choice_letter_table(response: str, expected: str | None) -> None:
    assert choice_letter(response, SAMPLE) == expected


def test_first_mention_when_benchmark_says_so() -> None:
    text = "At first the answer is A, but on reflection the answer is C."
    assert choice_letter(text, SAMPLE, last_mention=False) == "A"


def test_non_string_response_is_unparsed() -> None:
    assert choice_letter(None, SAMPLE) is UNPARSED  # type: ignore[arg-type]


def test_sample_without_options_accepts_a_to_e() -> None:
    bare = Sample(id="q2")
    assert choice_letter("(E)", bare) == "E"
    assert choice_letter("F", bare) is UNPARSED


def test_registered_under_its_name() -> None:
    assert EXTRACTORS.get("choice_letter") is choice_letter

"""Reasoning-style outputs: the default extractors score the final-answer wrapper's content
(``<answer>…</answer>``, ``\\boxed{…}``, "Final answer: …") and record it as ``parsed``."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from healthbench.core.catalog import EXTRACTORS
from healthbench.core.types import Sample
from healthbench.scoring.extract import final_answer
from tests.test_medvqa import metric, pmc_row, run_replay, write_pmc, write_vqa_rad_osf

BARE = Sample(id="q")


@pytest.mark.parametrize("text, expected", [
    ("<think>it could be the spleen</think><answer> liver </answer>", "liver"),
    ("first <answer>spleen</answer> then <answer>liver</answer>", "liver"),
    ("The organ is \\boxed{\\text{left lung}}.", "left lung"),
    ("Reasoning...\nFinal answer: no\n(because the margins are smooth)", "no"),
    ("**Final Answer:** yes", "yes"),
    ("so my final answer is granuloma", "granuloma"),
    ("<think>long</think>\nthe liver", "the liver"),         # no wrapper: the text after think
    ("  the final answer depends on the view  ", "the final answer depends on the view"),
    ("Final answer:", ""),                                      # an empty wrapper stays empty
])
def test_final_answer_wrappers(text: str, expected: str) -> None:
    assert final_answer(text, BARE) == expected
    assert EXTRACTORS.get("final_answer") is final_answer


def parsed_by_id(tmp_path: Path, task: str) -> dict[str, object]:
    path = tmp_path / "out" / f"r-{task}" / task / "samples.jsonl"
    return {row["id"]: row["parsed"]
            for row in map(json.loads, path.read_text().splitlines()) if row["error"] is None}


def test_open_and_closed_medvqa_score_the_wrapper(tmp_path: Path) -> None:
    write_vqa_rad_osf(tmp_path)  # 1 yes, 2 no, 3 no (closed); 4 left lung, 5 "2", 6 CT (open)
    responses = {"1": "<think>no effusion... wait</think>\\boxed{yes}",
                 "2": "The heart looks normal.\nFinal answer: no",
                 "3": "<answer>yes</answer>",
                 "4": "Looking at the opacity...\n<answer>left lung</answer>",
                 "5": "There are \\boxed{2} fractured ribs.",
                 "6": "**Final answer:** CT"}
    block = run_replay(tmp_path, "vqa_rad", responses)
    assert metric(block, "closed_accuracy") == pytest.approx(2 / 3)
    assert metric(block, "open_exact_match") == pytest.approx(1.0)
    assert parsed_by_id(tmp_path, "vqa_rad") == {"1": "yes", "2": "no", "3": "yes",
                                                 "4": "left lung", "5": "2", "6": "CT"}


def test_multiple_choice_scores_the_wrapper(tmp_path: Path) -> None:
    write_pmc(tmp_path, [pmc_row(0, "B"), pmc_row(1, "C"), pmc_row(2, "D"), pmc_row(3, "A")])
    responses = {"test_2/0": "<think>A is tempting, but</think><answer>B</answer>",
                 "test_2/1": "Diffuse (A) is unlikely. \\boxed{C}",
                 "test_2/2": "Option A mentions uptake.\nFinal answer: D",
                 "test_2/3": "<answer>B</answer> I first thought A"}
    block = run_replay(tmp_path, "pmc_vqa", responses)
    assert metric(block, "accuracy") == pytest.approx(3 / 4)
    assert parsed_by_id(tmp_path, "pmc_vqa") == {"test_2/0": "B", "test_2/1": "C",
                                                 "test_2/2": "D", "test_2/3": "B"}

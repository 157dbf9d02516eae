"""The ``llm_judge`` metric as a general mechanism: strict parsing, literal template braces, a
local plugin as judge on VQA-RAD's open questions, binding per run (nothing leaks), cache keys."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from healthbench.run.evaluate import RunSpec, build_metrics, evaluate
from healthbench.run.judge_client import Judge
from healthbench.scoring.judge import (JudgeMetric, bind_judge, llm_judge, parse_score,
                                       render_judge_prompt)
from healthbench.models.baselines import RandomModel
from healthbench.run.runner import RunSettings
from healthbench.results.samples import read_samples
from healthbench.taskconfig.index import TaskIndex
from healthbench.taskconfig.schema import parse_task
from tests.helpers import write_png


@pytest.mark.parametrize("reply,score", [
    ("0.8", 0.8), (" 1.0\n", 1.0), ("0", 0.0), ("1", 1.0),
    ("0.8 because it matches", None), ("Score: 0.8", None), ("1.5", None), ("-0.1", None),
    ("nan", None), ("inf", None), ("", None),
])
def test_a_score_is_the_whole_reply_as_a_number_in_0_1(reply: str, score: float | None) -> None:
    assert parse_score(reply)[0] == score


def test_template_braces_are_literal_and_values_are_not_rescanned() -> None:
    template = 'Example | {"box_2d": [1, 2]} | 1.0\n{question} | {answer} | {prediction} | '
    out = render_judge_prompt(template, "Q {answer}?", "ref {x}", "pred")
    assert out == 'Example | {"box_2d": [1, 2]} | 1.0\nQ {answer}? | ref {x} | pred | '


def test_a_template_without_prediction_is_refused() -> None:
    with pytest.raises(ValueError, match="prediction"):
        llm_judge(template="{question} | {answer}")


def test_cache_key_depends_on_judge_identity_not_on_transport(tmp_path: Path) -> None:
    a = Judge("random", {"seed": 1}, model=RandomModel(seed=1))
    b = Judge("random", {"seed": 2}, model=RandomModel(seed=2))
    c = Judge("random", {"seed": 1, "timeout": 5}, model=RandomModel(seed=1))
    assert a.cache_key("p", 0.0, 8) != b.cache_key("p", 0.0, 8)
    assert a.cache_key("p", 0.0, 8) == c.cache_key("p", 0.0, 8)
    assert a.cache_key("p", 0.0, 8) != a.cache_key("p", 0.5, 8)


# --- VQA-RAD open questions graded by a local plugin (replay) -----------------------------------

VQA_TASK = """task: vqa_rad_judged
version: "1.0"
dataset: {format: vqa_rad, path: VQA-RAD, options: {split: test}}
output: text
prompt: {builder: medvqa_yes_no}
extract: {name: identity}
metrics:
  - {name: closed_accuracy}
  - name: llm_judge
    args:
      max_tokens: 8
      template: "Grade 0-1.\\n{question} | {answer} | {prediction} | "
group_by: [answer_type]
"""


def write_vqa_rad(root: Path) -> None:
    base = root / "VQA-RAD"
    items = [{"qid": q, "image_name": f"synpic{q}.jpg", "image_organ": "CHEST", "answer": a,
              "answer_type": t, "question_type": "PRES", "question": f"Question {q}?",
              "phrase_type": "test_freeform", "evaluation": "given", "qid_linked_id": "0"}
             for q, a, t in [(1, "yes", "CLOSED"), (2, "left lung", "OPEN"),
                             (3, "pleural effusion", "OPEN")]]
    (base / "VQA_RAD Image Folder").mkdir(parents=True)
    (base / "VQA_RAD Dataset Public.json").write_text(json.dumps(items))
    for item in items:
        write_png(base / "VQA_RAD Image Folder" / item["image_name"], seed=item["qid"])


def run_vqa(tmp_path: Path, run_id: str, judge: str | None) -> dict:
    (tmp_path / "tasks").mkdir(exist_ok=True)
    (tmp_path / "tasks" / "vqa_rad_judged.yaml").write_text(VQA_TASK)
    answers = tmp_path / "answers.jsonl"
    answers.write_text("".join(json.dumps({"task": "vqa_rad_judged", "id": i, "response": r})
                               + "\n" for i, r in [("1", "Yes"), ("2", "the left lung"),
                                                   ("3", "no effusion")]))
    grades = tmp_path / "grades.jsonl"  # the judge: a replay of fixed grades per sample id
    grades.write_text("".join(json.dumps({"task": "judge", "id": i, "response": g}) + "\n"
                              for i, g in [("2", "0.9"), ("3", "0.2")]))
    spec = RunSpec(model="replay", model_args={"path": str(answers)},
                   tasks=TaskIndex.build([tmp_path / "tasks"], builtin=False).resolve(
                       ["vqa_rad_judged"]),
                   data_root=tmp_path, output_path=tmp_path / "out", run_id=run_id,
                   settings=RunSettings(progress=False), judge=judge,
                   judge_args={"path": str(grades)} if judge else {},
                   judge_cache=tmp_path / "cache")
    return evaluate(spec)["tasks"]["vqa_rad_judged"]


def test_open_questions_of_any_task_are_judged_by_a_local_plugin(tmp_path: Path) -> None:
    write_vqa_rad(tmp_path)
    block = run_vqa(tmp_path, "judged", judge="replay")
    assert block["metrics"]["judge_accuracy"]["value"] == pytest.approx((0.9 + 0.2) / 2)
    assert block["metrics"]["judge_accuracy"]["n"] == 2  # the closed question is not judged
    assert block["metrics"]["closed_accuracy"]["value"] == 1.0
    assert block["groups"]["answer_type"]["closed"]["metrics"]["judge_accuracy"]["n"] == 0
    details = read_samples(tmp_path / "out" / "judged" / "vqa_rad_judged" / "samples.jsonl")
    assert details["2"].meta["details"]["judge_accuracy"]["tries"][0]["output"] == "0.9"
    assert "details" not in details["1"].meta


def test_a_judge_never_leaks_into_a_later_run_without_one(tmp_path: Path) -> None:
    write_vqa_rad(tmp_path)
    run_vqa(tmp_path, "with", judge="replay")
    block = run_vqa(tmp_path, "without", judge=None)
    assert block["metrics"]["judge_accuracy"]["n"] == 0
    assert block["judge"]["configured"] is False
    assert block["judge"]["metrics"]["judge_accuracy"]["n_not_scored"] == 2


def test_bind_judge_returns_new_metrics_and_leaves_the_task_metrics_unbound() -> None:
    task = parse_task({"task": "t", "version": "1", "dataset": {"format": "vqa_rad"},
                       "output": "text", "prompt": "{question}",
                       "metrics": [{"name": "llm_judge",
                                    "args": {"template": "{prediction}"}}]}, "inline")
    metrics = build_metrics(task)
    judge = Judge("random", {}, model=RandomModel())
    bound = bind_judge(metrics, judge)
    assert isinstance(bound[0], JudgeMetric) and bound[0].judge is judge
    assert metrics[0].judge is None  # type: ignore[attr-defined]

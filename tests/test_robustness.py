"""Option-order robustness: scripted models whose answers we know, run through the real harness
on an OmniMedVQA-format fixture (4 options each)."""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from scipy.stats import chisquare

from healthbench.core.types import Response, Sample
from healthbench.models.base import Model
from healthbench.results.samples import read_samples
from healthbench.run.evaluate import RunSpec, evaluate
from healthbench.run.runner import RunSettings
from healthbench.scoring.robustness import orders, parse_permutations, permute, position_bias
from healthbench.taskconfig.index import TaskIndex
from healthbench.taskconfig.schema import TaskConfigError
from tests.helpers import omnimed_item, task_yaml, write_omnimed

OPTIONS = ("CT", "MRI", "X-ray", "Ultrasound")
# (question, answer): targets land on A, B, C, D, B, C, D, A, C, D in the benchmark's order
ANSWERS = ["CT", "MRI", "X-ray", "Ultrasound", "MRI", "X-ray", "Ultrasound", "CT", "X-ray",
           "Ultrasound"]
KEY = {f"Question {i}: which modality?": answer for i, answer in enumerate(ANSWERS)}


class AlwaysA(Model):
    """Answers "A" whatever it is asked."""

    capabilities = frozenset({"text"})

    def generate(self, requests):
        return [Response(text="A") for _ in requests]


class KnowsTheAnswer(Model):
    """Answers with the right option's text (not its letter), wherever the option stands."""

    capabilities = frozenset({"text"})

    def __init__(self) -> None:
        self.calls = 0

    def generate(self, requests):
        self.calls += len(requests)
        out = []
        for request in requests:
            question = next(q for q in KEY if q in request.prompt)
            assert KEY[question] in request.options.values()
            out.append(Response(text=KEY[question]))
        return out


def _tasks(tmp_path: Path, extra: str = ""):
    items = [omnimed_item(f"Images/x/{i}.png", answer=answer, options=OPTIONS, question=q,
                          modality="CT(Computed Tomography)" if i % 2 else "X-Ray")
             for i, (q, answer) in enumerate(KEY.items())]
    write_omnimed(tmp_path / "data", items)
    (tmp_path / "tasks").mkdir(exist_ok=True)
    (tmp_path / "tasks" / "toy.yaml").write_text(task_yaml(extra=extra))
    return TaskIndex.build([tmp_path / "tasks"], builtin=False).resolve(["toy"])


def _run(tmp_path: Path, model: Model, permute: str | int | None = "cyclic", extra: str = ""):
    spec = RunSpec(model="scripted", model_args={}, tasks=_tasks(tmp_path, extra),
                   data_root=tmp_path / "data", output_path=tmp_path / "out", run_id="r",
                   permute_options=permute, settings=RunSettings(batch_size=8, progress=False))
    return evaluate(spec, model=model)["tasks"]["toy"]


def test_always_a_scores_the_share_of_a_targets_and_is_never_consistent(tmp_path: Path) -> None:
    block = _run(tmp_path, AlwaysA())
    share_a = sum(answer == "CT" for answer in ANSWERS) / len(ANSWERS)  # CT is always option A
    robust = block["robustness"]
    assert block["metrics"]["accuracy"]["value"] == pytest.approx(share_a)
    assert robust["original_accuracy"]["value"] == pytest.approx(share_a)
    assert robust["consistent_accuracy"]["value"] == 0.0
    assert robust["flip_rate"]["value"] == 1.0  # each rotation puts another option at A
    bias = robust["position_bias"]
    assert bias["answers"] == {"A": 40, "B": 0, "C": 0, "D": 0}
    assert bias["targets"] == {"A": 10, "B": 10, "C": 10, "D": 10}  # rotations balance them
    assert bias["flagged"] and bias["p_value"] < 1e-10
    assert (robust["n_questions"], robust["n_orders"]) == (10, 40)
    # the task's own metrics stay on the original order: same n as a run without permutations
    assert (block["n"], block["n_total"]) == (10, 10)


def test_right_option_text_is_consistently_right_under_every_order(tmp_path: Path) -> None:
    block = _run(tmp_path, KnowsTheAnswer())
    robust = block["robustness"]
    assert block["metrics"]["accuracy"]["value"] == 1.0
    assert robust["original_accuracy"]["value"] == robust["consistent_accuracy"]["value"] == 1.0
    assert robust["flip_rate"]["value"] == 0.0
    assert robust["position_bias"]["chi2"] == 0.0 and not robust["position_bias"]["flagged"]
    for key in ("CT", "X-Ray"):  # per group (modality), with its interval
        group = robust["groups"]["modality"][key]
        assert group["consistent_accuracy"]["value"] == 1.0 and group["n_questions"] == 5


def test_each_permuted_request_is_its_own_sample_and_resumes(tmp_path: Path) -> None:
    model = KnowsTheAnswer()
    _run(tmp_path, model)
    records = read_samples(tmp_path / "out" / "r" / "toy" / "samples.jsonl")
    assert len(records) == 40 and model.calls == 40
    first = list(KEY)[0]  # options CT, MRI, X-ray, Ultrasound; the answer is CT (A)
    original = next(r for r in records.values() if r.inputs["question"] == first
                    and "permutation" not in r.meta)
    perm = records[f"{original.id}#perm1"]
    info = perm.meta["permutation"]
    assert info["index"] == 1 and info["order"] == ["B", "C", "D", "A"]
    assert perm.inputs["options"] == {"A": "MRI", "B": "X-ray", "C": "Ultrasound", "D": "CT"}
    assert perm.target == "D" and perm.parsed == "D" and perm.scores["accuracy"] == 1.0
    _run(tmp_path, model)  # the same run again: every sample is already there
    assert model.calls == 40


def test_task_level_permutations_and_seeded_n(tmp_path: Path) -> None:
    block = _run(tmp_path, AlwaysA(), permute=None, extra="permutations: 2\n")
    assert block["permutations"] == 2 and block["robustness"]["n_orders"] == 30
    again = orders(4, 2, seed=0, sample_id="q1")
    assert again == orders(4, 2, seed=0, sample_id="q1") and len(set(again)) == 2
    assert tuple(range(4)) not in again
    assert len(orders(3, 10, seed=0, sample_id="q")) == 5  # all 3! - 1 when N exceeds them


def test_permute_moves_the_target_with_its_option() -> None:
    sample = Sample(id="q", options={"A": "x", "B": "y", "C": "z"}, target="B", meta={"m": 1})
    moved = permute(sample, (2, 0, 1), 3)
    assert moved.id == "q#perm3" and moved.options == {"A": "z", "B": "x", "C": "y"}
    assert moved.target == "C" and moved.options[moved.target] == "y"
    assert moved.meta == {"m": 1, "permutation": {"of": "q", "index": 3,
                                                  "order": ["C", "A", "B"]}}


def test_position_bias_is_scipys_goodness_of_fit() -> None:
    answers, targets = Counter(A=30, B=10, C=12, D=8), Counter(A=15, B=15, C=15, D=15)
    bias = position_bias(answers, targets)
    stat, p = chisquare([30, 10, 12, 8], f_exp=[15, 15, 15, 15])
    assert bias["chi2"] == pytest.approx(stat) and bias["p_value"] == pytest.approx(p)
    assert bias["dof"] == 3 and bias["flagged"]
    assert position_bias(Counter(E=1, A=3), Counter(A=4))["p_value"] == 0.0


def test_bad_permutation_settings_are_refused(tmp_path: Path) -> None:
    for bad in ("rotate", "-1", "1.5"):
        with pytest.raises(ValueError, match="cyclic"):
            parse_permutations(bad)
    assert parse_permutations("cyclic") == "cyclic" and parse_permutations("3") == 3
    assert parse_permutations("0") is None
    with pytest.raises(TaskConfigError, match="permutations"):
        _tasks(tmp_path, extra="permutations: sometimes\n")


def test_results_json_holds_the_robustness_block(tmp_path: Path) -> None:
    _run(tmp_path, AlwaysA())
    saved = json.loads((tmp_path / "out" / "r" / "results.json").read_text())
    assert saved["tasks"]["toy"]["robustness"]["consistent_accuracy"]["ci"] == [0.0, 0.0]
    assert "Option order" in (tmp_path / "out" / "r" / "tables.md").read_text()

"""Models are found by name from built-ins and from the entry-point group; replay scores saved
outputs exactly."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from healthbench.core.catalog import MODELS
from healthbench.run.evaluate import RunSpec, evaluate
from healthbench.models.base import ModelArgsError, create_model, parse_model_args
from healthbench.run.runner import RunSettings
from healthbench.taskconfig.index import TaskIndex
from tests.helpers import omnimed_item, task_yaml, write_omnimed

PLUGIN = '''
from healthbench.models.base import Model
from healthbench.core.types import Response

class AlwaysB(Model):
    """A third-party model that always answers B."""
    capabilities = frozenset({"text"})
    def generate(self, requests):
        return [Response(text="The answer is (B).") for _ in requests]
'''


def test_third_party_model_is_found_by_entry_point(tmp_path: Path, monkeypatch) -> None:
    site = tmp_path / "site"
    (site / "hb_thirdparty").mkdir(parents=True)
    (site / "hb_thirdparty" / "__init__.py").write_text(PLUGIN)
    dist = site / "hb_thirdparty-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: hb-thirdparty\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[healthbench.models]\nalways_b = "
                                           "hb_thirdparty:AlwaysB\n")
    monkeypatch.syspath_prepend(str(site))
    assert "always_b" in MODELS.names()
    model = create_model("always_b", {})
    assert type(model).__name__ == "AlwaysB"


def test_model_args_are_typed_and_validated() -> None:
    assert parse_model_args("a=1,b=2.5,c=true,d=path/x") == {"a": 1, "b": 2.5, "c": True,
                                                              "d": "path/x"}
    with pytest.raises(ModelArgsError, match="expected key=value"):
        parse_model_args("justaword")


def make_task(tmp_path: Path):
    items = [omnimed_item(f"Images/x/{i}.png", answer=["CT", "MRI"][i % 2],
                          modality=["CT(Computed Tomography)", "X-Ray"][i // 2 % 2])
             for i in range(4)]
    write_omnimed(tmp_path / "data", items)
    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks" / "toy.yaml").write_text(task_yaml())
    return TaskIndex.build([tmp_path / "tasks"], builtin=False).resolve(["toy"])


def test_replay_scores_saved_responses_exactly(tmp_path: Path) -> None:
    tasks = make_task(tmp_path)
    saved = tmp_path / "saved.jsonl"
    # targets: 0->A, 1->B, 2->A, 3->B ; modality: 0,1 CT ; 2,3 X-Ray
    answers = {0: "A", 1: "(A)", 2: "the answer is A", 3: "no idea"}
    saved.write_text("".join(json.dumps({"task": "toy", "id": f"Open-access/Toy/{i}",
                                         "response": r}) + "\n" for i, r in answers.items()))
    spec = RunSpec(model="replay", model_args={"path": str(saved)}, tasks=tasks,
                   data_root=tmp_path / "data", output_path=tmp_path / "out", run_id="r",
                   settings=RunSettings(progress=False))
    block = evaluate(spec)["tasks"]["toy"]
    assert block["metrics"]["accuracy"]["value"] == pytest.approx(0.5)
    assert block["metrics"]["parse_failure"]["value"] == pytest.approx(0.25)
    assert block["groups"]["modality"]["CT"]["metrics"]["accuracy"]["value"] == 0.5
    assert block["groups"]["modality"]["X-Ray"]["metrics"]["accuracy"]["value"] == 0.5
    assert block["macro"]["modality"]["accuracy"]["value"] == 0.5

    # a previous run's samples folder replays to the same metrics
    spec2 = RunSpec(model="replay", model_args={"path": str(tmp_path / "out" / "r")},
                    tasks=tasks, data_root=tmp_path / "data", output_path=tmp_path / "out",
                    run_id="r2", settings=RunSettings(progress=False))
    assert evaluate(spec2)["tasks"]["toy"]["metrics"] == block["metrics"]


def test_replay_missing_response_is_a_per_sample_error(tmp_path: Path) -> None:
    tasks = make_task(tmp_path)
    saved = tmp_path / "saved.jsonl"
    saved.write_text(json.dumps({"task": "toy", "id": "Open-access/Toy/0", "response": "A"})
                     + "\n")
    spec = RunSpec(model="replay", model_args={"path": str(saved)}, tasks=tasks,
                   data_root=tmp_path / "data", output_path=tmp_path / "out", run_id="r",
                   settings=RunSettings(progress=False))
    block = evaluate(spec)["tasks"]["toy"]
    assert (block["n"], block["n_errors"]) == (1, 3)


def test_results_json_records_the_run(tmp_path: Path) -> None:
    tasks = make_task(tmp_path)
    spec = RunSpec(model="random", model_args={"seed": 3}, tasks=tasks,
                   data_root=tmp_path / "data", output_path=tmp_path / "out", run_id="r",
                   seed=7, settings=RunSettings(progress=False))
    evaluate(spec)
    results = json.loads((tmp_path / "out" / "r" / "results.json").read_text())
    assert results["schema_version"] == 1
    assert results["model"]["name"] == "random" and results["model"]["args"] == {"seed": 3}
    assert results["model"]["info"]["kind"] == "chance baseline"
    assert results["model"]["args_hash"].startswith("sha256:")
    assert results["seed"] == 7 and results["harness"]["version"]
    assert {"python", "torch", "transformers", "host"} <= set(results["env"])
    task = results["tasks"]["toy"]
    assert task["version"] == "1" and task["data_checksum"].startswith("sha256:")
    lo, hi = task["metrics"]["accuracy"]["ci"]
    assert lo <= task["metrics"]["accuracy"]["value"] <= hi


def test_secrets_in_model_args_are_redacted(tmp_path: Path) -> None:
    from healthbench.models.base import public_args

    assert public_args({"api_key": "sk-123", "model": "x", "hf_token": "t"}) == {
        "api_key": "<redacted>", "model": "x", "hf_token": "<redacted>"}


def test_task_system_prompt_reaches_the_model(tmp_path: Path) -> None:
    from healthbench.models.base import Model
    from healthbench.core.types import Response

    class Recorder(Model):
        capabilities = frozenset({"text"})

        def __init__(self) -> None:
            self.systems: list = []

        def generate(self, requests):
            self.systems += [r.system for r in requests]
            return [Response(text="A") for _ in requests]

    make_task(tmp_path)
    (tmp_path / "tasks" / "toy.yaml").write_text(task_yaml().replace(
        'prompt: "{question}\\n{options}"',
        'prompt: {template: "{question}", system: "You are a radiologist."}'))
    tasks = TaskIndex.build([tmp_path / "tasks"], builtin=False).resolve(["toy"])
    model = Recorder()
    evaluate(RunSpec(model="rec", model_args={}, tasks=tasks, data_root=tmp_path / "data",
                     output_path=tmp_path / "out", run_id="r",
                     settings=RunSettings(progress=False)), model=model)
    assert model.systems == ["You are a radiologist."] * 4

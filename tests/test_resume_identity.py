"""Resuming never mixes models, and samples that failed in the model are retried."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from healthbench.cli import main
from healthbench.run.evaluate import default_run_id
from tests.helpers import omnimed_item, task_yaml, write_omnimed


def setup_task(tmp_path: Path, n: int = 4) -> None:
    write_omnimed(tmp_path / "data", [omnimed_item(f"Images/x/{i}.png") for i in range(n)])
    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks" / "toy.yaml").write_text(task_yaml())


def run(tmp_path: Path, model: str, *extra: str) -> int:
    return main(["run", "--model", model, "--tasks", "toy", "--include-path",
                 str(tmp_path / "tasks"), "--data-root", str(tmp_path / "data"),
                 "--output-path", str(tmp_path / "out"), "--run-id", "r", "--no-progress",
                 *extra])


def rows(tmp_path: Path) -> list[dict]:
    text = (tmp_path / "out" / "r" / "toy" / "samples.jsonl").read_text()
    return [json.loads(line) for line in text.splitlines()]


def test_resuming_with_another_model_or_args_is_refused(tmp_path: Path, capsys) -> None:
    setup_task(tmp_path)
    assert run(tmp_path, "random", "--model-args", "seed=1") == 0
    assert run(tmp_path, "random", "--model-args", "seed=2") == 2
    assert "different --model-args" in capsys.readouterr().err
    saved = tmp_path / "saved.jsonl"
    saved.write_text("")
    assert run(tmp_path, "replay", "--model-args", f"path={saved}") == 2
    assert "model 'random' (now 'replay')" in capsys.readouterr().err
    assert run(tmp_path, "random", "--model-args", "seed=1") == 0  # the same command resumes


def test_samples_that_failed_in_the_model_are_retried_on_resume(tmp_path: Path) -> None:
    setup_task(tmp_path)
    saved = tmp_path / "saved.jsonl"
    saved.write_text(json.dumps({"task": "toy", "id": "Open-access/Toy/0", "response": "A"})
                     + "\n")
    assert run(tmp_path, "replay", "--model-args", f"path={saved}") == 0
    assert sum(r["error"] is not None for r in rows(tmp_path)) == 3
    saved.write_text("".join(json.dumps({"task": "toy", "id": f"Open-access/Toy/{i}",
                                         "response": "A"}) + "\n" for i in range(4)))
    assert run(tmp_path, "replay", "--model-args", f"path={saved}") == 0
    final = rows(tmp_path)
    assert len(final) == 4 and all(r["error"] is None for r in final)
    results = json.loads((tmp_path / "out" / "r" / "results.json").read_text())
    assert (results["tasks"]["toy"]["n"], results["tasks"]["toy"]["n_errors"]) == (4, 0)
    assert results["model"]["args_hash"].startswith("sha256:")


def test_default_run_ids_do_not_collide_within_a_second() -> None:
    ids = {default_run_id("m") for _ in range(50)}
    assert len(ids) > 45


def test_missing_data_fails_before_the_model_is_loaded(tmp_path: Path, capsys,
                                                       monkeypatch) -> None:
    from healthbench.models import base

    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks" / "toy.yaml").write_text(task_yaml())

    def explode(*args, **kwargs):
        raise AssertionError("the model was loaded before the data was checked")

    monkeypatch.setattr("healthbench.run.evaluate.create_model", explode)
    assert run(tmp_path, "random") == 2
    assert "OmniMedVQA not found" in capsys.readouterr().err
    assert base  # the module imported fine


def test_a_run_in_which_every_sample_failed_exits_non_zero(tmp_path: Path, capsys) -> None:
    setup_task(tmp_path)
    saved = tmp_path / "saved.jsonl"
    saved.write_text("")
    assert run(tmp_path, "replay", "--model-args", f"path={saved}") == 1
    assert "every sample failed in toy" in capsys.readouterr().err

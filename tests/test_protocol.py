"""A task-level ``protocol:`` reaches the metrics and the extractor that take it, is recorded in
results.json and tables.md, splits leaderboard tables and stops compare."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from healthbench.report.compare import comparability_problems
from healthbench.report.leaderboard import build_leaderboard
from healthbench.taskconfig.schema import TaskConfigError, parse_task, with_protocol

BASE = {"task": "t", "version": "1", "dataset": {"format": "vqa_rad", "path": "x"},
        "output": "text", "prompt": "{question}", "metrics": ["accuracy"]}


def test_protocol_is_optional_and_recorded_on_the_config() -> None:
    assert parse_task(BASE, "t.yaml").protocol is None
    assert parse_task({**BASE, "protocol": "medevalkit"}, "t.yaml").protocol == "medevalkit"


def test_protocol_of_the_wrong_type_names_the_key() -> None:
    with pytest.raises(TaskConfigError, match="t.yaml: key 'protocol'"):
        parse_task({**BASE, "protocol": 3}, "t.yaml")


def test_protocol_goes_only_to_callables_that_take_it() -> None:
    task = parse_task({**BASE, "protocol": "llava-med"}, "t.yaml")

    def takes(protocol: str = "strict") -> None: ...

    def does_not() -> None: ...

    assert with_protocol(takes, {}, task, "metrics[0]") == {"protocol": "llava-med"}
    assert with_protocol(does_not, {"a": 1}, task, "metrics[0]") == {"a": 1}
    with pytest.raises(TaskConfigError, match="contradicts the task's protocol"):
        with_protocol(takes, {"protocol": "strict"}, task, "metrics[0]")


def _run(path: Path, protocol: str | None) -> Path:
    path.mkdir(parents=True)
    block = {"version": "1", "protocol": protocol, "data_checksum": "sha256:x", "n": 1,
             "n_errors": 0, "metrics": {"accuracy": {"value": 1.0, "ci": [1.0, 1.0]}},
             "metric_info": {"accuracy": {"percent": True, "higher_is_better": True}}}
    (path / "results.json").write_text(json.dumps({
        "schema_version": 1, "run_id": path.name, "model": {"name": "m", "args": {}},
        "harness": {"version": "0", "git_sha": "x"}, "seed": 0, "tasks": {"vqa_rad": block}}))
    return path


def test_different_protocols_are_never_ranked_together(tmp_path: Path) -> None:
    from healthbench.report.runs import load_runs

    _run(tmp_path / "a", "strict")
    _run(tmp_path / "b", "llava-med")
    board = build_leaderboard(load_runs(tmp_path))
    titles = sorted(t.title for t in board.tables)
    assert titles == ["vqa_rad (v1) — protocol llava-med", "vqa_rad (v1) — protocol strict"]
    assert all(len(t.entries) == 1 for t in board.tables)


def test_compare_refuses_runs_scored_by_different_protocols(tmp_path: Path) -> None:
    from healthbench.report.runs import load_run

    old = load_run(_run(tmp_path / "a", "strict"))
    new = load_run(_run(tmp_path / "b", "medevalkit"))
    problems = comparability_problems(old, new, ["vqa_rad"])
    assert any("scoring protocols differ" in p for p in problems)

"""One seed: ``--seed`` reaches the model, subsampling, bootstrap and the official fallbacks
unless a model or task argument sets its own, and results.json records each effective seed."""
from __future__ import annotations

import json
from pathlib import Path

from healthbench.cli import main as cli_main
from helpers import omnimed_item, task_yaml, write_omnimed


def _run(tmp_path: Path, run_id: str, *extra: str) -> dict:
    items = [omnimed_item(f"Images/Toy/{i}.png", options=("CT", "MRI", "US", "X-ray"))
             for i in range(30)]
    if not (tmp_path / "OmniMedVQA").exists():
        write_omnimed(tmp_path, items)
        (tmp_path / "tasks").mkdir()
        (tmp_path / "tasks" / "toy.yaml").write_text(task_yaml(), encoding="utf-8")
    assert cli_main(["run", "--model", "random", "--tasks", "toy", "--include-path",
                     str(tmp_path / "tasks"), "--data-root", str(tmp_path), "--output-path",
                     str(tmp_path / "out"), "--run-id", run_id, "--no-progress",
                     *extra]) == 0
    return json.loads((tmp_path / "out" / run_id / "results.json").read_text())


def _answers(tmp_path: Path, run_id: str) -> dict[str, str]:
    lines = (tmp_path / "out" / run_id / "toy" / "samples.jsonl").read_text().splitlines()
    return {row["id"]: row["response"] for row in map(json.loads, lines)}


def test_the_run_seed_reaches_every_part_unless_overridden(tmp_path: Path) -> None:
    five = _run(tmp_path, "five", "--seed", "5", "--subsample", "20")
    assert five["seeds"] == {"model": 5, "subsample": 5, "bootstrap": 5, "official_fallback": 5}
    assert five["tasks"]["toy"]["seeds"] == {"subsample": 5, "bootstrap": 5,
                                             "official_fallback": {}}
    assert five["model"]["info"]["seed"] == 5  # the random baseline really got it
    again = _run(tmp_path, "again", "--seed", "5", "--subsample", "20")
    other = _run(tmp_path, "other", "--seed", "6", "--subsample", "20")
    assert _answers(tmp_path, "five") == _answers(tmp_path, "again")
    assert set(_answers(tmp_path, "five")) != set(_answers(tmp_path, "other"))  # subsample
    assert again["tasks"]["toy"]["metrics"] == five["tasks"]["toy"]["metrics"]  # bootstrap
    # an explicit model argument wins over --seed; no subsample: no subsample seed
    pinned = _run(tmp_path, "pinned", "--seed", "5", "--model-args", "seed=9")
    assert pinned["seeds"] == {"model": 9, "subsample": None, "bootstrap": 5,
                               "official_fallback": 5}
    assert pinned["model"]["info"]["seed"] == 9

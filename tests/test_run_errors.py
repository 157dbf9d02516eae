"""Bad input gets a clear error naming the file and row; bad samples are recorded and counted,
and the rest of the run goes on."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from healthbench.cli import main
from tests.helpers import omnimed_item, task_yaml, write_omnimed


def run_cli(tmp_path: Path, *extra: str, model: str = "random") -> int:
    return main(["run", "--model", model, "--tasks", "toy", "--include-path",
                 str(tmp_path / "tasks"), "--data-root", str(tmp_path / "data"),
                 "--output-path", str(tmp_path / "results"), "--run-id", "r",
                 "--no-progress", *extra])


@pytest.fixture()
def tasks(tmp_path: Path) -> Path:
    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks" / "toy.yaml").write_text(task_yaml())
    return tmp_path


def records(tmp_path: Path) -> dict[str, dict]:
    path = tmp_path / "results" / "r" / "toy" / "samples.jsonl"
    return {row["id"]: row for row in map(json.loads, path.read_text().splitlines())}


def test_missing_dataset_says_what_is_expected_where(tasks: Path, capsys) -> None:
    assert run_cli(tasks) == 2
    err = capsys.readouterr().err
    assert "OmniMedVQA not found at" in err and "QA_information/Open-access" in err
    assert "--data-root" in err


def test_missing_and_corrupt_images_are_counted_errors(tasks: Path, capsys) -> None:
    items = [omnimed_item(f"Images/x/{i}.png") for i in range(5)]
    base = write_omnimed(tasks / "data", items)
    (base / "Images/x/1.png").unlink()  # missing
    (base / "Images/x/3.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")  # corrupt
    assert run_cli(tasks) == 0
    rows = records(tasks)
    assert len(rows) == 5
    assert "cannot open image" in rows["Open-access/Toy/1"]["error"]
    assert "1.png" in rows["Open-access/Toy/1"]["error"]
    assert "unreadable image" in rows["Open-access/Toy/3"]["error"]
    assert "3.png" in rows["Open-access/Toy/3"]["error"]
    assert all(rows[f"Open-access/Toy/{i}"]["error"] is None for i in (0, 2, 4))
    results = json.loads((tasks / "results" / "r" / "results.json").read_text())
    block = results["tasks"]["toy"]
    assert (block["n"], block["n_errors"], block["n_total"]) == (3, 2, 5)
    assert block["groups"]["modality"]["CT"]["n_errors"] == 2


def test_bad_rows_are_recorded_with_file_and_row(tasks: Path) -> None:
    items = [omnimed_item("Images/x/0.png"),
             omnimed_item("Images/x/1.png", answer="PET"),  # answer not among the options
             {**omnimed_item("Images/x/2.png"), "option_B": None},  # missing option
             omnimed_item("../../etc/passwd"),  # outside the data root
             omnimed_item("Images/x/4.png", modality="Thermography")]
    write_omnimed(tasks / "data", items[:3] + items[4:], images=True)
    write_omnimed(tasks / "data", items, images=False)
    assert run_cli(tasks) == 0
    rows = records(tasks)
    assert len(rows) == 5
    qa_file = "Toy.json item"
    assert qa_file in rows["Open-access/Toy/1"]["error"]
    assert "'PET' is not among the options" in rows["Open-access/Toy/1"]["error"]
    assert "missing or empty field 'option_B'" in rows["Open-access/Toy/2"]["error"]
    assert "contains '..'" in rows["Open-access/Toy/3"]["error"]
    assert "unknown modality string 'Thermography'" in rows["Open-access/Toy/4"]["error"]
    results = json.loads((tasks / "results" / "r" / "results.json").read_text())
    assert results["tasks"]["toy"]["n_errors"] == 4


def test_model_without_capability_is_refused_before_running(tasks: Path, capsys) -> None:
    write_omnimed(tasks / "data", [omnimed_item("Images/x/0.png")])
    (tasks / "tasks" / "toy.yaml").write_text(task_yaml().replace("output: text",
                                                                   "output: image"))
    assert run_cli(tasks, model="tiny") == 2
    err = capsys.readouterr().err
    assert "cannot run task 'toy'" in err and "needs image" in err
    assert not (tasks / "results" / "r" / "toy" / "samples.jsonl").exists()


def test_unknown_model_and_bad_model_args_are_clear(tasks: Path, capsys) -> None:
    write_omnimed(tasks / "data", [omnimed_item("Images/x/0.png")])
    assert run_cli(tasks, model="nosuchmodel") == 2
    assert "unknown model 'nosuchmodel'" in capsys.readouterr().err
    assert run_cli(tasks, "--model-args", "sede=3") == 2
    assert "does not accept sede" in capsys.readouterr().err


def test_a_model_that_raises_loses_only_the_failing_sample(tasks: Path, monkeypatch) -> None:
    from healthbench.core.catalog import MODELS
    from healthbench.models.base import Model
    from healthbench.core.types import Response

    class Flaky(Model):
        capabilities = frozenset({"text"})

        def generate(self, requests):
            if any(r.sample_id.endswith("/2") for r in requests):
                raise RuntimeError("CUDA error: device-side assert")
            return [Response(text="A") for _ in requests]

    # registered for this test only: a leftover name would be a name missing from the catalog
    monkeypatch.setitem(MODELS._items, "flaky_test_model", Flaky)
    write_omnimed(tasks / "data", [omnimed_item(f"Images/x/{i}.png") for i in range(6)])
    assert run_cli(tasks, "--batch-size", "3", model="flaky_test_model") == 0
    rows = records(tasks)
    assert len(rows) == 6
    assert "device-side assert" in rows["Open-access/Toy/2"]["error"]
    assert sum(r["error"] is None for r in rows.values()) == 5


def test_model_args_are_converted_by_the_plugins_annotations(tasks: Path, capsys) -> None:
    write_omnimed(tasks / "data", [omnimed_item("Images/x/0.png")])
    assert run_cli(tasks, "--model-args", "seed=abc") == 2
    assert "argument seed='abc': expected int" in capsys.readouterr().err
    assert run_cli(tasks, model="replay") == 2
    assert "model 'replay' needs path (--model-args path=...)" in capsys.readouterr().err


def test_bad_limits_and_misspelled_tasks_are_caught_early(tasks: Path, capsys) -> None:
    with pytest.raises(SystemExit):
        run_cli(tasks, "--limit", "-1")
    assert "expected a positive integer" in capsys.readouterr().err
    assert main(["run", "--tasks", "omnimedvqa_sampel", "--no-progress"]) == 2
    assert "did you mean omnimedvqa_sample" in capsys.readouterr().err

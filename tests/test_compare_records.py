"""``compare`` reads results.json and samples.jsonl only: corpus metrics are rebuilt from the
metric registry with the arguments each run recorded, so deleting or editing the task YAML after
the runs changes nothing; runs without that record fall back to stored per-sample scores, and
the report says so."""
from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import pytest

from healthbench.cli import main as cli_main
from healthbench.report.compare import compare_runs, render_markdown
from healthbench.report.runs import load_run
from test_compare import TASK, _wrong, _write_dataset
from test_compare import TASK_YAML as GATE_YAML


def task_yaml(n: int) -> str:
    """test_compare's task with a corpus metric whose arguments matter: BLEU-1 of the answer
    against the gold letter (BLEU-4 of one-token answers would be 0), renamed by an argument."""
    metrics = "metrics: [{name: accuracy}, {name: parse_failure}]"
    out = GATE_YAML.format(version="1.0")
    assert metrics in out
    return out.replace(metrics, "metrics: [{name: accuracy}, "
                                f"{{name: bleu, args: {{n: {n}, name: letter_bleu}}}}]")


def _run(out: Path, run_id: str, data_root: Path, tasks_dir: Path, answers: dict) -> Path:
    responses = out.parent / f"{run_id}.jsonl"
    responses.write_text("".join(json.dumps({"task": TASK, "id": i, "response": a}) + "\n"
                                 for i, a in answers.items()), encoding="utf-8")
    assert cli_main(["run", "--model", "replay", "--model-args", f"path={responses}",
                     "--tasks", TASK, "--include-path", str(tasks_dir), "--data-root",
                     str(data_root), "--output-path", str(out), "--run-id", run_id,
                     "--no-progress"]) == 0
    return out / run_id


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("records")
    truth = _write_dataset(base / "data")
    tasks_dir = base / "tasks"
    tasks_dir.mkdir()
    (tasks_dir / "gate_vqa.yaml").write_text(task_yaml(1), encoding="utf-8")
    rng = random.Random(3)
    old = {i: (letter if rng.random() < 0.8 else _wrong(letter)) for i, _, letter in truth}
    new = {i: (a if j % 5 else _wrong(a)) for j, (i, a) in enumerate(old.items())}
    out = base / "results"
    return {"old": _run(out, "old", base / "data", tasks_dir, old),
            "new": _run(out, "new", base / "data", tasks_dir, new), "tasks": tasks_dir}


def _summary(report) -> list[tuple]:
    return [(c.task, c.slice_label, c.metric, c.result.test, c.result.baseline, c.result.new,
             c.result.diff, tuple(c.result.ci), c.result.p_value, c.regression)
            for c in report.comparisons]


def test_results_json_records_how_each_metric_was_built(pair) -> None:
    info = json.loads((pair["old"] / "results.json").read_text())["tasks"][TASK]["metric_info"]
    assert info["letter_bleu"]["registered"] == "bleu"
    assert info["letter_bleu"]["args"] == {"n": 1, "name": "letter_bleu"}
    assert info["accuracy"]["registered"] == "accuracy"


def test_compare_gives_the_same_result_without_the_task_yaml_or_with_a_changed_one(pair) -> None:
    before = compare_runs(load_run(pair["old"]), load_run(pair["new"]), resamples=60)
    bleu = next(c for c in before.comparisons
                if c.metric == "letter_bleu" and c.slice_label == "overall")
    assert bleu.result.test == "paired_bootstrap"  # recomputed on resamples, not stored
    stored = json.loads((pair["old"] / "results.json").read_text())["tasks"][TASK]
    assert bleu.result.baseline == pytest.approx(stored["metrics"]["letter_bleu"]["value"])
    assert bleu.result.baseline > 0.5  # BLEU-1 (BLEU-4 of one-token answers is 0)
    # the YAML now says BLEU-4: compare must still use what the runs were built with
    (pair["tasks"] / "gate_vqa.yaml").write_text(task_yaml(4), encoding="utf-8")
    changed = compare_runs(load_run(pair["old"]), load_run(pair["new"]), resamples=60)
    shutil.rmtree(pair["tasks"])
    removed = compare_runs(load_run(pair["old"]), load_run(pair["new"]), resamples=60)
    assert _summary(changed) == _summary(before) == _summary(removed)
    assert render_markdown(removed).count("stored per-sample scores only") == 0


def test_runs_without_the_record_fall_back_to_stored_scores_and_say_so(pair, tmp_path) -> None:
    copies = {}
    for name in ("old", "new"):
        copies[name] = shutil.copytree(pair[name], tmp_path / name)
        path = copies[name] / "results.json"
        payload = json.loads(path.read_text())
        for info in payload["tasks"][TASK]["metric_info"].values():
            info.pop("registered")
            info.pop("args")
        path.write_text(json.dumps(payload))
    report = compare_runs(load_run(copies["old"]), load_run(copies["new"]), resamples=60)
    assert {c.metric for c in report.comparisons} == {"accuracy"}
    text = render_markdown(report)
    assert "metric accuracy compared from stored per-sample scores only" in text
    assert "metric letter_bleu not compared" in text

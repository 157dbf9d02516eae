"""The embedded default: `python run_eval.py` with no arguments, and batch-size invariance."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from healthbench.run.evaluate import RunSpec, evaluate
from healthbench.models.tiny import TinyVLM
from healthbench.run.runner import RunSettings
from healthbench.taskconfig.index import TaskIndex

REPO = Path(__file__).resolve().parent.parent


def test_run_eval_without_arguments_runs_the_samples_and_writes_everything(
        tmp_path: Path) -> None:
    expected = {t.name for t in TaskIndex.build().resolve(["samples"])}
    env = {**os.environ, "HEALTHBENCH_DATA": str(tmp_path / "data"),
           "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, str(REPO / "run_eval.py")], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    runs = list((tmp_path / "results").glob("healthgpt_*/results.json"))
    assert len(runs) == 1
    results = json.loads(runs[0].read_text())
    assert results["schema_version"] == 1 and results["model"]["name"] == "healthgpt"
    assert results["model"]["info"]["variant"] == "tiny"
    assert set(results["tasks"]) == expected
    for name, block in results["tasks"].items():
        assert block["n"] > 0 and block["n_errors"] == 0, name
        assert (runs[0].parent / name / "samples.jsonl").exists()
        assert (runs[0].parent / name / f"{name}.csv").exists()
        assert block["data_checksum"].startswith("sha256:")
    omni = results["tasks"]["omnimedvqa_sample"]
    assert {"CT", "MR", "X-Ray", "US"} <= set(omni["groups"]["modality"])
    assert "| modality | CT |" in (runs[0].parent / "tables.md").read_text()
    assert "omnimedvqa_sample" in (tmp_path / "leaderboard.md").read_text()
    assert "| modality | CT |" in done.stdout
    recon = results["tasks"]["reconstruction_sample"]  # the unified model's image output
    assert recon["metrics"]["ssim"]["value"] is not None
    assert list((runs[0].parent / "reconstruction_sample" / "images").glob("*.png"))


def test_batch_size_does_not_change_outputs_or_metrics(sample_data_root: Path,
                                                       tmp_path: Path) -> None:
    tasks = TaskIndex.build().resolve(["omnimedvqa_sample"])
    model = TinyVLM()
    outs = {}
    for batch in (1, 8):
        spec = RunSpec(model="tiny", model_args={}, tasks=tasks, data_root=sample_data_root,
                       output_path=tmp_path, run_id=f"b{batch}", limit=8,
                       settings=RunSettings(batch_size=batch, progress=False))
        payload = evaluate(spec, model=model)
        lines = (tmp_path / f"b{batch}" / "omnimedvqa_sample" / "samples.jsonl").read_text()
        responses = {r["id"]: r["response"] for r in map(json.loads, lines.splitlines())}
        outs[batch] = (responses, payload["tasks"]["omnimedvqa_sample"]["metrics"])
    assert len(outs[1][0]) == 8
    assert outs[1][0] == outs[8][0]
    assert outs[1][1] == outs[8][1]

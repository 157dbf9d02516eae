"""A run killed with SIGKILL resumes: only missing samples are written, none twice, and the final
metrics equal an uninterrupted run's. Uses a real subprocess and a real kill."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import omnimed_item, task_yaml, write_omnimed

N_ITEMS = 24

DRIVER = r'''
import hashlib, os, sys, time
from healthbench.core.catalog import MODELS
from healthbench.models.base import Model
from healthbench.core.types import Response

@MODELS.register("slow_hash")
class SlowHash(Model):
    """Answers a letter chosen by the sample id's hash, slowly, so a kill lands mid-run."""
    capabilities = frozenset({"text"})
    def __init__(self, delay: float = 0.05) -> None:
        self.delay = delay
    def generate(self, requests):
        time.sleep(self.delay)
        log = os.environ.get("HB_REQUEST_LOG")
        if log:  # one line per request the model saw, appended whole, so a kill cannot tear it
            with open(log, "a") as fh:
                fh.write("".join(r.sample_id + "\n" for r in requests))
        out = []
        for r in requests:
            h = int(hashlib.sha256(r.sample_id.encode()).hexdigest(), 16)
            out.append(Response(text="ABC"[h % 3] if h % 5 else "no idea"))
        return out

from healthbench.cli import main
sys.exit(main(sys.argv[1:]))
'''


@pytest.fixture()
def setup(tmp_path: Path) -> dict[str, Path]:
    items = [omnimed_item(f"Images/x/{i}.png", answer=["CT", "MRI", "X-ray"][i % 3],
                          modality=["CT(Computed Tomography)", "X-Ray"][i % 2],
                          options=("CT", "MRI", "X-ray")) for i in range(N_ITEMS)]
    write_omnimed(tmp_path / "data", items)
    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks" / "toy.yaml").write_text(task_yaml())
    (tmp_path / "driver.py").write_text(DRIVER)
    return {"root": tmp_path}


def command(root: Path, run_id: str) -> list[str]:
    return [sys.executable, str(root / "driver.py"), "run", "--model", "slow_hash",
            "--tasks", "toy", "--include-path", str(root / "tasks"), "--data-root",
            str(root / "data"), "--output-path", str(root / "results"), "--run-id", run_id,
            "--batch-size", "2", "--no-progress"]


def env(request_log: Path | None = None) -> dict[str, str]:
    repo = str(Path(__file__).resolve().parent.parent)
    out = {**os.environ, "PYTHONPATH": repo + os.pathsep + os.environ.get("PYTHONPATH", "")}
    out.pop("HB_REQUEST_LOG", None)
    if request_log is not None:
        out["HB_REQUEST_LOG"] = str(request_log)
    return out


def complete_lines(path: Path) -> bytes:
    """The file's bytes up to and including its last newline: the lines written whole."""
    data = path.read_bytes() if path.exists() else b""
    return data[: data.rfind(b"\n") + 1]


def sample_lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def metrics_of(results: Path) -> dict:
    data = json.loads(results.read_text())["tasks"]["toy"]
    return {"n": data["n"], "n_errors": data["n_errors"], "metrics": data["metrics"],
            "groups": data["groups"], "macro": data["macro"]}


def test_sigkill_at_several_points_then_resume_matches_uninterrupted(setup) -> None:
    root = setup["root"]
    done = subprocess.run(command(root, "clean"), env=env(), capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    reference = metrics_of(root / "results" / "clean" / "results.json")

    for kill_after in (1, 5, 11, 17):
        run_id = f"killed{kill_after}"
        samples = root / "results" / run_id / "toy" / "samples.jsonl"
        proc = subprocess.Popen(command(root, run_id), env=env(), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while len(sample_lines(samples)) < kill_after and time.monotonic() < deadline:
            if proc.poll() is not None:
                break
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        before = complete_lines(samples)
        written_before = before.count(b"\n")
        assert written_before < N_ITEMS, "the kill came too late to test anything"
        ids_before = [json.loads(line)["id"] for line in before.decode().splitlines()]

        log = root / f"requests-{run_id}.log"
        again = subprocess.run(command(root, run_id), env=env(log), capture_output=True,
                               text=True, timeout=120)
        assert again.returncode == 0, again.stderr
        after = samples.read_bytes()
        assert after.startswith(before), "lines written before the kill were changed"
        ids = [json.loads(line)["id"] for line in sample_lines(samples)]
        assert len(ids) == len(set(ids)) == N_ITEMS, "a sample was lost or written twice"
        seen = log.read_text().splitlines() if log.exists() else []
        assert len(seen) == N_ITEMS - written_before, "the rerun redid finished samples"
        assert len(set(seen)) == len(seen)
        assert set(seen) == set(ids) - set(ids_before), "the rerun asked for the wrong samples"
        assert metrics_of(root / "results" / run_id / "results.json") == reference


def test_torn_last_line_is_detected_and_redone(setup) -> None:
    root = setup["root"]
    assert subprocess.run(command(root, "torn"), env=env(), capture_output=True,
                          timeout=120).returncode == 0
    samples = root / "results" / "torn" / "toy" / "samples.jsonl"
    lines = sample_lines(samples)
    cut = "\n".join(lines[:-3]) + "\n" + lines[-3][: len(lines[-3]) // 2]  # a torn write
    samples.write_text(cut)
    assert subprocess.run(command(root, "torn"), env=env(), capture_output=True,
                          timeout=120).returncode == 0
    ids = [json.loads(line)["id"] for line in sample_lines(samples)]
    assert len(ids) == len(set(ids)) == N_ITEMS

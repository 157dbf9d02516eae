"""The same command under torchrun with 2 CPU processes (gloo) gives the same results.json
metrics as one process, and every sample exactly once."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

from tests.helpers import omnimed_item, task_yaml, write_omnimed

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_torchrun_two_processes_match_one_process(tmp_path: Path) -> None:
    items = [omnimed_item(f"Images/x/{i}.png", answer=["CT", "MRI"][i % 2],
                          modality=["CT(Computed Tomography)", "X-Ray"][i % 3 % 2])
             for i in range(30)]
    write_omnimed(tmp_path / "data", items)
    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks" / "toy.yaml").write_text(task_yaml())
    args = ["run", "--model", "random", "--tasks", "toy", "--include-path",
            str(tmp_path / "tasks"), "--data-root", str(tmp_path / "data"), "--output-path",
            str(tmp_path / "out"), "--batch-size", "4", "--no-progress"]
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    single = subprocess.run([sys.executable, "-m", "healthbench.cli", *args, "--run-id", "one"],
                            env=env, capture_output=True, text=True, timeout=120)
    assert single.returncode == 0, single.stderr
    sharded = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
         "--master_addr", "127.0.0.1", "--master_port", str(free_port()),
         "-m", "healthbench.cli", *args, "--run-id", "two"],
        env=env, capture_output=True, text=True, timeout=300)
    assert sharded.returncode == 0, sharded.stderr[-3000:]

    def load(run: str) -> dict:
        return json.loads((tmp_path / "out" / run / "results.json").read_text())["tasks"]["toy"]

    one, two = load("one"), load("two")
    for key in ("n", "n_errors", "metrics", "groups", "macro", "data_checksum"):
        assert one[key] == two[key], key
    lines = (tmp_path / "out" / "two" / "toy" / "samples.jsonl").read_text().splitlines()
    ids = [json.loads(line)["id"] for line in lines]
    assert len(ids) == len(set(ids)) == 30
    assert not list((tmp_path / "out" / "two" / "toy").glob("samples.rank*.jsonl"))

"""benchmarks/throughput.py --tiny runs on the CPU and writes the record (no speed assertions).

The lm-eval phase is left out here to keep the test short; `--tiny` with it runs in ~35 s
(docs/benchmarks.md). Nothing is timed or compared: the numbers are CPU noise at toy size.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
REPO = Path(__file__).resolve().parent.parent
PHASE_FIELDS = {"n", "batch_size", "seconds", "samples_per_s", "tokens_per_s",
                "prompt_tokens_per_s", "generated_tokens_per_s", "tflops_per_s",
                "share_of_bf16_peak", "peak_memory_gib"}


def test_tiny_run_writes_every_field(tmp_path):
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "throughput.py"), "--tiny", "--skip-lmeval",
         "--n", "6", "--out", str(out), "--workdir", str(tmp_path / "work")],
        capture_output=True, text=True, timeout=300, cwd=tmp_path, check=False,
        env={**__import__("os").environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "2",
             "HF_HOME": str(tmp_path / "hf")})
    assert proc.returncode == 0, proc.stderr[-3000:]
    record = json.loads(out.read_text())
    assert record["schema"] == "healthbench-throughput/1"
    assert {"config", "env", "model", "workload", "results", "ratios", "targets"} <= set(record)
    assert set(record["results"]) == {"one_at_a_time", "raw", "healthbench"}
    for phase in record["results"].values():
        assert PHASE_FIELDS <= set(phase)
        assert phase["samples_per_s"] > 0
    healthbench = record["results"]["healthbench"]
    assert healthbench["errors"] == 0 and healthbench["n"] == 6
    assert healthbench["agreement_with_raw"] == 1.0      # same letters as the raw loop
    assert record["ratios"]["healthbench_over_raw"] is not None
    assert record["ratios"]["healthbench_over_lmeval"] is None
    samples = (Path(healthbench["samples_jsonl"])).read_text().splitlines()
    assert len(samples) == 6


def test_mid_shape_is_the_m3_layout_at_cpu_size() -> None:
    """``--shape mid`` (random_shape=mid): hidden 256, 4 layers, a small CLIP still giving 576
    image tokens; refused without random weights and for an unknown shape."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    import throughput

    from healthbench.models.base import ModelArgsError, create_model

    args = throughput.parse_args(["--shape", "mid"])
    assert (args.device, args.n, args.batch_size) == ("cpu", 32, "8")
    assert throughput.shape_name(args) == "mid"
    plugin = create_model("healthgpt", {"variant": "m3", "random_weights": True,
                                        "random_shape": "mid", "device": "cpu"})
    config, vision = plugin.net.llm.config, plugin.net.vision.config
    assert (config.hidden_size, config.num_hidden_layers) == (256, 4)
    assert (vision.image_size // vision.patch_size) ** 2 == 576
    for bad in ({"variant": "m3", "random_shape": "mid"},
                {"variant": "m3", "random_weights": True, "random_shape": "huge"}):
        with pytest.raises(ModelArgsError, match="random_shape"):
            create_model("healthgpt", {**bad, "device": "cpu"})


def test_readahead_benchmark_runs_at_a_tiny_size(tmp_path: Path) -> None:
    """benchmarks/readahead.py end to end on 120 header reads and 8 decodes: both ways of each
    measurement give two cold and two warm timings, and the JSON is written."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    import readahead

    out = tmp_path / "readahead.json"
    readahead.main(["--workdir", str(tmp_path), "--n", "120", "--decode-n", "8",
                    "--out", str(out)])
    record = json.loads(out.read_text())
    assert record["headers"]["n"] == 120 and record["decoding"]["n"] == 8
    for part, ways in (("headers", ("hint off", "hint on")), ("decoding", ("hint off", "hint on"))):
        for way in ways:
            assert [len(record[part][way][c]) for c in ("cold", "warm")] == [2, 2], (part, way)

"""``healthbench compare``: the regression gate on replay runs built here, in plain sight.

The fixture writes a small OmniMedVQA-format dataset (600 questions over three modalities, tiny
real PNG files) and a task YAML for it, then makes runs with the ``replay`` model from response
files: a baseline at ~70% accuracy, a run with a 10-point drop injected on one modality, a run
with noise-level differences, and a run of the same task under another version.
"""
from __future__ import annotations

import json
import random
import shutil
from pathlib import Path
from xml.etree import ElementTree as ET

import numpy as np
import pytest
from PIL import Image

from healthbench.cli import main as cli_main
from healthbench.report.compare import compare_runs, render_junit, render_markdown
from healthbench.report.runs import load_run

MODALITIES = {"CT": "CT (Computed Tomography)", "MR": "MR (Magnetic Resonance Imaging)",
              "US": "Ultrasound"}
PER_MODALITY = 200
TASK = "gate_vqa"
TASK_YAML = """\
task: gate_vqa
version: "{version}"
description: synthetic OmniMedVQA-format set for the compare tests
dataset:
  format: omnimedvqa
  path: GateVQA
  options: {{access: [Open-access]}}
output: text
scorer: generate
prompt:
  template: "{{question}}\\n{{options}}\\nAnswer with the option's letter."
extract: {{name: choice_letter}}
metrics: [{{name: accuracy}}, {{name: parse_failure}}]
group_by: [modality, question_type]
"""


def _write_dataset(root: Path) -> list[tuple[str, str, str]]:
    """The dataset under root/GateVQA; returns (sample id, modality, correct letter)."""
    images = root / "GateVQA" / "Images" / "gate"
    images.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in MODALITIES:
        Image.fromarray(rng.integers(0, 255, (24, 24), dtype=np.uint8)).save(images / f"{name}.png")
    items, truth = [], []
    for modality, raw in MODALITIES.items():
        for i in range(PER_MODALITY):
            letter = "ABCD"[i % 4]
            options = {f"option_{x}": f"{modality} answer {x}" for x in "ABCD"}
            items.append({"question": f"Question {i} about this {modality} image?",
                          "gt_answer": options[f"option_{letter}"],
                          "image_path": f"Images/gate/{modality}.png", **options,
                          "modality_type": raw,
                          "question_type": "Anatomy Identification" if i % 2 else
                          "Modality Recognition"})
    qa = root / "GateVQA" / "QA_information" / "Open-access"
    qa.mkdir(parents=True)
    (qa / "gate.json").write_text(json.dumps(items), encoding="utf-8")
    for position, item in enumerate(items):
        modality = next(m for m, raw in MODALITIES.items() if raw == item["modality_type"])
        letter = "ABCD"[position % PER_MODALITY % 4]
        truth.append((f"Open-access/gate/{position}", modality, letter))
    return truth


def _wrong(letter: str) -> str:
    return "ABCD"[("ABCD".index(letter) + 1) % 4]


def _replay_run(out: Path, run_id: str, data_root: Path, tasks_dir: Path,
                answers: dict[str, str]) -> Path:
    responses = out.parent / f"{run_id}.responses.jsonl"
    responses.write_text("".join(json.dumps({"task": TASK, "id": i, "response": a}) + "\n"
                                 for i, a in answers.items()), encoding="utf-8")
    code = cli_main(["run", "--model", "replay", "--model-args", f"path={responses}",
                     "--tasks", TASK, "--include-path", str(tasks_dir), "--data-root",
                     str(data_root), "--output-path", str(out), "--run-id", run_id,
                     "--no-progress"])
    assert code == 0
    return out / run_id


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("compare")
    data_root, out = base / "data", base / "results"
    truth = _write_dataset(data_root)
    for version in ("1.0", "1.1"):
        folder = base / f"tasks_v{version}"
        folder.mkdir()
        (folder / "gate_vqa.yaml").write_text(TASK_YAML.format(version=version), encoding="utf-8")

    rng = random.Random(7)
    baseline = {i: (letter if rng.random() < 0.7 else _wrong(letter)) for i, _, letter in truth}
    correct = {i for i, _, letter in truth if baseline[i] == letter}

    drop = dict(baseline)  # 20 of CT's right answers turned wrong: 10 points of 200
    ct_right = [i for i, m, _ in truth if m == "CT" and i in correct]
    for i in random.Random(1).sample(ct_right, 20):
        drop[i] = _wrong(drop[i])

    noise = dict(baseline)  # 6 answers lost and 6 gained, spread over all modalities
    rng = random.Random(2)
    right_letter = {i: letter for i, _, letter in truth}
    for i in rng.sample(sorted(correct), 6):
        noise[i] = _wrong(right_letter[i])
    for i in rng.sample(sorted(set(baseline) - correct), 6):
        noise[i] = right_letter[i]

    v10, v11 = base / "tasks_v1.0", base / "tasks_v1.1"
    return {
        "baseline": _replay_run(out, "baseline", data_root, v10, baseline),
        "drop": _replay_run(out, "drop", data_root, v10, drop),
        "noise": _replay_run(out, "noise", data_root, v10, noise),
        "v11": _replay_run(out, "v11", data_root, v11, baseline),
        "out": out,
    }


def test_injected_ten_point_drop_on_one_modality_fails_the_gate(runs, tmp_path, capsys) -> None:
    md, junit = tmp_path / "summary.md", tmp_path / "junit.xml"
    code = cli_main(["compare", str(runs["baseline"]), str(runs["drop"]), "--margin", "1.0",
                     "--markdown", str(md), "--junit", str(junit)])
    assert code == 1
    report = compare_runs(load_run(runs["baseline"]), load_run(runs["drop"]))
    flagged = {(c.slice_label, c.metric) for c in report.regressions}
    assert ("modality=CT", "accuracy") in flagged
    assert not any(label in {"modality=MR", "modality=US"} for label, _ in flagged)
    ct = next(c for c in report.comparisons if c.slice_label == "modality=CT"
              and c.metric == "accuracy")
    assert ct.change == pytest.approx(-10.0)
    assert ct.result.counts["baseline_only"] == 20 and ct.result.counts["new_only"] == 0
    assert ct.result.ci[1] < 0 and ct.p_adjusted < 0.05


def test_summary_lists_worst_drop_first_with_interval_and_counts(runs, tmp_path) -> None:
    md = tmp_path / "summary.md"
    cli_main(["compare", str(runs["baseline"]), str(runs["drop"]), "--markdown", str(md)])
    text = md.read_text(encoding="utf-8")
    assert "regression(s)** (exit 1)" in text
    first_row = next(line for line in text.splitlines() if line.startswith("| 🔴"))
    assert "modality=CT" in first_row and "accuracy" in first_row
    assert "-10.00 pts (" in first_row and "| 20 / 0 |" in first_row


def test_junit_marks_the_regression_as_a_failure(runs, tmp_path) -> None:
    junit = tmp_path / "junit.xml"
    cli_main(["compare", str(runs["baseline"]), str(runs["drop"]), "--junit", str(junit)])
    root = ET.parse(junit).getroot()
    failed = [case.get("name") for case in root.iter("testcase")
              if case.find("failure") is not None]
    assert "modality=CT accuracy" in failed
    assert "modality=MR accuracy" not in failed
    assert int(root.find("testsuite").get("tests")) == len(list(root.iter("testcase")))


def test_noise_level_differences_pass_the_gate(runs, capsys) -> None:
    code = cli_main(["compare", str(runs["baseline"]), str(runs["noise"])])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "✅ no regression" in out
    report = compare_runs(load_run(runs["baseline"]), load_run(runs["noise"]))
    overall = next(c for c in report.comparisons if c.slice_label == "overall"
                   and c.metric == "accuracy")
    assert overall.result.counts["baseline_only"] == 6 and overall.result.counts["new_only"] == 6


def test_identical_runs_pass(runs) -> None:
    assert cli_main(["compare", str(runs["baseline"]), str(runs["baseline"])]) == 0


def test_mismatched_task_versions_are_not_comparable(runs, tmp_path, capsys) -> None:
    md, junit = tmp_path / "summary.md", tmp_path / "junit.xml"
    code = cli_main(["compare", str(runs["baseline"]), str(runs["v11"]), "--markdown", str(md),
                     "--junit", str(junit)])
    assert code == 2
    assert "task gate_vqa: task versions differ (baseline v1.0, new v1.1)" in md.read_text()
    assert ET.parse(junit).getroot().find(".//error") is not None


def _copy_run(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def test_different_data_checksums_are_not_comparable(runs, tmp_path) -> None:
    other = _copy_run(runs["noise"], tmp_path / "other")
    results = json.loads((other / "results.json").read_text())
    results["tasks"][TASK]["data_checksum"] = "sha256:0000"
    (other / "results.json").write_text(json.dumps(results))
    report = compare_runs(load_run(runs["baseline"]), load_run(other))
    assert report.exit_code == 2
    assert any("data checksums differ" in p for p in report.problems)


def test_different_sample_sets_are_not_comparable_and_say_which(runs, tmp_path) -> None:
    other = _copy_run(runs["noise"], tmp_path / "other")
    samples = other / TASK / "samples.jsonl"
    lines = samples.read_text().splitlines(keepends=True)
    samples.write_text("".join(lines[:-2]))
    report = compare_runs(load_run(runs["baseline"]), load_run(other))
    assert report.exit_code == 2
    problem = next(p for p in report.problems if "sample sets differ" in p)
    assert "2 only in the baseline" in problem and "0 only in the new run" in problem


def test_a_task_missing_from_the_new_run_is_not_comparable(runs, tmp_path) -> None:
    other = _copy_run(runs["noise"], tmp_path / "other")
    results = json.loads((other / "results.json").read_text())
    results["tasks"] = {}
    (other / "results.json").write_text(json.dumps(results))
    assert cli_main(["compare", str(runs["baseline"]), str(other)]) == 2


def test_not_a_run_directory_is_exit_2(tmp_path) -> None:
    assert cli_main(["compare", str(tmp_path), str(tmp_path)]) == 2


def _write_image_run(path: Path, psnr: list[float]) -> Path:
    """A generation run written directly: per-image PSNR (dB) and SSIM scores."""
    (path / "gen").mkdir(parents=True)
    rows = [{"id": f"img{i}", "task": "gen", "target": None, "response": None, "parsed": None,
             "scores": {"psnr": p, "ssim": 0.8}, "meta": {"modality": "MR" if i % 2 else "CT"},
             "error": None} for i, p in enumerate(psnr)]
    (path / "gen" / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (path / "results.json").write_text(json.dumps({
        "schema_version": 1, "run_id": path.name, "model": {"name": "x", "args": {}},
        "harness": {"version": "0", "git_sha": "unknown"},
        "tasks": {"gen": {"version": "1", "data_checksum": "c", "n": len(rows), "n_errors": 0,
                          "group_by": ["modality"],
                          "metrics": {"psnr": {"value": float(np.mean(psnr)), "ci": [0, 0]},
                                      "ssim": {"value": 0.8, "ci": [0.8, 0.8]}}}}}))
    return path


def test_per_image_psnr_is_compared_with_a_paired_t_test_in_db(tmp_path) -> None:
    rng = np.random.default_rng(0)
    base = rng.normal(28.0, 2.0, 120)
    old = _write_image_run(tmp_path / "old", base.tolist())
    worse = _write_image_run(tmp_path / "worse", (base - 2.0 + rng.normal(0, 0.3, 120)).tolist())
    same = _write_image_run(tmp_path / "same", (base + rng.normal(0, 0.3, 120)).tolist())
    report = compare_runs(load_run(old), load_run(worse), margin=1.0)
    psnr = next(c for c in report.comparisons if c.slice_label == "overall"
                and c.metric == "psnr")
    assert psnr.result.test == "paired_t" and psnr.scale == 1.0
    assert psnr.regression and report.exit_code == 1
    assert "| psnr |" in render_markdown(report)
    assert compare_runs(load_run(old), load_run(same), margin=1.0).exit_code == 0
    assert "<failure" in render_junit(report)


def _write_report_run(path: Path, predictions: list[str]) -> Path:
    """A report-generation run written directly: free text, scored only by a corpus metric."""
    (path / "rrg").mkdir(parents=True)
    rows = [{"id": f"r{i}", "task": "rrg", "target": "effusion", "response": p, "parsed": p,
             "scores": {}, "meta": {"view": "PA" if i % 2 else "AP"}, "error": None}
            for i, p in enumerate(predictions)]
    (path / "rrg" / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (path / "results.json").write_text(json.dumps({
        "schema_version": 1, "run_id": path.name, "model": {"name": "x", "args": {}},
        "harness": {"version": "0", "git_sha": "unknown"},
        "tasks": {"rrg": {"version": "1", "data_checksum": "c", "n": len(rows), "n_errors": 0,
                          "group_by": ["view"],
                          "metrics": {"hit_rate": {"value": 0.0, "ci": [0, 0]}}}}}))
    return path


def test_corpus_metrics_are_recomputed_by_their_metric_object(tmp_path, monkeypatch) -> None:
    from healthbench.scoring.base import Metric
    from healthbench.report import compare as compare_module

    calls = []

    def hit_rate(records) -> float:  # a corpus metric: no per-sample score is stored
        calls.append(len(records))
        return sum(r.parsed == r.target for r in records) / max(1, len(records))

    monkeypatch.setattr(compare_module, "rebuild_metric",
                        lambda block, name: Metric("hit_rate", corpus=hit_rate))
    rng = random.Random(0)
    good = ["effusion" if rng.random() < 0.8 else "normal" for _ in range(300)]
    bad = [p if i % 4 else "normal" for i, p in enumerate(good)]
    old = _write_report_run(tmp_path / "old", good)
    new = _write_report_run(tmp_path / "new", bad)
    report = compare_runs(load_run(old), load_run(new), resamples=100)
    overall = next(c for c in report.comparisons if c.slice_label == "overall")
    assert overall.result.test == "paired_bootstrap"
    assert overall.change < -10 and overall.regression and report.exit_code == 1
    assert len(calls) > 2 * 100  # recomputed on both sides of every resample
    assert compare_runs(load_run(old), load_run(old), resamples=50).exit_code == 0


def test_metrics_option_restricts_the_gate(runs) -> None:
    report = compare_runs(load_run(runs["baseline"]), load_run(runs["drop"]),
                          metrics=["parse_failure"])
    assert {c.metric for c in report.comparisons} == {"parse_failure"}
    assert report.exit_code == 0


def test_slices_follow_the_aggregation_rule_for_list_valued_meta(tmp_path) -> None:
    from healthbench.scoring.aggregate import summarize_task
    from healthbench.core.catalog import METRICS
    from healthbench.core.types import SampleResult

    tags = [["caries"], ["caries", "implant"], [], None, "implant"]
    records = [SampleResult(id=str(i), task="t", target="A", response="A", parsed="A",
                            scores={"accuracy": 1.0}, meta={"dimension": tag})
               for i, tag in enumerate(tags)]
    block = summarize_task([METRICS.get("accuracy")()], records, ["dimension"], seed=0)
    run = tmp_path / "run"
    (run / "t").mkdir(parents=True)
    (run / "t" / "samples.jsonl").write_text(
        "".join(json.dumps(r.to_json()) + "\n" for r in records))
    (run / "results.json").write_text(json.dumps({"run_id": "run", "model": {"name": "m"},
                                                  "tasks": {"t": {"version": "1",
                                                                  "data_checksum": "c",
                                                                  "group_by": ["dimension"],
                                                                  **block}}}))
    report = compare_runs(load_run(run), load_run(run))
    slices = {c.group_value: c.result.n for c in report.comparisons
              if c.group_key == "dimension"}
    assert slices == {value: group["n"] for value, group in block["groups"]["dimension"].items()}


def test_a_run_that_errors_on_samples_it_used_to_answer_fails_the_gate(tmp_path) -> None:
    """Errors are not a smaller denominator: losing answers to errors is a regression."""
    import json as _json

    from healthbench.report.compare import compare_runs
    from healthbench.report.runs import load_run

    def write(run_id: str, error_ids: set[int]) -> None:
        folder = tmp_path / run_id / "toy"
        folder.mkdir(parents=True)
        lines = []
        for i in range(60):
            errored = i in error_ids
            lines.append(_json.dumps({
                "id": f"s{i}", "task": "toy", "target": "A", "response": None if errored else "A",
                "parsed": None if errored else "A",
                "scores": {} if errored else {"accuracy": float(i % 2)},
                "meta": {}, "error": "model error: timeout" if errored else None}))
        (folder / "samples.jsonl").write_text("\n".join(lines) + "\n")
        block = {"version": "1", "data_checksum": "sha256:x", "n": 60 - len(error_ids),
                 "n_errors": len(error_ids), "n_total": 60, "group_by": [],
                 "metrics": {"accuracy": {"value": 0.5, "ci": [0.4, 0.6]}}, "groups": {}}
        (tmp_path / run_id / "results.json").write_text(_json.dumps(
            {"schema_version": 1, "run_id": run_id, "model": {"name": run_id, "args": {}},
             "harness": {"version": "0", "git_sha": "x"}, "tasks": {"toy": block}}))

    write("base", set())
    write("new", set(range(0, 60, 2)) | {1, 3, 5, 7, 9})  # 35 of 60 now fail in the model
    report = compare_runs(load_run(tmp_path / "base"), load_run(tmp_path / "new"))
    flagged = [c for c in report.comparisons if c.regression]
    assert [c.metric for c in flagged] == ["error_rate"]


def _write_mse_run(path: Path, mse: list[float]) -> Path:
    """A generation run scored only by per-image MSE (lower is better, its own unit)."""
    (path / "gen").mkdir(parents=True)
    rows = [{"id": f"img{i}", "task": "gen", "target": None, "response": None, "parsed": None,
             "scores": {"mse": m}, "meta": {}, "error": None} for i, m in enumerate(mse)]
    (path / "gen" / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (path / "results.json").write_text(json.dumps({
        "schema_version": 1, "run_id": path.name, "model": {"name": "x", "args": {}},
        "harness": {"version": "0", "git_sha": "unknown"},
        "tasks": {"gen": {"version": "1", "data_checksum": "c", "n": len(rows), "n_errors": 0,
                          "group_by": [],
                          "metrics": {"mse": {"value": float(np.mean(mse)), "ci": [0, 0]}},
                          "metric_info": {"mse": {"percent": False,
                                                  "higher_is_better": False}}}}}))
    return path


def test_a_rise_of_a_lower_is_better_metric_is_worded_as_worse_not_as_a_drop(tmp_path) -> None:
    rng = np.random.default_rng(0)
    base = rng.normal(50.0, 5.0, 120)
    old = _write_mse_run(tmp_path / "old", base.tolist())
    worse = _write_mse_run(tmp_path / "worse", (base + 10.0 + rng.normal(0, 1, 120)).tolist())
    report = compare_runs(load_run(old), load_run(worse), margin=1.0)
    mse = next(c for c in report.comparisons if c.metric == "mse")
    assert mse.regression and not mse.higher_is_better and mse.change < 0
    junit = ET.fromstring(render_junit(report).split("\n", 1)[1])
    message = junit.find(".//failure").get("message")
    assert message.startswith("worse by more than 1: ")  # MSE's own unit, not "points"
    assert "drop" not in message
    assert "a change for the worse of more than 1 (points for % metrics" in render_markdown(report)


def test_bad_input_still_writes_the_markdown_and_junit_reports(runs, tmp_path) -> None:
    md, xml = tmp_path / "ci" / "gate.md", tmp_path / "ci" / "gate.xml"
    assert cli_main(["compare", str(runs["baseline"]), str(tmp_path / "nope"), "--markdown",
                     str(md), "--junit", str(xml)]) == 2
    assert "not a run directory" in md.read_text() and "exit 2" in md.read_text()
    error = ET.parse(xml).getroot().find(".//error")
    assert error is not None and "not a run directory" in error.get("message")
    md.unlink(), xml.unlink()
    assert cli_main(["compare", str(runs["baseline"]), str(runs["noise"]), "--alpha", "2",
                     "--markdown", str(md), "--junit", str(xml)]) == 2
    assert "--alpha" in md.read_text() and "--alpha" in xml.read_text()


def test_a_checksum_mismatch_names_the_files_that_changed(runs, tmp_path) -> None:
    base = json.loads((runs["baseline"] / "results.json").read_text())["tasks"][TASK]
    assert base["data_files"] == {"QA_information/Open-access/gate.json":
                                  base["data_files"]["QA_information/Open-access/gate.json"]}
    assert base["data_files"]["QA_information/Open-access/gate.json"].startswith("sha256:")
    other = _copy_run(runs["noise"], tmp_path / "other")
    results = json.loads((other / "results.json").read_text())
    block = results["tasks"][TASK]
    block["data_checksum"] = "sha256:0000"
    block["data_files"] = {"QA_information/Open-access/gate.json": "sha256:1111",
                           "QA_information/Open-access/extra.json": "sha256:2222"}
    (other / "results.json").write_text(json.dumps(results))
    report = compare_runs(load_run(runs["baseline"]), load_run(other))
    problem = next(p for p in report.problems if "data checksums differ" in p)
    assert "changed: QA_information/Open-access/gate.json" in problem
    assert "only in the new run: QA_information/Open-access/extra.json" in problem


def test_a_group_with_one_value_is_not_tested_twice_in_the_holm_family(tmp_path) -> None:
    psnr = [30.0 + 0.1 * i for i in range(20)]
    base, new = _write_image_run(tmp_path / "a", psnr), _write_image_run(tmp_path / "b", psnr)
    for run in (base, new):  # every sample the same modality: that group equals `overall`
        lines = (run / "gen" / "samples.jsonl").read_text().splitlines()
        rows = [{**json.loads(line), "meta": {"modality": "MR"}} for line in lines]
        (run / "gen" / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    report = compare_runs(load_run(base), load_run(new))
    assert {c.slice_label for c in report.comparisons} == {"overall"}
    assert len(report.comparisons) == 2  # psnr and ssim, once each

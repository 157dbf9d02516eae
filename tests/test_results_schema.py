"""results.json has one owner (healthbench/results/schema.py): a real run reads back and writes
out byte for byte, scale and direction come only from ``metric_info`` (never from a metric's
name), and every report formats values with the one formatter."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from healthbench.report.compare import compare_runs, render_markdown as compare_markdown
from healthbench.report.html import render_table as html_table
from healthbench.report.leaderboard import build_leaderboard, render_markdown
from healthbench.report.runs import load_run, load_runs
from healthbench.results.format import format_value
from healthbench.results.schema import (MetricInfo, Results, ResultsFormatError, TaskResult,
                                        read_results)
from healthbench.results.write import write_tables

REPO = Path(__file__).resolve().parent.parent
COMMITTED = sorted((REPO / "results").glob("*/results.json"))


def _with_protocol(data: dict) -> dict:
    """The committed runs predate ``tasks.<t>.protocol``: the writer adds it (null) after
    ``version``, everything else is kept in place."""
    out = dict(data)
    out["tasks"] = {}
    for name, block in data["tasks"].items():
        fresh = {}
        for key, value in block.items():
            fresh[key] = value
            if key == "version" and "protocol" not in block:
                fresh["protocol"] = None
        out["tasks"][name] = fresh
    return out


@pytest.mark.parametrize("path", COMMITTED, ids=[p.parent.name for p in COMMITTED])
def test_a_real_run_reads_back_and_writes_out_byte_for_byte(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    results = read_results(path)
    expected = json.dumps(_with_protocol(json.loads(text)), indent=2, allow_nan=False) + "\n"
    assert results.dumps() == expected
    again = Results.from_json(json.loads(results.dumps()))
    assert again.dumps() == expected  # and the written file reads back to the same objects
    block = next(iter(results.tasks.values()))
    assert isinstance(block, TaskResult) and block.metric_info and block.version


def test_unknown_keys_survive_a_read_and_a_rewrite() -> None:
    data = {"schema_version": 1, "run_id": "r", "model": {"name": "m", "args": {}},
            "seeds": {"model": 3, "bootstrap": 0},
            "tasks": {"t": {"version": "1", "n": 1, "n_errors": 0, "images": ["x"],
                            "metrics": {"accuracy": {"value": 1.0, "ci": [1.0, 1.0], "n": 1,
                                                     "note": "kept"}}}}}
    out = Results.from_json(data).to_json()
    assert out["seeds"] == {"model": 3, "bootstrap": 0}
    assert out["tasks"]["t"]["images"] == ["x"]
    assert out["tasks"]["t"]["metrics"]["accuracy"]["note"] == "kept"


def test_a_file_that_is_not_a_results_json_is_named(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    path.write_text(json.dumps({"tasks": {"t": {"metrics": {"accuracy": {"value": "high"}}}}}))
    with pytest.raises(ResultsFormatError, match=r"results.json: tasks.t.metrics.accuracy"):
        read_results(path)
    path.write_text("[]")
    with pytest.raises(ResultsFormatError, match="expected a mapping"):
        read_results(path)


# --- scale and direction only from metric_info ------------------------------------------------

def _write_run(root: Path, run_id: str, metrics: dict, info: dict | None,
               engine: dict | None = None) -> Path:
    block = {"version": "1", "data_checksum": "c", "n": 4, "n_errors": 0, "n_total": 4,
             "metrics": metrics, "groups": {}, "macro": {}}
    if info is not None:
        block["metric_info"] = info
    if engine is not None:
        block["engine"] = engine
    folder = root / run_id
    folder.mkdir(parents=True)
    (folder / "results.json").write_text(json.dumps({
        "schema_version": 1, "run_id": run_id, "model": {"name": "m", "args": {}},
        "harness": {"version": "0", "git_sha": "x"}, "tasks": {"t": block}}))
    return folder


def test_declared_scale_wins_over_any_name(tmp_path: Path) -> None:
    """An ``accuracy`` declared raw is shown raw and a ``psnr`` declared percent as %: nothing
    reads the name (the old rule would have done the opposite for both)."""
    metrics = {"accuracy": {"value": 0.5, "ci": [0.25, 0.75]},
               "psnr": {"value": 0.5, "ci": [0.25, 0.75]}}
    info = {"accuracy": {"percent": False, "higher_is_better": False},
            "psnr": {"percent": True, "higher_is_better": True}}
    run = _write_run(tmp_path / "results", "a", metrics, info)
    write_tables(run, read_results(run))
    table = (run / "tables.md").read_text(encoding="utf-8")
    assert "| overall (micro) | all | 4 | 0 | 0.5 [0.25, 0.75] | 50.0 [25.0, 75.0] |" in table
    board = build_leaderboard(load_runs(tmp_path / "results"))
    assert board.tables[0].metric == "accuracy"
    assert "0.50 (0.25–0.75)" in render_markdown(board)
    assert "0.50 (0.25–0.75)" in html_table(board.tables[0])
    assert board.tables[0].info == MetricInfo(percent=False, higher_is_better=False)


def test_legacy_files_without_metric_info_take_the_one_documented_path(tmp_path: Path) -> None:
    metrics = {m: {"value": 0.5, "ci": [0.4, 0.6]} for m in ("accuracy", "psnr", "mse", "bleu")}
    old = read_results(_write_run(tmp_path, "old", metrics, None)).tasks["t"]
    assert old.info("accuracy") == MetricInfo(percent=True, higher_is_better=True)
    assert old.info("psnr") == MetricInfo(percent=False, higher_is_better=True)
    assert old.info("mse") == MetricInfo(percent=False, higher_is_better=False)
    # an lm-eval block of an older harness declared only the direction: lm-eval's own units
    lm = read_results(_write_run(tmp_path, "lm", metrics, {"bleu": {"higher_is_better": True}},
                                 engine={"name": "lm-eval", "task": "x"})).tasks["t"]
    assert lm.info("bleu") == MetricInfo(percent=False, higher_is_better=True)
    assert lm.info("accuracy").percent is False


def test_no_module_guesses_a_scale_from_a_name() -> None:
    """The legacy rule lives in the schema reader alone; the old name lists are gone."""
    package = REPO / "healthbench"
    for path in package.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        for name in ("percent_scale", "FRACTION_METRICS", "_is_fraction", "LOWER_IS_BETTER"):
            assert name not in text, f"{path.relative_to(REPO)} uses {name}"
        if path != package / "results" / "schema.py":
            assert "legacy_metric_info" not in text and "_LEGACY_" not in text, path


def test_one_formatter_two_styles() -> None:
    assert format_value(0.364, [0.182, 0.545], percent=True, style="table") == "36.4 [18.2, 54.5]"
    assert format_value(0.364, [0.182, 0.545], percent=True) == "36.4 (18.2–54.5)"
    assert format_value(28.3123, (27.9, 28.8), percent=False, style="table") == \
        "28.31 [27.9, 28.8]"
    assert format_value(28.3123, (27.9, 28.8), percent=False) == "28.31 (27.90–28.80)"
    assert format_value(0.5, [None, None], percent=True) == "50.0"
    assert format_value(None, percent=True) == "–"


# --- the lm-eval sacreBLEU scale (0-100) --------------------------------------------------------

def _bleu_run(root: Path, run_id: str, wrong: set[int], n: int = 2000) -> Path:
    """A run as the lm-eval adapter writes it, scored by a sacreBLEU-like corpus metric on the
    0-100 scale (the block's metric_info is the adapter's for lm-eval's ``bleu``)."""
    folder = _write_run(root, run_id, {"bleu": {"value": 35.2, "ci": [30.1, 40.3], "n": n}},
                        {"bleu": {"percent": False, "higher_is_better": True}},
                        engine={"name": "lm-eval", "task": "medtoy_bleu"})
    rows = [{"id": str(i), "task": "t", "target": "A", "response": "A",
             "parsed": "B" if i in wrong else "A", "scores": {}, "meta": {}, "error": None}
            for i in range(n)]
    (folder / "t").mkdir()
    (folder / "t" / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


def test_lmeval_bleu_prints_35_2_everywhere_and_compare_margin_is_one_bleu_point(
        tmp_path: Path, monkeypatch) -> None:
    from healthbench.report import compare as compare_module
    from healthbench.scoring.base import Metric

    root = tmp_path / "results"
    base = _bleu_run(root, "base", set(range(0, 2000, 3)))
    write_tables(base, read_results(base))
    assert "| 35.2 [30.1, 40.3] |" in (base / "tables.md").read_text(encoding="utf-8")
    board = render_markdown(build_leaderboard(load_runs(root)))
    assert "35.20 (30.10–40.30)" in board and "3520" not in board

    def corpus_bleu(records) -> float:  # 0-100, like sacreBLEU
        return 100.0 * sum(r.parsed == r.target for r in records) / max(1, len(records))

    monkeypatch.setattr(compare_module, "rebuild_metric",
                        lambda block, name: Metric("bleu", corpus=corpus_bleu)
                        if name == "bleu" else None)
    # ten more wrong answers in 2000: 0.5 BLEU points worse, significant but within 1 point
    worse = set(range(0, 2000, 3)) | set(range(1, 31, 3))
    new = _bleu_run(tmp_path / "other", "new", worse)
    report = compare_runs(load_run(base), load_run(new), margin=1.0, resamples=200)
    bleu = next(c for c in report.comparisons if c.metric == "bleu")
    assert bleu.scale == 1.0 and bleu.change == pytest.approx(-0.5)
    assert bleu.p_adjusted < 0.05 and not bleu.regression and report.exit_code == 0
    assert "| 66.65 | 66.15 | -0.50 (" in compare_markdown(report)  # BLEU points, no "pts"
    strict = compare_runs(load_run(base), load_run(new), margin=0.25, resamples=200)
    assert strict.exit_code == 1  # the same drop fails a gate of a quarter BLEU point

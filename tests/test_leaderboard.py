"""``healthbench leaderboard``: tables per suite, never ranking across task versions, paper
references kept apart, and the static site's files (the browser test drives the page itself)."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from healthbench.scoring.aggregate import summarize_task
from healthbench.core.catalog import METRICS
from healthbench.cli import main as cli_main
from healthbench.report.leaderboard import build_leaderboard, render_markdown
from healthbench.report.publish import write_leaderboard
from healthbench.report.references import ReferenceError, load_references
from healthbench.report.runs import load_runs, model_size
from healthbench.results.samples import SamplesWriter
from healthbench.core.types import SampleResult

MODALITIES = ("CT", "MR", "US")


def make_run(results: Path, run_id: str, model: str, hit_rate: dict[str, float], *,
             version: str = "1.0", checksum: str = "sha256:aaaa", info: dict | None = None,
             task: str = "vqa_demo", image: Path | None = None,
             response: str | None = None) -> Path:
    """A format-true run written directly: samples.jsonl plus results.json from the real
    aggregation code. ``hit_rate`` gives the fraction answered right per modality."""
    run_dir = results / run_id
    metrics = [METRICS.get("accuracy")(), METRICS.get("parse_failure")()]
    records = []
    for modality in MODALITIES:
        for i in range(20):
            right = i < round(hit_rate[modality] * 20)
            answer = "A" if right else "B"
            records.append(SampleResult(
                id=f"{modality}/{i}", task=task, target="A",
                response=response if response is not None else answer, parsed=answer,
                scores={"accuracy": float(right), "parse_failure": 0.0},
                meta={"modality": modality, "question_type": "Q1" if i % 2 else "Q2"},
                inputs={"images": [str(image)] if image else [], "question": f"Q about {i}?",
                        "options": {"A": "yes", "B": "no"}}))
    with SamplesWriter(run_dir / task / "samples.jsonl") as writer:
        writer.write_all(records)
    block = summarize_task(metrics, records, ["modality", "question_type"], seed=0)
    payload = {"schema_version": 1, "run_id": run_id,
               "model": {"name": model, "args": {}, "info": info or {}},
               "harness": {"version": "0.1.0", "git_sha": "0123456789abcdef"}, "seed": 0,
               "tasks": {task: {"version": version, "data_checksum": checksum,
                                "source": f"/x/tasks/demo_suite/{task}.yaml",
                                "group_by": ["modality", "question_type"], **block}}}
    (run_dir / "results.json").write_text(json.dumps(payload), encoding="utf-8")
    return run_dir


@pytest.fixture()
def results(tmp_path: Path) -> Path:
    root = tmp_path / "results"
    make_run(root, "weak", "tiny", {"CT": 0.3, "MR": 0.4, "US": 0.5},
             info={"kind": "tiny LLaVA", "parameters": 14_000_000})
    make_run(root, "strong", "healthgpt", {"CT": 0.9, "MR": 0.8, "US": 0.7},
             info={"variant": "HealthGPT-M3", "parameters": 3_800_000_000})
    return root


def _table_lines(text: str, heading: str) -> list[str]:
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(heading))
    rows = []
    for line in lines[start + 1:]:
        if line.startswith("#"):
            break
        rows.append(line)
    return rows


def test_models_are_rows_ranked_by_micro_with_macro_intervals_and_size(results: Path) -> None:
    text = render_markdown(build_leaderboard(load_runs(results)))
    assert "## demo_suite" in text
    rows = [r for r in _table_lines(text, "### vqa_demo (v1.0)") if r.startswith("| 1 ")
            or r.startswith("| 2 ")]
    assert rows[0].startswith("| 1 | healthgpt | HealthGPT-M3 | 3.8B | 80.0 (")
    assert rows[1].startswith("| 2 | tiny | tiny LLaVA | 14M | 40.0 (")
    header = next(r for r in _table_lines(text, "### vqa_demo") if r.startswith("| rank"))
    assert "macro (modality)" in header and "macro (question_type)" in header
    assert "| 60 | 0 | 0.1.0 (0123456) | `strong` |" in rows[0]


def test_per_group_columns_show_value_interval_and_n(results: Path) -> None:
    text = render_markdown(build_leaderboard(load_runs(results)))
    assert "| model | run | CT | MR | US |" in text
    strong = next(line for line in text.splitlines() if line.startswith("| healthgpt | `strong`"))
    assert "90.0 (" in strong and "n=20" in strong


def test_different_task_versions_are_never_ranked_together(results: Path) -> None:
    make_run(results, "newer", "other", {"CT": 1.0, "MR": 1.0, "US": 1.0}, version="2.0")
    board = build_leaderboard(load_runs(results))
    tables = {t.version: t for t in board.tables}
    assert set(tables) == {"1.0", "2.0"}
    assert [e.run.run_id for _, e in tables["2.0"].ranked()] == ["newer"]
    assert "newer" not in [e.run.run_id for e in tables["1.0"].entries]
    text = render_markdown(board)
    assert "### vqa_demo (v1.0)" in text and "### vqa_demo (v2.0)" in text


def test_same_version_on_other_data_gets_its_own_table(results: Path) -> None:
    make_run(results, "subset", "other", {"CT": 1.0, "MR": 1.0, "US": 1.0},
             checksum="sha256:bbbbbbbbbbbb")
    board = build_leaderboard(load_runs(results))
    assert len(board.tables) == 2
    assert all(t.variant_of_task for t in board.tables)
    assert "data bbbbbbbbbb" in render_markdown(board)


REFS = """\
references:
  - model: PaperModel-7B
    task: vqa_demo
    metric: accuracy
    value: 99.5
    groups: {modality: {CT: 98.0, MR: 97.0}}
    size: 7B
    source: "Doe et al. 2025, Table 3"
    url: https://example.org/paper
    protocol: "authors' prompt, full test split"
  - model: OtherPaper
    task: unrun_task
    metric: accuracy
    value: 51
    source: "Roe 2024"
    protocol: "likelihood scorer"
"""


def test_references_are_shown_apart_marked_and_never_ranked(results: Path,
                                                            tmp_path: Path) -> None:
    refs_file = tmp_path / "refs.yaml"
    refs_file.write_text(REFS, encoding="utf-8")
    refs = load_references(refs_file)
    assert refs[0].value == pytest.approx(0.995) and refs[0].groups["modality"]["CT"] == 0.98
    board = build_leaderboard(load_runs(results), refs)
    text = render_markdown(board)
    main_rows = [r for r in _table_lines(text, "### vqa_demo") if r.startswith("| 1 ")]
    assert "PaperModel" not in main_rows[0]  # 99.5 would rank first; it is not ranked
    assert "not reproduced here, not ranked" in text
    assert ("| PaperModel-7B † | – | 7B | accuracy | 99.5 | – | [Doe et al. 2025, Table 3]"
            "(https://example.org/paper) | authors' prompt, full test split |") in text
    assert "| PaperModel-7B † | paper | 98.0 | 97.0 | – |" in text
    assert "### unrun_task" in text and "| OtherPaper † |" in text


@pytest.mark.parametrize("entry, message", [
    ("- {model: M, task: t, metric: accuracy, value: 50, protocol: p}", "missing source"),
    ("- {model: M, task: t, metric: accuracy, value: high, source: s, protocol: p}",
     "value: expected a number"),
    ("- {model: M, task: t, metric: accuracy, value: 5, source: s, protocol: p, x: 1}",
     "unknown key"),
])
def test_reference_file_errors_name_the_entry(tmp_path: Path, entry: str, message: str) -> None:
    path = tmp_path / "refs.yaml"
    path.write_text("references:\n  " + entry + "\n", encoding="utf-8")
    with pytest.raises(ReferenceError, match=r"references\[0\].*" + message):
        load_references(path)


def test_cli_writes_markdown_and_site(results: Path, tmp_path: Path, capsys) -> None:
    image = tmp_path / "scan.png"
    Image.fromarray(np.arange(64 * 64, dtype=np.uint8).reshape(64, 64)).save(image)
    make_run(results, "with_images", "tiny", {"CT": 0.5, "MR": 0.5, "US": 0.5}, image=image,
             response="</script><script>alert(1)</script>")
    out, site = tmp_path / "leaderboard.md", tmp_path / "site"
    assert cli_main(["leaderboard", str(results), "--out", str(out), "--html", str(site)]) == 0
    assert "vqa_demo" in out.read_text(encoding="utf-8")
    page = (site / "index.html").read_text(encoding="utf-8")
    thumbs = list((site / "thumbs").glob("*.png"))
    assert len(thumbs) == 1 and max(Image.open(thumbs[0]).size) <= 192
    assert f"thumbs/{thumbs[0].name}" in page
    assert "<script>alert(1)" not in page  # model output is data, never markup
    links = page.replace("https://example", "").replace("https://arxiv.org/abs/", "")
    assert "http://" not in page and "https://" not in links  # only the papers' plain links
    assert "Content-Security-Policy" in page


def test_site_subsamples_large_tasks_repeatably(results: Path, tmp_path: Path) -> None:
    from healthbench.report.html import write_site

    board = build_leaderboard(load_runs(results))
    first = write_site(board, tmp_path / "a", max_samples=10).read_text(encoding="utf-8")
    second = write_site(board, tmp_path / "b", max_samples=10).read_text(encoding="utf-8")
    data = [line for line in first.splitlines() if line.startswith('<script id="hb-samples"')]
    assert data == [line for line in second.splitlines()
                    if line.startswith('<script id="hb-samples"')]
    assert '"strong/vqa_demo": 60' in data[0]


def test_write_leaderboard_keeps_the_run_commands_signature(results: Path, tmp_path: Path) -> None:
    out = write_leaderboard(results, tmp_path / "lb.md")
    assert out.read_text(encoding="utf-8").startswith("# healthbench leaderboard")


def test_missing_results_folder_is_a_clear_error(tmp_path: Path, capsys) -> None:
    assert cli_main(["leaderboard", str(tmp_path / "nope"), "--out", str(tmp_path / "x")]) == 2
    assert "no results folder" in capsys.readouterr().err


def test_model_size_formats_parameter_counts() -> None:
    assert model_size({"info": {"parameters": 3_800_000_000}}) == "3.8B"
    assert model_size({"info": {"parameters": 1_337_376}}) == "1.34M"
    assert model_size({"info": {"size": "14B"}}) == "14B"
    assert model_size({"info": {}}) == ""


@pytest.mark.parametrize("info", [
    {"kind": "image baseline", "size": 256},  # identity / bicubic: the output resolution
    {"size": "256"}, {"size": "large"}, {"parameters": True},
])
def test_model_size_is_only_ever_a_parameter_count(info: dict) -> None:
    assert model_size({"name": "identity", "args": {"size": 256}, "info": info}) == ""


REPO = Path(__file__).resolve().parent.parent
REGENERATE = "healthbench leaderboard results --out leaderboard.md"


def _committed_runs(results: Path) -> list[Path]:
    """The run folders of ``results/`` that git tracks (all of them outside a git checkout):
    runs a developer wrote locally and did not commit are not part of the committed table."""
    runs = sorted(p.parent for p in results.glob("*/results.json"))
    try:
        listed = subprocess.run(["git", "ls-files", "-z", "--", "results"], cwd=REPO,
                                capture_output=True, check=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        return runs
    tracked = {REPO / name for name in listed.decode("utf-8").split("\0") if name}
    return [run for run in runs if run / "results.json" in tracked] if tracked else runs


def _committed_leaderboard() -> str:
    """leaderboard.md as committed (git's HEAD copy; the working file outside a git checkout).
    The default ``python run_eval.py`` refreshes the working file with the user's own new run,
    which is not part of the committed table."""
    try:
        return subprocess.run(["git", "show", "HEAD:leaderboard.md"], cwd=REPO,
                              capture_output=True, check=True, timeout=60).stdout.decode("utf-8")
    except (OSError, subprocess.SubprocessError):
        return (REPO / "leaderboard.md").read_text(encoding="utf-8")


def test_committed_leaderboard_matches_the_committed_results(tmp_path: Path, capsys) -> None:
    """leaderboard.md is what ``healthbench leaderboard results --out leaderboard.md`` writes
    from the committed runs: a run added or a rendering change without regenerating fails."""
    committed = REPO / "leaderboard.md"
    if not committed.is_file() or not (REPO / "results").is_dir():
        pytest.skip("no leaderboard.md / results/ (not a source checkout)")
    results = tmp_path / "results"
    results.mkdir()
    for run in _committed_runs(REPO / "results"):
        (results / run.name).mkdir()
        shutil.copy(run / "results.json", results / run.name / "results.json")
    out = tmp_path / "leaderboard.md"
    assert cli_main(["leaderboard", str(results), "--out", str(out)]) == 0
    expected = _committed_leaderboard()
    assert out.read_text(encoding="utf-8") == expected, (
        f"leaderboard.md is stale: regenerate it from the repo root with `{REGENERATE}`")


def test_markdown_depends_only_on_the_runs_not_on_their_order(results: Path) -> None:
    make_run(results, "tied", "other", {"CT": 0.9, "MR": 0.8, "US": 0.7})  # ties with strong
    runs = load_runs(results)
    first = render_markdown(build_leaderboard(runs))
    assert render_markdown(build_leaderboard(list(reversed(runs)))) == first
    assert render_markdown(build_leaderboard(load_runs(results))) == first
    assert "generated" not in first.lower().replace("generated by `healthbench", "")


def test_runs_judged_differently_are_never_ranked_together(tmp_path) -> None:
    from healthbench.report.leaderboard import build_leaderboard
    from healthbench.report.runs import load_runs
    import json

    def write(run_id: str, judge: str | None) -> None:
        block = {"version": "1", "data_checksum": "sha256:x", "n": 2, "n_errors": 0,
                 "n_total": 2, "metrics": {"accuracy": {"value": 0.5, "ci": [0, 1]}},
                 "groups": {}, "macro": {},
                 "judge": {"fingerprint": judge} if judge else None}
        path = tmp_path / run_id / "results.json"
        path.parent.mkdir()
        path.write_text(json.dumps({"schema_version": 1, "run_id": run_id,
                                    "model": {"name": run_id, "args": {}},
                                    "harness": {"version": "0", "git_sha": "x"},
                                    "tasks": {"open_task": block}}))

    write("a", "judge-one"), write("b", "judge-one"), write("c", "judge-two"), write("d", None)
    tables = [t for t in build_leaderboard(load_runs(tmp_path)).tables if t.task == "open_task"]
    assert sorted(sorted(e.run.run_id for e in t.entries) for t in tables) == [
        ["a", "b"], ["c"], ["d"]]


def test_equal_values_share_a_rank(tmp_path) -> None:
    import json

    from healthbench.report.leaderboard import build_leaderboard
    from healthbench.report.runs import load_runs

    for run_id, value in (("a", 0.5), ("b", 0.5), ("c", 0.25)):
        block = {"version": "1", "data_checksum": "sha256:x", "n": 4, "n_errors": 0,
                 "n_total": 4, "metrics": {"accuracy": {"value": value, "ci": [0, 1]}},
                 "groups": {}, "macro": {}}
        path = tmp_path / run_id / "results.json"
        path.parent.mkdir()
        path.write_text(json.dumps({"schema_version": 1, "run_id": run_id,
                                    "model": {"name": run_id, "args": {}},
                                    "harness": {"version": "0", "git_sha": "x"},
                                    "tasks": {"t": block}}))
    table = build_leaderboard(load_runs(tmp_path)).tables[0]
    assert [(rank, e.run.run_id) for rank, e in table.ranked()] == [(1, "a"), (1, "b"), (3, "c")]


def test_site_copies_generation_strips_and_never_points_outside(tmp_path: Path) -> None:
    from healthbench.report.html import write_site

    results = tmp_path / "results"
    run_dir = make_run(results, "gen", "identity", {"CT": 1.0, "MR": 1.0, "US": 1.0})
    task_dir = run_dir / "vqa_demo"
    (task_dir / "images").mkdir()
    Image.new("RGB", (576, 192), (200, 30, 30)).save(task_dir / "images" / "ok.png")
    outside = tmp_path / "secret.png"
    Image.new("RGB", (576, 192)).save(outside)
    strips = {"CT/0": "images/ok.png", "CT/1": "images/gone.png", "CT/2": "../../../secret.png"}
    lines = (task_dir / "samples.jsonl").read_text(encoding="utf-8").splitlines()
    rows = [json.loads(line) for line in lines]
    for row in rows:
        if row["id"] in strips:
            row["response"] = {"output": "images/x.output.png", "strip": strips[row["id"]]}
    (task_dir / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows),
                                            encoding="utf-8")
    payload = json.loads((run_dir / "results.json").read_text(encoding="utf-8"))
    payload["tasks"]["vqa_demo"]["output"] = "image"
    (run_dir / "results.json").write_text(json.dumps(payload), encoding="utf-8")
    site = tmp_path / "site"
    page = write_site(build_leaderboard(load_runs(results)), site).read_text(encoding="utf-8")
    copied = list((site / "strips").glob("*.png"))
    assert len(copied) == 1 and Image.open(copied[0]).size == (576, 192)
    data = json.loads(page.split('<script id="hb-samples" type="application/json">')[1]
                      .split("</script>")[0])
    by_id = {s["id"]: s for s in data["samples"]}
    assert by_id["CT/0"]["strip"] == f"strips/{copied[0].name}"
    assert by_id["CT/1"]["strip"] == by_id["CT/2"]["strip"] == "missing"  # gone / outside
    assert "strip" not in by_id["CT/3"]  # no strip recorded for it
    assert "secret" not in " ".join(p.name for p in site.rglob("*"))

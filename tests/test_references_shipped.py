"""The shipped paper numbers (``references/healthgpt.yaml``): schema-valid, every entry lands on
a task, metric and group healthbench has, the transcription is internally consistent, and the
default leaderboard shows them † beside the suites the paper reports."""
from __future__ import annotations

from pathlib import Path

import pytest

from healthbench.report.leaderboard import build_leaderboard, render_markdown
from healthbench.report.references import (format_reference, load_references,
                                           shipped_reference_files)
from healthbench.run.evaluate import build_metrics
from healthbench.suites.omnimedvqa.loader import CANONICAL_MODALITIES
from healthbench.taskconfig.index import TaskIndex

REPO = Path(__file__).resolve().parent.parent
SHIPPED = REPO / "references" / "healthgpt.yaml"


@pytest.fixture(scope="module")
def refs():
    return load_references(SHIPPED)


def test_the_shipped_file_is_what_the_default_leaderboard_reads() -> None:
    assert SHIPPED in shipped_reference_files()


def test_every_entry_maps_to_an_existing_task_metric_and_group(refs) -> None:
    index = TaskIndex.build()
    metric_names: dict[str, set[str]] = {}
    for ref in refs:
        assert ref.task in index.tasks, f"{ref.model}: no task {ref.task!r}"
        task = index.tasks[ref.task]
        if ref.task not in metric_names:
            metric_names[ref.task] = {m.name for m in build_metrics(task)}
        assert ref.metric in metric_names[ref.task], (ref.model, ref.task, ref.metric)
        assert ref.value is not None or ref.groups, ref
        for key, values in ref.groups.items():
            assert key in task.group_by, (ref.model, ref.task, key)
            if task.dataset.format == "omnimedvqa":
                assert set(values) <= set(CANONICAL_MODALITIES), values
            if task.dataset.format == "synthrad2023":
                assert set(values) <= set(task.dataset.options["regions"]), values
        assert "Table" in ref.source and ref.protocol
        assert ref.suite in ("vqa_rad", "slake", "pathvqa", "mmmu_med", "omnimedvqa",
                             "generation")


def test_every_printed_table_is_transcribed(refs) -> None:
    tables = {ref.source.split(", ")[-1].split(" ")[1] for ref in refs}
    assert {"1", "2", "3", "11"} <= tables
    assert any("Table 9" in ref.source for ref in refs)
    models = {ref.model for ref in refs if ref.task == "omnimedvqa"}
    assert len(models) == 14 and {"HealthGPT-M3", "HealthGPT-L14"} <= models


def test_table_9_modalities_average_to_the_printed_overall(refs) -> None:
    """Table 9's per-modality numbers average to its Avg column, which equals Table 1's OMVQA
    (checked for every row in the paper): a mistyped number breaks it."""
    omvqa = [r for r in refs if r.task == "omnimedvqa"]
    assert len(omvqa) == 14
    for ref in omvqa:
        values = list(ref.groups["modality"].values())
        assert len(values) == 7
        assert abs(sum(values) / 7 - ref.value) <= 0.0006, ref.model


def test_numbers_are_stored_as_fractions_and_shown_as_printed(refs) -> None:
    m3 = {(r.task, r.metric): r for r in refs if r.model == "HealthGPT-M3"}
    assert m3[("omnimedvqa", "accuracy")].value == pytest.approx(0.685)
    assert m3[("vqa_rad", "closed_accuracy")].value == pytest.approx(0.737)
    ssim = m3[("modality_conversion_ct2mr", "ssim")]
    assert ssim.value is None and ssim.groups["region"]["brain"] == pytest.approx(0.7938)
    assert format_reference(ssim.groups["region"]["brain"], ssim.info) == "79.38"
    assert format_reference(m3[("omnimedvqa", "accuracy")].value,
                            m3[("omnimedvqa", "accuracy")].info) == "68.5"
    psnr = m3[("super_resolution", "psnr")]
    assert psnr.value == pytest.approx(32.76) and format_reference(psnr.value, psnr.info) == "32.76"


def test_default_leaderboard_shows_the_paper_rows_for_each_reported_suite() -> None:
    text = (REPO / "leaderboard.md").read_text(encoding="utf-8")
    sections = {}
    for block in text.split("\n## ")[1:]:
        name, _, body = block.partition("\n")
        sections[name.strip()] = body
    for suite in ("vqa_rad", "slake", "pathvqa", "mmmu_med", "omnimedvqa", "generation"):
        assert "| HealthGPT-M3 † |" in sections[suite], suite
    assert "| HealthGPT-L14 † | paper | 39.0 | 64.1 | 80.9 | 88.6 | 99.7 | 62.2 | 86.6 |" in \
        sections["omnimedvqa"]
    for suite in ("mimic_cxr", "pmc_mi_bench", "pmc_vqa"):  # the paper reports none of these
        assert "†" not in sections[suite]


def test_paper_numbers_are_never_ranked(refs) -> None:
    board = build_leaderboard([], refs)
    assert board.tables and all(not t.entries for t in board.tables)
    assert all(t.ranked() == [] for t in board.tables)
    text = render_markdown(board)
    assert "No run of this task" in text and "| 1 |" not in text

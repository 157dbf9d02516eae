"""``healthbench compare BASELINE NEW``: the CI regression gate for a model update.

Samples are matched by (task, id) from each run's ``<task>/samples.jsonl``. For every task, for
the whole task and for every group value of its ``group_by`` keys, every metric is compared with
the paired test that suits it (``healthbench.scoring.paired``); p-values are Holm-corrected across all
comparisons of the call. A comparison is a **regression** when the new run is worse by more than
``margin`` (points on the % scale for metrics in [0, 1], the metric's own unit otherwise) *and*
the difference is significant (Holm-adjusted p < alpha). A significant change within the margin
is reported but does not fail the gate.

Exit codes: 0 no regression, 1 at least one regression, 2 the runs are not comparable (a task
missing from the new run, different task versions or data checksums, different sample sets;
the report says which) or an input is not a run.

This module holds the statistics (which slices, which test, Holm, the verdict) and the CLI body;
``compare_report.py`` holds the report records and their markdown/JUnit renderings.
"""
from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from healthbench.scoring.base import Metric
from healthbench.scoring.paired import compare_scores, holm, stable_seed
from healthbench.report.pairing import PairedTask
from healthbench.report.compare_report import (
    OVERALL,
    Comparison,
    CompareReport,
    error_junit,
    render_junit,
    render_markdown,
)
from healthbench.report.runs import Run, group_values, load_run
from healthbench.results.samples import atomic_write_text
from healthbench.results.schema import TaskResult

#: The comparison of errored samples that every gated slice with errors gets.
ERROR_RATE = "error_rate"

log = logging.getLogger("healthbench.compare")


# --- comparability ---------------------------------------------------------------------------

def comparability_problems(baseline: Run, new: Run, tasks: Sequence[str]) -> list[str]:
    """Every reason the two runs cannot be compared on ``tasks`` (empty when they can)."""
    problems: list[str] = []
    for task in tasks:
        if task not in new.tasks:
            problems.append(f"task {task}: in the baseline run but missing from the new run")
            continue
        old_block, new_block = baseline.tasks[task], new.tasks[task]
        if old_block.version != new_block.version:
            problems.append(f"task {task}: task versions differ (baseline v"
                            f"{old_block.version}, new v{new_block.version})")
        if (old_block.protocol or None) != (new_block.protocol or None):
            problems.append(f"task {task}: scoring protocols differ (baseline "
                            f"{old_block.protocol}, new {new_block.protocol})")
        if old_block.data_checksum != new_block.data_checksum:
            problems.append(f"task {task}: data checksums differ (baseline "
                            f"{old_block.data_checksum}, new {new_block.data_checksum})"
                            + _changed_files(old_block.data_files, new_block.data_files))
        for run, which in ((baseline, "baseline"), (new, "new")):
            if not run.samples_path(task).is_file():
                problems.append(f"task {task}: {which} run has no samples file "
                                f"({run.samples_path(task)})")
        if any(p.startswith(f"task {task}: ") and "samples file" in p for p in problems):
            continue
        old_ids, new_ids = set(baseline.samples(task)), set(new.samples(task))
        if old_ids != new_ids:
            only_old, only_new = sorted(old_ids - new_ids), sorted(new_ids - old_ids)
            problems.append(f"task {task}: sample sets differ ({len(only_old)} only in the "
                            f"baseline{_examples(only_old)}, {len(only_new)} only in the new "
                            f"run{_examples(only_new)})")
    return problems


def _changed_files(old: Mapping[str, str] | None, new: Mapping[str, str] | None) -> str:
    """Which dataset files differ, from the per-file checksums runs record (``data_files``)."""
    if not isinstance(old, Mapping) or not isinstance(new, Mapping):
        return "; the runs do not record per-file checksums"
    changed = sorted(f for f in set(old) & set(new) if old[f] != new[f])
    parts = [f"{label}: {', '.join(files[:5])}" + (f" (+{len(files) - 5} more)"
                                                  if len(files) > 5 else "")
             for label, files in (("changed", changed),
                                  ("only in the baseline", sorted(set(old) - set(new))),
                                  ("only in the new run", sorted(set(new) - set(old))))
             if files]
    return "; " + "; ".join(parts) if parts else ""


def _examples(ids: Sequence[str], k: int = 3) -> str:
    if not ids:
        return ""
    more = ", …" if len(ids) > k else ""
    return " e.g. " + ", ".join(ids[:k]) + more


# --- metrics ---------------------------------------------------------------------------------

def metric_record(block: TaskResult, name: str) -> tuple[str, dict[str, Any]] | None:
    """(registered name, arguments) that built metric ``name`` of a task, as results.json
    records them (``tasks.<t>.metric_info.<m>.registered`` / ``.args``); None for runs made
    before these were recorded or metrics whose arguments are not JSON."""
    info = block.metric_info.get(name)
    if info is None or info.registered is None or info.args is None:
        return None
    return info.registered, dict(info.args)


def rebuild_metric(block: TaskResult, name: str) -> Metric | None:
    """The metric object ``name`` was computed with, rebuilt from the registry
    (``core.catalog.METRICS``) with the recorded arguments — never from the task YAML of the
    current checkout, which may have changed since the run. None when the run has no record of
    it or the registry cannot rebuild it (compare then uses the stored per-sample scores)."""
    from healthbench.core.catalog import METRICS

    record = metric_record(block, name)
    if record is None:
        return None
    registered, args = record
    try:
        metric = METRICS.get(registered)(**args)
    except Exception as exc:  # unknown or changed metric: fall back to stored scores
        log.warning("metric %s: cannot rebuild %s(%s) (%s)", name, registered, args, exc)
        return None
    return metric if isinstance(metric, Metric) and metric.name == name else None


def _slices(block: TaskResult, paired: PairedTask) -> list[tuple[str, str, np.ndarray]]:
    """(group key, group value, positions in ``paired``) for the whole task and each group value
    (baseline meta); positions ascend, i.e. follow the id order."""
    out = [(OVERALL[0], OVERALL[1], np.arange(len(paired)))]
    for key in block.group_keys:
        buckets: dict[str, list[int]] = {}
        for i, record in enumerate(paired.base):
            for value in group_values(record, key):
                buckets.setdefault(value, []).append(i)
        # one value holding every sample is `overall` again: not tested twice (a count is
        # enough: group_values names each group of a record once, and every record has one)
        if len(buckets) == 1 and len(next(iter(buckets.values()))) == len(paired):
            continue
        out += [(key, value, np.asarray(members, dtype=np.intp))
                for value, members in sorted(buckets.items())]
    return out


# --- the comparison --------------------------------------------------------------------------

def compare_runs(baseline: Run, new: Run, margin: float = 1.0, alpha: float = 0.05,
                 metrics: Sequence[str] | None = None, tasks: Sequence[str] | None = None,
                 seed: int = 0, resamples: int | None = None) -> CompareReport:
    """Compare ``new`` with ``baseline`` on every task of the baseline (or ``tasks``), from their
    results.json and samples.jsonl alone: corpus metrics are rebuilt from the metric registry
    with the arguments each run recorded (``rebuild_metric``), never from the task folder."""
    if margin < 0:
        raise ValueError(f"--margin: expected a non-negative number of points, got {margin}")
    if not 0 < alpha < 1:
        raise ValueError(f"--alpha: expected a level between 0 and 1, got {alpha}")
    report = CompareReport(baseline, new, margin, alpha)
    task_names = list(tasks) if tasks else list(baseline.tasks)
    for task in task_names:
        if task not in baseline.tasks:
            report.problems.append(f"task {task}: not in the baseline run")
    task_names = [t for t in task_names if t in baseline.tasks]
    report.problems += comparability_problems(baseline, new, task_names)
    extra = sorted(set(new.tasks) - set(baseline.tasks))
    if extra:
        report.notes.append(f"not gated (absent from the baseline): {', '.join(extra)}")
    if report.problems:
        return report

    pending: list[Comparison] = []
    for task in task_names:
        block = baseline.tasks[task]
        names = [m for m in block.metrics if metrics is None or m in metrics]
        old_samples, new_samples = baseline.samples(task), new.samples(task)
        objects = {name: rebuild_metric(block, name) for name in names}
        for name in names:
            if objects[name] is None and metric_record(block, name) is None and \
                    any(name in r.scores for r in old_samples.values()):
                report.notes.append(f"task {task}: metric {name} compared from stored per-sample "
                                    "scores only (results.json does not record how to rebuild "
                                    "it)")
        paired = PairedTask(old_samples, new_samples)
        for key, value, positions in _slices(block, paired):
            errors = _error_rate_comparison(task, key, value, paired, positions, seed,
                                            resamples)
            if errors is not None:
                pending.append(errors)
            excluded = paired.excluded(positions)
            for name in names:
                metric = objects[name]
                if metric is None:
                    if not paired.has_score(name, positions):
                        if (key, value) == OVERALL:
                            report.notes.append(f"task {task}: metric {name} not compared (a "
                                                "corpus metric that cannot be rebuilt, no "
                                                "per-sample scores)")
                        continue
                    metric = Metric(name, per_sample=lambda *a: None,
                                    higher_is_better=block.info(name).higher_is_better)
                result = paired.compare(metric, positions,
                                        seed=stable_seed(seed, task, key, value, name),
                                        resamples=resamples)
                if result.n == 0:
                    continue
                # scale and direction as the baseline run declared them (its metric_info)
                info = block.info(name)
                pending.append(Comparison(task, key, value, name, info.higher_is_better,
                                          100.0 if info.percent else 1.0, result, excluded))
        errored = sum(1 for r in old_samples.values() if r.error) + \
            sum(1 for r in new_samples.values() if r.error)
        if errored:
            report.notes.append(f"task {task}: {errored} errored sample record(s) across the two "
                                "runs; their pairs are left out")
    adjusted = holm([c.result.p_value for c in pending])
    for comparison, p_adj in zip(pending, adjusted, strict=True):
        significant = p_adj < alpha
        worse = comparison.change < -margin
        better = comparison.change > 0
        report.comparisons.append(replace(comparison, p_adjusted=p_adj,
                                          regression=significant and worse,
                                          improvement=significant and better))
    report.comparisons.sort(key=lambda c: (not c.regression, c.change, c.task,
                                           c.group_key != OVERALL[0], c.slice_label, c.metric))
    return report


def _error_rate_comparison(task: str, key: str, value: str, paired: PairedTask,
                           positions: np.ndarray, seed: int,
                           resamples: int | None) -> Comparison | None:
    """Samples that errored, compared like any 0/1 metric (McNemar), so a model that starts
    failing on inputs it used to answer is a regression, not a silently smaller denominator."""
    flags = paired.error_flags(positions)
    if flags is None:
        return None
    result = compare_scores(*flags, seed=stable_seed(seed, task, key, value, ERROR_RATE),
                            resamples=resamples)
    return Comparison(task, key, value, ERROR_RATE, False, 100.0, result, 0)


def run_compare(baseline_path: Path, new_path: Path, margin: float = 1.0, alpha: float = 0.05,
                junit: Path | None = None, markdown: Path | None = None,
                metrics: Sequence[str] | None = None, tasks: Sequence[str] | None = None,
                seed: int = 0, resamples: int | None = None) -> CompareReport:
    """Load two runs, compare them and write the requested reports (the CLI's body). When the
    input is bad (not a run, a bad option), the reports are still written, holding the error, so
    a CI step that publishes them finds them; the error is then raised as before."""
    try:
        report = compare_runs(load_run(baseline_path), load_run(new_path), margin=margin,
                              alpha=alpha, metrics=metrics, tasks=tasks, seed=seed,
                              resamples=resamples)
    except (OSError, ValueError) as exc:
        message = " ".join(str(exc).split())
        if markdown is not None:
            atomic_write_text(markdown, "## healthbench compare\n\n**❌ error (exit 2)** — the "
                                        f"gate did not run: {message}\n")
        if junit is not None:
            atomic_write_text(junit, error_junit("input", type(exc).__name__, message))
        raise
    if markdown is not None:
        atomic_write_text(markdown, render_markdown(report))
    if junit is not None:
        atomic_write_text(junit, render_junit(report))
    return report


def main(args: Any) -> int:
    """``healthbench compare``: prints the markdown summary and returns the exit code."""
    def split(value: str | None) -> list[str] | None:
        return [v.strip() for v in value.split(",") if v.strip()] if value else None

    report = run_compare(args.baseline, args.new, margin=args.margin, alpha=args.alpha,
                         junit=args.junit, markdown=args.markdown, metrics=split(args.metrics),
                         tasks=split(args.tasks), seed=args.seed, resamples=args.resamples)
    print(render_markdown(report))
    return report.exit_code

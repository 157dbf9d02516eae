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
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping, Sequence
from xml.etree import ElementTree as ET

from healthbench.scoring.base import Metric
from healthbench.scoring.paired import PairedResult, compare_metric, holm, pair_records, stable_seed
from healthbench.report.runs import Run, group_values, load_run
from healthbench.results.format import format_value
from healthbench.results.samples import atomic_write_text
from healthbench.results.schema import TaskResult
from healthbench.core.types import SampleResult

#: The comparison of errored samples that every gated slice with errors gets.
ERROR_RATE = "error_rate"

log = logging.getLogger("healthbench.compare")

EXIT_OK, EXIT_REGRESSION, EXIT_NOT_COMPARABLE = 0, 1, 2
OVERALL = ("overall", "all")


@dataclass(frozen=True)
class Comparison:
    """One metric on one slice (a task overall, or one group value) of two paired runs."""

    task: str
    group_key: str
    group_value: str
    metric: str
    higher_is_better: bool
    scale: float  # 100 for fractions (points), 1 otherwise
    result: PairedResult
    n_excluded: int
    p_adjusted: float = 1.0
    regression: bool = False
    improvement: bool = False

    @property
    def change(self) -> float:
        """new − baseline in display units, signed so that negative means worse."""
        sign = 1.0 if self.higher_is_better else -1.0
        return sign * self.result.diff * self.scale

    @property
    def slice_label(self) -> str:
        return "overall" if (self.group_key, self.group_value) == OVERALL else \
            f"{self.group_key}={self.group_value}"


@dataclass
class CompareReport:
    baseline: Run
    new: Run
    margin: float
    alpha: float
    comparisons: list[Comparison] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # why the runs are not comparable
    notes: list[str] = field(default_factory=list)

    @property
    def comparable(self) -> bool:
        return not self.problems

    @property
    def regressions(self) -> list[Comparison]:
        return [c for c in self.comparisons if c.regression]

    @property
    def exit_code(self) -> int:
        if not self.comparable:
            return EXIT_NOT_COMPARABLE
        return EXIT_REGRESSION if self.regressions else EXIT_OK


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


def _slices(task: str, block: TaskResult, records: Sequence[SampleResult],
            ) -> list[tuple[str, str, list[str]]]:
    """(group key, group value, ids) for the whole task and each group value (baseline meta)."""
    ids = [r.id for r in records]
    out = [(OVERALL[0], OVERALL[1], sorted(ids))]
    for key in block.group_keys:
        buckets: dict[str, list[str]] = {}
        for record in records:
            for value in group_values(record, key):
                buckets.setdefault(value, []).append(record.id)
        if len(buckets) == 1 and sorted(next(iter(buckets.values()))) == out[0][2]:
            continue  # one value holding every sample is `overall` again: not tested twice
        out += [(key, value, sorted(members)) for value, members in sorted(buckets.items())]
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
        for key, value, ids in _slices(task, block, list(old_samples.values())):
            errors = _error_rate_comparison(task, key, value, ids, old_samples, new_samples,
                                            seed, resamples)
            if errors is not None:
                pending.append(errors)
            base_recs, new_recs, excluded = pair_records(old_samples, new_samples, ids)
            for name in names:
                metric = objects[name]
                if metric is None:
                    if not any(name in r.scores for r in base_recs):
                        if (key, value) == OVERALL:
                            report.notes.append(f"task {task}: metric {name} not compared (a "
                                                "corpus metric that cannot be rebuilt, no "
                                                "per-sample scores)")
                        continue
                    metric = Metric(name, per_sample=lambda *a: None,
                                    higher_is_better=block.info(name).higher_is_better)
                result = compare_metric(metric, base_recs, new_recs,
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


def _error_rate_comparison(task: str, key: str, value: str, ids: Sequence[str],
                           old: Mapping[str, SampleResult], new: Mapping[str, SampleResult],
                           seed: int, resamples: int | None) -> Comparison | None:
    """Samples that errored, compared like any 0/1 metric (McNemar), so a model that starts
    failing on inputs it used to answer is a regression, not a silently smaller denominator."""
    common = [i for i in ids if i in old and i in new]
    if not any(old[i].error or new[i].error for i in common):
        return None
    metric = Metric(ERROR_RATE, per_sample=lambda *a: None, higher_is_better=False)

    def flags(records: Mapping[str, SampleResult]) -> list[SampleResult]:
        return [replace(records[i], scores={ERROR_RATE: 1.0 if records[i].error else 0.0},
                        error=None) for i in common]

    result = compare_metric(metric, flags(old), flags(new),
                            seed=stable_seed(seed, task, key, value, ERROR_RATE),
                            resamples=resamples)
    return Comparison(task, key, value, ERROR_RATE, False, 100.0, result, 0)


# --- output ----------------------------------------------------------------------------------

def _status(c: Comparison, alpha: float) -> str:
    if c.regression:
        return "🔴 regression"
    if c.improvement:
        return "🟢 better"
    if c.p_adjusted < alpha and c.change < 0:
        return "🟡 worse, within margin"
    return "⚪ no significant change"


def _value(value: float | None, c: Comparison) -> str:
    return format_value(value, percent=c.scale == 100.0)


def _delta(c: Comparison) -> str:
    r = c.result
    lo, hi = r.ci
    unit = " pts" if c.scale == 100.0 else ""
    text = f"{r.diff * c.scale:+.2f}{unit}"
    if lo is not None and hi is not None:
        text += f" ({lo * c.scale:+.2f}, {hi * c.scale:+.2f})"
    return text


def _counts(c: Comparison) -> str:
    counts = c.result.counts
    if not counts:
        return "–"
    # samples that got worse / better; for a lower-is-better 0/1 score (parse failure) a 1 that
    # appears in the new run is a loss
    lost, gained = counts["baseline_only"], counts["new_only"]
    return f"{lost} / {gained}" if c.higher_is_better else f"{gained} / {lost}"


def _p(value: float) -> str:
    return f"{value:.2g}" if value >= 1e-4 else f"{value:.1e}"


def _run_line(run: Run) -> str:
    model = run.model
    args = ", ".join(f"{k}={v}" for k, v in model.args.items())
    return f"`{run.run_id}` — model `{model.name}`" + (f" ({args})" if args else "") \
        + f", healthbench {run.harness_version}"


def render_markdown(report: CompareReport, max_rows: int = 30) -> str:
    """A summary for a CI page: verdict, then the worst drops first, with intervals and counts."""
    lines = ["## healthbench compare", ""]
    lines += [f"- baseline: {_run_line(report.baseline)}", f"- new: {_run_line(report.new)}"]
    if not report.comparable:
        lines += ["", "**❌ not comparable (exit 2)** — the gate did not run:", ""]
        lines += [f"- {problem}" for problem in report.problems]
        return "\n".join(lines) + "\n"
    regressions = report.regressions
    n = len(report.comparisons)
    verdict = (f"**❌ {len(regressions)} regression(s)** (exit 1)" if regressions
               else "**✅ no regression** (exit 0)")
    lines += ["", f"{verdict} — {n} paired comparisons (tasks × groups × metrics); a regression is "
              f"a change for the worse of more than {report.margin:g} (points for % metrics, "
              f"the metric's own unit otherwise) that is significant at α = {report.alpha:g} "
              f"after Holm correction across all {n}.", ""]
    header = ["", "task", "slice", "metric", "baseline", "new", "Δ (95% CI)", "pairs",
              "lost / gained", "test", "p", "p (Holm)"]
    table = ["| " + " | ".join(header) + " |",
             "|---|---|---|---|---:|---:|---:|---:|---:|---|---:|---:|"]

    def row(c: Comparison) -> str:
        r = c.result
        return "| " + " | ".join([
            _status(c, report.alpha), c.task, c.slice_label, c.metric,
            _value(r.baseline, c), _value(r.new, c), _delta(c),
            str(r.n) + (f" (+{c.n_excluded} errored)" if c.n_excluded else ""),
            _counts(c), r.test, _p(r.p_value), _p(c.p_adjusted)]) + " |"

    shown = report.comparisons[:max(max_rows, len(regressions))]
    lines += table + [row(c) for c in shown]
    if len(report.comparisons) > len(shown):
        lines += ["", "<details><summary>all comparisons</summary>", ""]
        lines += table + [row(c) for c in report.comparisons[len(shown):]]
        lines += ["", "</details>"]
    lines += ["", "Δ = new − baseline (points on the % scale for fractions); *lost / gained*: "
              "samples that got worse / better between the runs (the McNemar discordant pairs). "
              "Worst drops first."]
    if report.notes:
        lines += [""] + [f"- note: {note}" for note in report.notes]
    return "\n".join(lines) + "\n"


def render_junit(report: CompareReport) -> str:
    """JUnit XML: one test case per comparison, failed for a regression; one error when the runs
    are not comparable."""
    if not report.comparable:
        return _error_junit("comparability", "NotComparable", "\n".join(report.problems))
    suites = ET.Element("testsuites", name="healthbench compare")
    by_task: dict[str, list[Comparison]] = {}
    for c in report.comparisons:
        by_task.setdefault(c.task, []).append(c)
    for task, items in by_task.items():
        failures = sum(c.regression for c in items)
        suite = ET.SubElement(suites, "testsuite", name=task, tests=str(len(items)),
                              failures=str(failures), errors="0")
        for c in items:
            case = ET.SubElement(suite, "testcase", classname=f"healthbench.compare.{task}",
                                 name=f"{c.slice_label} {c.metric}")
            detail = (f"{c.metric} {_value(c.result.baseline, c)} -> "
                      f"{_value(c.result.new, c)}, delta {_delta(c)}, "
                      f"n={c.result.n}, {c.result.test} p={_p(c.result.p_value)}, "
                      f"Holm p={_p(c.p_adjusted)}")
            if c.regression:
                unit = " points" if c.scale == 100.0 else ""
                failure = ET.SubElement(case, "failure", type="Regression",
                                        message=f"worse by more than {report.margin:g}{unit}: "
                                                f"{_delta(c)}")
                failure.text = detail
            else:
                ET.SubElement(case, "system-out").text = detail
    return _xml(suites)


def _error_junit(suite_name: str, kind: str, text: str) -> str:
    """JUnit XML with one errored case: the gate could not run (bad input, incomparable runs)."""
    suites = ET.Element("testsuites", name="healthbench compare")
    suite = ET.SubElement(suites, "testsuite", name=suite_name, tests="1", failures="0",
                          errors="1")
    case = ET.SubElement(suite, "testcase", classname="healthbench.compare",
                         name="runs are comparable")
    message = "runs are not comparable" if kind == "NotComparable" else text
    ET.SubElement(case, "error", message=message, type=kind).text = text
    return _xml(suites)


def _xml(root: ET.Element) -> str:
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


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
            atomic_write_text(junit, _error_junit("input", type(exc).__name__, message))
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

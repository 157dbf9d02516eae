"""What ``healthbench compare`` reports and how: the comparison records and their markdown and
JUnit renderings.

``compare.py`` computes a :class:`CompareReport` from two runs (the statistics); this module holds
the records themselves and turns them into the CI page (markdown) and the CI test report (JUnit
XML), so the two can change apart.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from xml.etree import ElementTree as ET

from healthbench.report.runs import Run
from healthbench.results.format import format_value
from healthbench.scoring.paired import PairedResult

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
    """Every comparison of one ``compare`` call, or the reasons (``problems``) it could not run."""

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
        return error_junit("comparability", "NotComparable", "\n".join(report.problems))
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


def error_junit(suite_name: str, kind: str, text: str) -> str:
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

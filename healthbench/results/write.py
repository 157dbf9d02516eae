"""results.json (typed in ``healthbench.results.schema``), tables.md and one CSV per task.

Everything is written atomically (temp file + rename): a reader never sees half a file, and a
kill while writing leaves the previous version in place.
"""
from __future__ import annotations

import platform
import socket
import subprocess
from pathlib import Path
from typing import Any, Mapping

from healthbench.results.choice_tables import calibration_lines, robustness_lines
from healthbench.core.names import require_inside
from healthbench.results.format import format_value
from healthbench.results.samples import atomic_write_text
from healthbench.results.schema import MetricValue, Results, TaskResult


def git_sha() -> str:
    here = Path(__file__).resolve().parent.parent
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True,
                             text=True, timeout=5)
        return out.stdout.strip() if out.returncode == 0 else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def environment() -> dict[str, Any]:
    """Host, Python and library versions, and the GPU if torch sees one (never imports torch
    just to ask: a replay run should not pay torch's start-up)."""
    import sys
    from importlib import metadata

    env: dict[str, Any] = {"host": socket.gethostname(), "platform": platform.platform(),
                           "python": platform.python_version()}
    for package in ("torch", "transformers", "numpy"):
        try:
            env[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            env[package] = None
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        env["gpu"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    else:
        env["gpu"] = []
    return env


def write_results(run_dir: Path, results: Results) -> Path:
    path = run_dir / "results.json"
    atomic_write_text(path, results.dumps())
    return path


def _metric_columns(metrics: Mapping[str, MetricValue]) -> dict[str, Any]:
    return {**{m: v.value for m, v in metrics.items()},
            **{f"{m}_ci_low": v.bounds[0] for m, v in metrics.items()},
            **{f"{m}_ci_high": v.bounds[1] for m, v in metrics.items()}}


def task_rows(task_name: str, block: TaskResult) -> list[dict[str, Any]]:
    """Flat rows (overall, each group value, macro) for the CSV and the markdown table."""
    rows = [{"task": task_name, "group": "overall (micro)", "value": "all", "n": block.n,
             "n_errors": block.n_errors, **_metric_columns(block.metrics)}]
    for key, groups in block.groups.items():
        for value, group in groups.items():
            rows.append({"task": task_name, "group": key, "value": value, "n": group.n,
                         "n_errors": group.n_errors or 0, **_metric_columns(group.metrics)})
        rows.append({"task": task_name, "group": key, "value": "macro",
                     "n": block.n, "n_errors": block.n_errors,
                     **_metric_columns(block.macro[key])})
    return rows


def write_tables(run_dir: Path, results: Results) -> None:
    """tables.md (percentages with 95% bootstrap intervals) and ``<task>/<task>.csv``."""
    import pandas as pd

    lines = [f"# Results: {results.run_id}", "",
             f"Model `{results.model.name}`; healthbench {results.harness_version}"
             f" ({results.git_sha[:10]}). Values are % with 95% bootstrap "
             "intervals where the metric is a fraction; n counts scored samples, errors are "
             "counted apart.", ""]
    for task_name, block in results.tasks.items():
        frame = pd.DataFrame(task_rows(task_name, block))
        csv_path = require_inside(run_dir, run_dir / task_name / f"{task_name}.csv")
        atomic_write_text(csv_path, frame.to_csv(index=False))
        metric_names = list(block.metrics)
        protocol = f", protocol {block.protocol}" if block.protocol else ""
        lines += [f"## {task_name} (v{block.version}{protocol})", "",
                  "| group | value | n | errors | " + " | ".join(metric_names) + " |",
                  "|---|---|---:|---:|" + "---:|" * len(metric_names)]
        lines.append(_row("overall (micro)", "all", block.n, block.n_errors,
                          block.metrics, block))
        for key, groups in block.groups.items():
            for value, group in groups.items():
                lines.append(_row(key, value, group.n, group.n_errors or 0, group.metrics,
                                  block))
            lines.append(_row(key, "**macro**", block.n, block.n_errors, block.macro[key],
                              block))
        lines.append("")
        lines += robustness_lines(block.robustness) + calibration_lines(block.calibration)  # results/choice_tables.py
    atomic_write_text(run_dir / "tables.md", "\n".join(lines) + "\n")


def _row(group: str, value: str, n: int, errors: int, metrics: Mapping[str, MetricValue],
         block: TaskResult) -> str:
    cells = [format_value(metrics[m].value, metrics[m].ci, percent=block.info(m).percent,
                          style="table") if m in metrics else "–" for m in block.metrics]
    return f"| {group} | {value} | {n} | {errors} | " + " | ".join(cells) + " |"

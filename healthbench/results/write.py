"""results.json (schema in design.md), tables.md and one CSV per task.

Everything is written atomically (temp file + rename): a reader never sees half a file, and a
kill while writing leaves the previous version in place.
"""
from __future__ import annotations

import json
import platform
import socket
import subprocess
from pathlib import Path
from typing import Any, Mapping

from healthbench.results.choice_tables import calibration_lines, robustness_lines
from healthbench.results.samples import atomic_write_text

SCHEMA_VERSION = 1


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


def write_results(run_dir: Path, payload: Mapping[str, Any]) -> Path:
    path = run_dir / "results.json"
    atomic_write_text(path, json.dumps(payload, indent=2, allow_nan=False) + "\n")
    return path


def _fmt(metric: Mapping[str, Any], percent: bool) -> str:
    value = metric.get("value")
    if value is None:
        return "–"
    scale = 100.0 if percent else 1.0
    lo, hi = metric.get("ci") or (None, None)
    text = f"{value * scale:.1f}" if percent else f"{value:.4g}"
    if lo is not None and hi is not None:
        text += f" [{lo * scale:.1f}, {hi * scale:.1f}]" if percent else \
            f" [{lo:.4g}, {hi:.4g}]"
    return text


FRACTION_METRICS = {"accuracy", "parse_failure", "exact_match", "ssim"}


def _is_fraction(name: str) -> bool:
    return name in FRACTION_METRICS or name.endswith(
        ("_accuracy", "_f1", "_recall", "_precision", "_exact_match")) or name.startswith(
        ("accuracy", "f1", "micro_f1", "macro_f1"))


def task_rows(task_name: str, block: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Flat rows (overall, each group value, macro) for the CSV and the markdown table."""
    rows = [{"task": task_name, "group": "overall (micro)", "value": "all", "n": block["n"],
             "n_errors": block["n_errors"],
             **{m: v["value"] for m, v in block["metrics"].items()},
             **{f"{m}_ci_low": (v["ci"] or [None])[0] for m, v in block["metrics"].items()},
             **{f"{m}_ci_high": (v["ci"] or [None, None])[1]
                for m, v in block["metrics"].items()}}]
    for key, groups in block.get("groups", {}).items():
        for value, group in groups.items():
            rows.append({"task": task_name, "group": key, "value": value, "n": group["n"],
                         "n_errors": group.get("n_errors", 0),
                         **{m: v["value"] for m, v in group["metrics"].items()},
                         **{f"{m}_ci_low": v["ci"][0] for m, v in group["metrics"].items()},
                         **{f"{m}_ci_high": v["ci"][1] for m, v in group["metrics"].items()}})
        rows.append({"task": task_name, "group": key, "value": "macro",
                     "n": block["n"], "n_errors": block["n_errors"],
                     **{m: v["value"] for m, v in block["macro"][key].items()},
                     **{f"{m}_ci_low": v["ci"][0] for m, v in block["macro"][key].items()},
                     **{f"{m}_ci_high": v["ci"][1] for m, v in block["macro"][key].items()}})
    return rows


def write_tables(run_dir: Path, payload: Mapping[str, Any]) -> None:
    """tables.md (percentages with 95% bootstrap intervals) and ``<task>/<task>.csv``."""
    import pandas as pd

    lines = [f"# Results: {payload['run_id']}", "",
             f"Model `{payload['model']['name']}`; healthbench {payload['harness']['version']}"
             f" ({payload['harness']['git_sha'][:10]}). Values are % with 95% bootstrap "
             "intervals where the metric is a fraction; n counts scored samples, errors are "
             "counted apart.", ""]
    for task_name, block in payload["tasks"].items():
        frame = pd.DataFrame(task_rows(task_name, block))
        csv_path = run_dir / task_name / f"{task_name}.csv"
        atomic_write_text(csv_path, frame.to_csv(index=False))
        metric_names = list(block["metrics"])
        info = block.get("metric_info") or {}
        protocol = f", protocol {block['protocol']}" if block.get("protocol") else ""
        lines += [f"## {task_name} (v{block['version']}{protocol})", "",
                  "| group | value | n | errors | " + " | ".join(metric_names) + " |",
                  "|---|---|---:|---:|" + "---:|" * len(metric_names)]
        lines.append(_row("overall (micro)", "all", block["n"], block["n_errors"],
                          block["metrics"], metric_names, info))
        for key, groups in block.get("groups", {}).items():
            for value, group in groups.items():
                lines.append(_row(key, value, group["n"], group.get("n_errors", 0),
                                  group["metrics"], metric_names, info))
            lines.append(_row(key, "**macro**", block["n"], block["n_errors"],
                              block["macro"][key], metric_names, info))
        lines.append("")
        lines += robustness_lines(block) + calibration_lines(block)  # results/choice_tables.py
    atomic_write_text(run_dir / "tables.md", "\n".join(lines) + "\n")


def _row(group: str, value: str, n: int, errors: int, metrics: Mapping[str, Any],
         names: list[str], info: Mapping[str, Any]) -> str:
    cells = [_fmt(metrics[m], (info.get(m) or {}).get("percent", _is_fraction(m)))
             if m in metrics else "–" for m in names]
    return f"| {group} | {value} | {n} | {errors} | " + " | ".join(cells) + " |"

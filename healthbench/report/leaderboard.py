"""leaderboard.md from every results/<run-id>/results.json (a simple table per task).

Runs of different task versions are never ranked together: each (task, version) gets its own
table. The leaderboard issue extends this with HTML, plots and reference numbers.
"""
from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from healthbench.samples_io import atomic_write_text

PRIMARY = ("accuracy", "micro_f1", "bleu4", "ssim", "exact_match")


def load_runs(results_dir: Path) -> list[dict[str, Any]]:
    runs = []
    for path in sorted(results_dir.glob("*/results.json")):
        try:
            runs.append(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, json.JSONDecodeError):
            continue  # a run being written or a foreign file: skipped, not fatal
    return runs


def primary_metric(block: dict[str, Any]) -> str:
    for name in PRIMARY:
        if name in block["metrics"]:
            return name
    return next(iter(block["metrics"]))


def render_leaderboard(runs: list[dict[str, Any]]) -> str:
    tables: dict[tuple[str, str], list[tuple[dict, dict]]] = defaultdict(list)
    for run in runs:
        for task, block in run.get("tasks", {}).items():
            tables[(task, block.get("version", "?"))].append((run, block))
    lines = ["# healthbench leaderboard", "",
             "Generated from `results/` by `healthbench leaderboard`. Values are % (95% bootstrap "
             "interval); macro = mean over the first group key's values.", ""]
    for (task, version), entries in sorted(tables.items()):
        metric = primary_metric(entries[0][1])
        lines += [f"## {task} (v{version}) — {metric}", "",
                  "| rank | model | run | n | errors | micro | macro |",
                  "|---:|---|---|---:|---:|---:|---:|"]
        def key(entry: tuple[dict, dict]) -> float:
            value = entry[1]["metrics"].get(metric, {}).get("value")
            return -(value if value is not None else float("-inf"))
        for rank, (run, block) in enumerate(sorted(entries, key=key), 1):
            micro = block["metrics"].get(metric, {})
            macro_all = block.get("macro", {})
            macro = next(iter(macro_all.values()), {}).get(metric, {}) if macro_all else {}
            lines.append(f"| {rank} | {run['model']['name']} | {run['run_id']} | {block['n']} | "
                         f"{block['n_errors']} | {_pct(micro)} | {_pct(macro)} |")
        lines.append("")
    return "\n".join(lines) + "\n"


def _pct(metric: dict[str, Any]) -> str:
    value = metric.get("value") if metric else None
    if value is None:
        return "–"
    lo, hi = metric.get("ci") or (None, None)
    return f"{value * 100:.1f}" + (f" ({lo * 100:.1f}–{hi * 100:.1f})" if lo is not None
                                   and hi is not None else "")


def write_leaderboard(results_dir: Path, out: Path) -> Path:
    atomic_write_text(out, render_leaderboard(load_runs(results_dir)))
    return out


def main(args: Any) -> int:
    """``healthbench leaderboard``."""
    print(f"wrote {write_leaderboard(args.results, args.out)}")
    return 0

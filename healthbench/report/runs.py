"""Finished runs as the report tools read them: results.json plus ``<task>/samples.jsonl``.

Shared by ``compare``, ``leaderboard`` and the HTML site, so that all three read runs, scale
metrics and name models the same way.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Mapping

from healthbench.scoring.aggregate import group_values  # noqa: F401 - one grouping rule, re-exported
from healthbench.results.write import FRACTION_METRICS
from healthbench.results.samples import read_samples
from healthbench.core.types import SampleResult

#: Metrics where lower is better, when no Metric object is at hand to say so.
LOWER_IS_BETTER = {"parse_failure", "error_rate", "refusal_rate", "mse", "mae", "rmse", "lpips",
                   "fid"}
#: Metrics in [0, 1] shown (and compared, with ``--margin``) in points of the % scale.
_PERCENT_PREFIXES = ("accuracy", "f1", "micro_f1", "macro_f1", "bleu", "rouge", "meteor",
                     "ssim", "ms_ssim", "exact_match", "recall", "precision", "auroc", "auc")
_PERCENT_SUFFIXES = ("_accuracy", "_f1", "_recall", "_precision", "_rate", "_failure")


@dataclass(frozen=True)
class Run:
    """One run directory: its results.json and, read on demand, its per-task samples."""

    path: Path
    results: Mapping[str, Any]
    _samples: dict[str, dict[str, SampleResult]] = field(default_factory=dict, compare=False,
                                                         repr=False)

    @property
    def run_id(self) -> str:
        return str(self.results.get("run_id") or self.path.name)

    @property
    def model(self) -> Mapping[str, Any]:
        return self.results.get("model") or {}

    @property
    def tasks(self) -> Mapping[str, Mapping[str, Any]]:
        return self.results.get("tasks") or {}

    @cached_property
    def harness_version(self) -> str:
        harness = self.results.get("harness") or {}
        sha = str(harness.get("git_sha") or "")
        version = str(harness.get("version") or "?")
        return f"{version} ({sha[:7]})" if sha and sha != "unknown" else version

    def samples_path(self, task: str) -> Path:
        return self.path / task / "samples.jsonl"

    def samples(self, task: str) -> dict[str, SampleResult]:
        """Finished samples of ``task`` by id ({} when the run has no samples file for it)."""
        if task not in self._samples:
            self._samples[task] = read_samples(self.samples_path(task))
        return self._samples[task]


def load_run(path: Path) -> Run:
    """A run from its directory (or its results.json); a clear error when it is not one."""
    path = Path(path)
    results_path = path if path.name == "results.json" else path / "results.json"
    if not results_path.is_file():
        raise FileNotFoundError(f"{path}: not a run directory (no results.json)")
    try:
        results = json.loads(results_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{results_path}: not valid JSON ({exc})") from exc
    if not isinstance(results, dict) or not isinstance(results.get("tasks"), dict):
        raise ValueError(f"{results_path}: not a healthbench results.json (no 'tasks' mapping)")
    return Run(results_path.parent, results)


def load_runs(results_dir: Path) -> list[Run]:
    """Every run under ``results_dir`` (one level deep); unreadable ones are skipped."""
    runs = []
    for path in sorted(Path(results_dir).glob("*/results.json")):
        try:
            runs.append(load_run(path))
        except (OSError, ValueError):
            continue  # a run being written or a foreign file: skipped, not fatal
    return runs


Info = Mapping[str, Any] | None  # a task block's ``metric_info``: {metric: {percent, ...}}


def percent_scale(metric: str, info: Info = None) -> float:
    """100 for metrics in [0, 1] (shown as %, margins in points), else 1 (e.g. PSNR in dB).

    What the run declared (``tasks.<t>.metric_info``, written from the Metric objects) decides;
    the name-based guess is only for results written without it (older runs, lm-eval blocks)."""
    declared = (info or {}).get(metric) or {}
    if "percent" in declared:
        return 100.0 if declared["percent"] else 1.0
    name = metric.lower()
    if name in FRACTION_METRICS or name.startswith(_PERCENT_PREFIXES) \
            or name.endswith(_PERCENT_SUFFIXES):
        return 100.0
    return 1.0


def higher_is_better(metric: str, info: Info = None) -> bool:
    """The direction of a metric: as declared by the run, else guessed from its name."""
    declared = (info or {}).get(metric) or {}
    if "higher_is_better" in declared:
        return bool(declared["higher_is_better"])
    name = metric.lower()
    return name not in LOWER_IS_BETTER and not name.endswith(
        tuple("_" + n for n in LOWER_IS_BETTER))


def format_value(value: float | None, metric: str, ci: Any = None, info: Info = None) -> str:
    """``36.4 (18.2–54.5)`` for a fraction metric, ``28.31 (27.9–28.8)`` for others."""
    if value is None:
        return "–"
    scale = percent_scale(metric, info)
    digits = 1 if scale == 100.0 else 2
    text = f"{value * scale:.{digits}f}"
    lo, hi = (list(ci) + [None, None])[:2] if ci else (None, None)
    if lo is not None and hi is not None:
        text += f" ({lo * scale:.{digits}f}–{hi * scale:.{digits}f})"
    return text


def model_variant(model: Mapping[str, Any]) -> str:
    """What distinguishes this model from others of the same plugin (variant, checkpoint)."""
    info = model.get("info") or {}
    args = model.get("args") or {}
    for source in (info, args):
        for key in ("variant", "checkpoint", "model_path", "pretrained", "model", "kind"):
            value = source.get(key)
            if value not in (None, ""):
                return str(value)
    return ""


_PARAMETER_COUNT = re.compile(r"\d+(?:\.\d+)?\s*[KMBT]", re.IGNORECASE)


def model_size(model: Mapping[str, Any]) -> str:
    """``3.8B``, ``14M``… the model's parameter count, from model.info (``parameters``,
    ``params`` or ``num_parameters``, or a ``size`` already written as a count such as
    ``"14B"``). Nothing else: an image baseline's ``size: 256`` is a resolution, not a size."""
    info = model.get("info") or {}
    count = info.get("parameters") or info.get("params") or info.get("num_parameters")
    if isinstance(count, (int, float)) and not isinstance(count, bool) and count > 0:
        for unit, scale in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("K", 1e3)):
            if count >= scale:
                return f"{count / scale:.3g}{unit}"
        return str(int(count))
    size = info.get("size")
    if isinstance(size, str) and _PARAMETER_COUNT.fullmatch(size.strip()):
        return size.strip()
    return ""


def suite_of(task: str, block: Mapping[str, Any]) -> str:
    """The suite a task belongs to: its YAML file's folder under ``tasks/`` (else its name)."""
    source = str(block.get("source") or "")
    match = re.search(r"(?:^|/)tasks/([^/]+)/[^/]+\.ya?ml$", source.replace("\\", "/"))
    return match.group(1) if match else task

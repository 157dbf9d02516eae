"""Finished runs as the report tools read them: results.json plus ``<task>/samples.jsonl``.

Shared by ``compare``, ``leaderboard`` and the HTML site, so that all three read runs and name
models the same way. A metric's scale and direction are the run's own declaration
(``TaskResult.info``), never guessed here.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from healthbench.scoring.aggregate import group_values  # noqa: F401 - one grouping rule, re-exported
from healthbench.results.samples import read_samples
from healthbench.results.schema import ModelInfo, Results, TaskResult, read_results
from healthbench.core.types import SampleResult


@dataclass(frozen=True)
class Run:
    """One run directory: its typed results.json and, read on demand, its per-task samples."""

    path: Path
    results: Results
    _samples: dict[str, dict[str, SampleResult]] = field(default_factory=dict, compare=False,
                                                         repr=False)

    @property
    def run_id(self) -> str:
        return self.results.run_id or self.path.name

    @property
    def model(self) -> ModelInfo:
        return self.results.model

    @property
    def tasks(self) -> Mapping[str, TaskResult]:
        return self.results.tasks

    @property
    def harness_version(self) -> str:
        return self.results.harness_label

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
    return Run(results_path.parent, read_results(results_path))


def load_runs(results_dir: Path) -> list[Run]:
    """Every run under ``results_dir`` (one level deep); unreadable ones are skipped."""
    runs = []
    for path in sorted(Path(results_dir).glob("*/results.json")):
        try:
            runs.append(load_run(path))
        except (OSError, ValueError):
            continue  # a run being written or a foreign file: skipped, not fatal
    return runs


def _model(model: ModelInfo | Mapping[str, Any]) -> ModelInfo:
    return model if isinstance(model, ModelInfo) else ModelInfo.from_json(model)


def model_variant(model: ModelInfo | Mapping[str, Any]) -> str:
    """What distinguishes this model from others of the same plugin (variant, checkpoint)."""
    model = _model(model)
    for source in (model.info, model.args):  # free-form: what the plugin chose to say
        for key in ("variant", "checkpoint", "model_path", "pretrained", "model", "kind"):
            value = source.get(key)
            if value not in (None, ""):
                return str(value)
    return ""


_PARAMETER_COUNT = re.compile(r"\d+(?:\.\d+)?\s*[KMBT]", re.IGNORECASE)


def model_size(model: ModelInfo | Mapping[str, Any]) -> str:
    """``3.8B``, ``14M``… the model's parameter count, from model.info (``parameters``,
    ``params`` or ``num_parameters``, or a ``size`` already written as a count such as
    ``"14B"``). Nothing else: an image baseline's ``size: 256`` is a resolution, not a size."""
    info = _model(model).info
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


def suite_of(task: str, block: TaskResult) -> str:
    """The suite a task belongs to: its YAML file's folder under ``tasks/`` (else its name)."""
    source = block.source
    match = re.search(r"(?:^|/)tasks/([^/]+)/[^/]+\.ya?ml$", source.replace("\\", "/"))
    return match.group(1) if match else task

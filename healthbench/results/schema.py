"""results.json as typed objects: the one writer and the one reader of the file.

``run.evaluate``, ``scoring.aggregate`` and the lm-eval adapter build these objects; every report
(tables.md, leaderboard, HTML site, compare) reads them. The contract keys (schema_version,
run_id, model, harness, env, seed, command, tasks.<t>.{version, data_checksum, n, n_errors,
metrics, groups}) are kept; keys this module does not know are carried through unchanged in
``extra`` so a newer writer's additions survive a read and a rewrite.

A metric's scale (a fraction shown as %, or its own unit) and direction come only from the task
block's ``metric_info``. The one exception is :func:`legacy_metric_info`, used by the reader for a
results.json written before every block declared both (older runs, hand-written files, lm-eval
blocks of harness versions that recorded only the direction); nothing else guesses from a name.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping, Sequence

SCHEMA_VERSION = 1


class ResultsFormatError(ValueError):
    """A file that is not a healthbench results.json; the message names the file and key."""


# --- one metric ------------------------------------------------------------------------------

@dataclass(frozen=True)
class MetricInfo:
    """How to read a metric: ``percent`` (a fraction in [0, 1], shown as % and compared in
    points) or its own unit (PSNR in dB, sacreBLEU 0-100, MSE), and its direction."""

    percent: bool
    higher_is_better: bool = True
    #: how to rebuild the metric without the task YAML: its registered name in
    #: ``core.catalog.METRICS`` and the JSON arguments it was built with (``args`` is None when
    #: they are not JSON); both None in files written before they were recorded
    registered: str | None = None
    args: Mapping[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"percent": self.percent, "higher_is_better": self.higher_is_better}
        if self.registered is not None:
            out["registered"] = self.registered
        if self.args is not None:
            out["args"] = dict(self.args)
        return out


#: How a raw metric reads when nothing declares otherwise (compare's own error rate excepted).
RAW = MetricInfo(percent=False)

# The name rules of harness versions that did not declare metric_info; only for legacy files.
_LEGACY_PERCENT_PREFIXES = ("accuracy", "f1", "micro_f1", "macro_f1", "bleu", "rouge", "meteor",
                            "ssim", "ms_ssim", "exact_match", "recall", "precision", "auroc",
                            "auc")
_LEGACY_PERCENT_SUFFIXES = ("_accuracy", "_f1", "_recall", "_precision", "_rate", "_failure")
_LEGACY_LOWER = ("parse_failure", "error_rate", "refusal_rate", "mse", "mae", "rmse", "lpips",
                 "fid")


def legacy_metric_info(name: str, declared: Mapping[str, Any], lmeval: bool) -> MetricInfo:
    """The legacy path: a metric's info in a results.json that does not fully declare it.

    What the file declares wins. A missing direction follows the old lower-is-better names
    (mse, parse_failure, …). A missing scale: an lm-eval block's metrics stay in lm-eval's own
    units (lm-eval mixes fractions with 0-100 sacreBLEU and declares no scale, so guessing from
    the name is what printed BLEU 35.2 as 3520); other blocks follow the old name rule (accuracy,
    *_f1, bleu*, ssim… are fractions)."""
    lower = name.lower()
    if "higher_is_better" in declared:
        higher = bool(declared["higher_is_better"])
    else:
        higher = lower not in _LEGACY_LOWER and not lower.endswith(
            tuple("_" + n for n in _LEGACY_LOWER))
    if "percent" in declared:
        percent = bool(declared["percent"])
    elif lmeval:
        percent = False
    else:
        percent = lower.startswith(_LEGACY_PERCENT_PREFIXES) or lower.endswith(
            _LEGACY_PERCENT_SUFFIXES)
    registered, args = declared.get("registered"), declared.get("args")
    return MetricInfo(percent=percent, higher_is_better=higher,
                      registered=registered if isinstance(registered, str) else None,
                      args=dict(args) if isinstance(args, Mapping) else None)


@dataclass
class MetricValue:
    """A metric over some samples: its value (None when undefined), 95% interval ``[lo, hi]``
    (``[None, None]`` when none is claimed), and ``n`` (samples) or ``n_groups`` (macro)."""

    value: float | None
    ci: Sequence[float | None] | None = (None, None)
    n: int | None = None
    n_groups: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def bounds(self) -> tuple[float | None, float | None]:
        lo, hi = (list(self.ci or []) + [None, None])[:2]
        return lo, hi

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"value": _finite(self.value),
                               "ci": None if self.ci is None else list(self.ci)}
        if self.n is not None:
            out["n"] = self.n
        if self.n_groups is not None:
            out["n_groups"] = self.n_groups
        return {**out, **self.extra}

    @classmethod
    def from_json(cls, data: Any, where: str) -> MetricValue:
        data = _mapping(data, where)
        return cls(value=_number(data.get("value"), f"{where}.value"),
                   ci=data.get("ci"), n=data.get("n"), n_groups=data.get("n_groups"),
                   extra=_rest(data, ("value", "ci", "n", "n_groups")))


def _finite(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else value


@dataclass
class GroupResult:
    """One value of a ``group_by`` key: its scored and errored sample counts and metrics."""

    n: int
    metrics: dict[str, MetricValue]
    n_errors: int | None = 0

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"n": self.n}
        if self.n_errors is not None:
            out["n_errors"] = self.n_errors
        return {**out, "metrics": {k: v.to_json() for k, v in self.metrics.items()}}

    @classmethod
    def from_json(cls, data: Any, where: str) -> GroupResult:
        data = _mapping(data, where)
        return cls(n=int(data.get("n") or 0), n_errors=data.get("n_errors"),
                   metrics=_metrics(data.get("metrics"), f"{where}.metrics"))


# --- one task --------------------------------------------------------------------------------

@dataclass
class TaskResult:
    """``tasks.<name>``: micro metrics, per-group metrics, macro over groups, and what the
    numbers mean (``metric_info``) and where they came from (version, data, protocol)."""

    version: str
    n: int
    n_errors: int
    metrics: dict[str, MetricValue]
    metric_info: dict[str, MetricInfo] = field(default_factory=dict)
    protocol: str | None = None
    data_checksum: str = ""
    #: per dataset file, its checksum: a changed checksum then names the files that changed
    data_files: dict[str, str] | None = None
    source: str = ""
    output: str = "text"
    scorer: str = "generate"
    group_by: list[str] = field(default_factory=list)
    n_total: int | None = None
    groups: dict[str, dict[str, GroupResult]] = field(default_factory=dict)
    macro: dict[str, dict[str, MetricValue]] = field(default_factory=dict)
    engine: dict[str, Any] | None = None  # lm-eval blocks: which lm-eval task/group and version
    seconds: float | None = None
    judge: dict[str, Any] | None = None  # llm_judge tasks: the judge's identity and counts
    #: the seeds this task used: subsample, bootstrap and each metric's official fallback
    seeds: dict[str, Any] | None = None
    #: option-order robustness (``--permute-options``: the orders asked and their summary) and
    #: calibration of likelihood-scored tasks (docs/robustness.md)
    permutations: Any = None
    robustness: dict[str, Any] | None = None
    calibration: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def info(self, metric: str) -> MetricInfo:
        """The declared scale and direction of ``metric`` (KeyError when it is not declared:
        the reader fills every metric of a legacy file, so that is a writer's bug)."""
        return self.metric_info[metric]

    def metric(self, name: str) -> MetricValue | None:
        return self.metrics.get(name)

    def macro_metric(self, key: str, name: str) -> MetricValue | None:
        return self.macro.get(key, {}).get(name)

    def group(self, key: str, value: str) -> GroupResult | None:
        return self.groups.get(key, {}).get(value)

    @property
    def group_keys(self) -> list[str]:
        """The task's ``group_by`` keys (the ``groups`` keys for a file without it)."""
        return list(self.group_by or self.groups)

    @property
    def judge_fingerprint(self) -> str:
        return str((self.judge or {}).get("fingerprint") or "")

    @property
    def is_lmeval(self) -> bool:
        return bool(self.engine) and self.engine.get("name") == "lm-eval"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "version": self.version, "protocol": self.protocol,
            "data_checksum": self.data_checksum,
            **({} if self.data_files is None else {"data_files": self.data_files}),
            "source": self.source, "output": self.output,
            "scorer": self.scorer, "group_by": list(self.group_by),
            "metric_info": {k: v.to_json() for k, v in self.metric_info.items()},
            "n": self.n, "n_errors": self.n_errors}
        if self.n_total is not None:
            out["n_total"] = self.n_total
        out["metrics"] = {k: v.to_json() for k, v in self.metrics.items()}
        out["groups"] = {key: {value: g.to_json() for value, g in groups.items()}
                         for key, groups in self.groups.items()}
        out["macro"] = {key: {k: v.to_json() for k, v in metrics.items()}
                        for key, metrics in self.macro.items()}
        for key in ("seeds", "permutations", "robustness", "calibration", "engine", "seconds",
                    "judge"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        return {**out, **self.extra}

    @classmethod
    def from_summary(cls, summary: Mapping[str, Any], **fields: Any) -> TaskResult:
        """A block from ``scoring.aggregate.summarize_task``'s counts and metrics plus what the
        caller knows (version, protocol, metric_info…). The scoring layer sits below this one,
        so it hands over plain values and the block is typed here, once."""
        return replace(cls.from_json(summary, "summary"), **fields)

    @classmethod
    def from_json(cls, data: Any, where: str) -> TaskResult:
        data = _mapping(data, where)
        metrics = _metrics(data.get("metrics"), f"{where}.metrics")
        groups = {str(key): {str(value): GroupResult.from_json(g, f"{where}.groups.{key}.{value}")
                             for value, g in _mapping(values, f"{where}.groups.{key}").items()}
                  for key, values in _mapping(data.get("groups") or {}, f"{where}.groups").items()}
        macro = {str(key): _metrics(values, f"{where}.macro.{key}")
                 for key, values in _mapping(data.get("macro") or {}, f"{where}.macro").items()}
        engine = data.get("engine")
        block = cls(
            version=str(data.get("version", "?")), n=int(data.get("n") or 0),
            n_errors=int(data.get("n_errors") or 0), metrics=metrics,
            protocol=data.get("protocol"),
            data_checksum=str(data.get("data_checksum") or ""),
            data_files=data.get("data_files"),
            source=str(data.get("source") or ""), output=str(data.get("output") or "text"),
            scorer=str(data.get("scorer") or "generate"),
            group_by=[str(k) for k in data.get("group_by") or []], n_total=data.get("n_total"),
            groups=groups, macro=macro, engine=engine, seconds=data.get("seconds"),
            judge=data.get("judge") or None, seeds=data.get("seeds"),
            permutations=data.get("permutations"), robustness=data.get("robustness"),
            calibration=data.get("calibration"),
            extra=_rest(data, _TASK_KEYS))
        declared = _mapping(data.get("metric_info") or {}, f"{where}.metric_info")
        names = list(declared) + [m for m in metrics if m not in declared]
        block.metric_info = {str(m): legacy_metric_info(str(m), _mapping(
            declared.get(m) or {}, f"{where}.metric_info.{m}"), block.is_lmeval) for m in names}
        return block


_TASK_KEYS = ("version", "protocol", "data_checksum", "data_files", "source", "output", "scorer", "group_by",
              "metric_info", "n", "n_errors", "n_total", "metrics", "groups", "macro", "engine",
              "seconds", "judge", "seeds", "permutations", "robustness", "calibration")


# --- the run ---------------------------------------------------------------------------------

@dataclass
class ModelInfo:
    """``model``: the plugin name, its arguments (secrets removed), their hash and what the
    plugin says about itself (``describe()``: variant, parameter count…; free-form)."""

    name: str
    args: dict[str, Any] = field(default_factory=dict)
    args_hash: str | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "args": self.args}
        if self.args_hash is not None:
            out["args_hash"] = self.args_hash
        return {**out, "info": self.info}

    @classmethod
    def from_json(cls, data: Any, where: str = "model") -> ModelInfo:
        data = _mapping(data or {}, where)
        return cls(name=str(data.get("name", "?")), args=dict(data.get("args") or {}),
                   args_hash=data.get("args_hash"), info=dict(data.get("info") or {}))


@dataclass
class Results:
    """The whole results.json of one run."""

    run_id: str
    model: ModelInfo
    tasks: dict[str, TaskResult] = field(default_factory=dict)
    harness_version: str = "?"
    git_sha: str = ""
    env: dict[str, Any] = field(default_factory=dict)
    seed: int | None = None
    #: where the run's seed went (model, subsample, bootstrap, official_fallback)
    seeds: dict[str, Any] | None = None
    command: str = ""
    limit: int | None = None
    subsample: int | None = None
    started: str | None = None
    ended: str | None = None
    schema_version: int = SCHEMA_VERSION
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def harness_label(self) -> str:
        """``0.1.0 (0123456)``: the version, and the commit when it is known."""
        sha = self.git_sha
        return f"{self.harness_version} ({sha[:7]})" if sha and sha != "unknown" \
            else self.harness_version

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "schema_version": self.schema_version, "run_id": self.run_id,
            "model": self.model.to_json(),
            "harness": {"version": self.harness_version, "git_sha": self.git_sha},
            "env": self.env, "seed": self.seed,
            **({} if self.seeds is None else {"seeds": self.seeds}),
            "command": self.command, "limit": self.limit,
            "subsample": self.subsample, "started": self.started,
            "tasks": {name: block.to_json() for name, block in self.tasks.items()}}
        if self.ended is not None:
            out["ended"] = self.ended
        return {**out, **self.extra}

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2, allow_nan=False) + "\n"

    @classmethod
    def from_json(cls, data: Any, where: str = "results.json") -> Results:
        data = _mapping(data, where)
        if not isinstance(data.get("tasks"), dict):
            raise ResultsFormatError(f"{where}: not a healthbench results.json (no 'tasks' "
                                     "mapping)")
        harness = _mapping(data.get("harness") or {}, f"{where}: harness")
        return cls(
            run_id=str(data.get("run_id") or ""), model=ModelInfo.from_json(data.get("model")),
            tasks={str(name): TaskResult.from_json(block, f"{where}: tasks.{name}")
                   for name, block in data["tasks"].items()},
            harness_version=str(harness.get("version") or "?"),
            git_sha=str(harness.get("git_sha") or ""), env=dict(data.get("env") or {}),
            seed=data.get("seed"), seeds=data.get("seeds"),
            command=str(data.get("command") or ""),
            limit=data.get("limit"), subsample=data.get("subsample"),
            started=data.get("started"), ended=data.get("ended"),
            schema_version=int(data.get("schema_version") or SCHEMA_VERSION),
            extra=_rest(data, ("schema_version", "run_id", "model", "harness", "env", "seed",
                               "seeds", "command", "limit", "subsample", "started", "tasks", "ended")))


def read_results(path: Path) -> Results:
    """A run's results.json (the file, or the run folder holding it), validated."""
    path = Path(path)
    path = path if path.name == "results.json" else path / "results.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path.parent}: not a run directory (no results.json)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ResultsFormatError(f"{path}: not valid JSON ({exc})") from exc
    return Results.from_json(data, str(path))


# --- helpers ---------------------------------------------------------------------------------

def _mapping(data: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise ResultsFormatError(f"{where}: expected a mapping, got {type(data).__name__}")
    return data


def _number(value: Any, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ResultsFormatError(f"{where}: expected a number or null, got {value!r}")
    return value


def _metrics(data: Any, where: str) -> dict[str, MetricValue]:
    return {str(name): MetricValue.from_json(value, f"{where}.{name}")
            for name, value in _mapping(data or {}, where).items()}


def _rest(data: Mapping[str, Any], known: Sequence[str]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k not in known}

"""A whole run: tasks × one model → results/<run-id>/ (samples, results.json, tables).

Kept short on purpose: loading, running, scoring and aggregating each live in their own module;
this one only wires them together and records what was run.
"""
from __future__ import annotations

import logging
import shlex
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

from healthbench import __version__
from healthbench.scoring.aggregate import summarize_task
from healthbench.core.catalog import METRICS, MODELS
from healthbench.run import choice_reports
from healthbench.run.prepare import ensure_sample_data, load_task_data
from healthbench.run.distributed import barrier, local_device, rank_and_world
from healthbench.scoring.base import Metric
from healthbench.run.judge_client import create_judge
from healthbench.scoring.judge import bind_judge, judge_summary
from healthbench.models.base import Model, create_model, public_args
from healthbench.run.resume import args_hash, check_identity, record_identity
from healthbench.results.write import environment, git_sha, write_results, write_tables
from healthbench.run.runner import RunSettings, check_capabilities, run_task
from healthbench.taskconfig.schema import TaskConfig, with_protocol
from healthbench.core.types import Sample, SampleError

log = logging.getLogger("healthbench")


@dataclass
class RunSpec:
    model: str
    model_args: dict[str, Any]
    tasks: list[TaskConfig]
    data_root: Path
    output_path: Path
    run_id: str
    seed: int = 0
    limit: int | None = None
    subsample: int | None = None
    device: str | None = None
    settings: RunSettings = field(default_factory=RunSettings)
    command: str = field(default_factory=lambda: shlex.join(sys.argv))
    # "lmeval:<name>" tasks (prefix removed) run through lm-eval: healthbench/lmeval_bridge.py
    lmeval_tasks: list[str] = field(default_factory=list)
    lmeval_include_paths: list[Path] = field(default_factory=list)
    lmeval_allow_task_code: bool = False  # run `!function` task code (lm-eval task YAML)
    lmeval_allow_download: bool = False  # let lm-eval fetch datasets from the HF hub
    # The model that grades open answers for llm_judge metrics (healthbench/metrics/judge.py);
    # None: those answers are reported as not scored. Cache default: <output_path>/.judge_cache
    judge: str | None = None
    judge_args: dict[str, Any] = field(default_factory=dict)
    judge_cache: Path | None = None
    # Re-ask multiple-choice questions in other option orders: "cyclic" or N (overrides each
    # task's ``permutations:``); see healthbench/run/choice_reports.py
    permute_options: str | int | None = None


def default_run_id(model: str) -> str:
    """``<model>_<date-time>-<4 hex>``: the random part keeps two jobs started in the same
    second from sharing (and resuming) one folder."""
    import secrets

    return f"{model}_{datetime.now().strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"


def build_metrics(task: TaskConfig) -> list[Metric]:
    """The task's metric objects; bad arguments or two metrics with one name name the file."""
    from healthbench.taskconfig.schema import TaskConfigError

    metrics = []
    for i, call in enumerate(task.metrics):
        try:
            factory = METRICS.get(call.name)
            metrics.append(factory(**with_protocol(factory, call.args, task, f"metrics[{i}]")))
        except (TypeError, ValueError) as exc:
            raise TaskConfigError(f"{task.source}: key 'metrics[{i}]' ({call.name}): {exc}") \
                from exc
    names = [m.name for m in metrics]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise TaskConfigError(f"{task.source}: metrics named twice: {', '.join(repeated)}")
    return metrics


def subsample_items(items: list, k: int, seed: int) -> list:
    """A deterministic subsample in dataset order: ``random.Random(seed).sample(range(N), k)``,
    sorted (the M3LLM-v2 ``eval_sample_num`` rule), so the same seed picks the same samples."""
    import random

    if k >= len(items):
        return list(items)
    picked = sorted(random.Random(seed).sample(range(len(items)), k))
    return [items[i] for i in picked]


def dedupe(items: Sequence[Sample | SampleError]) -> list[Sample | SampleError]:
    """A repeated id would make resume ambiguous: later repeats become errors under a new id."""
    seen: dict[str, int] = {}
    out: list[Sample | SampleError] = []
    for item in items:
        if item.id in seen:
            seen[item.id] += 1
            out.append(SampleError(f"{item.id}#dup{seen[item.id]}", f"sample {item.id!r}",
                                   "duplicate sample id in the dataset"))
        else:
            seen[item.id] = 0
            out.append(item)
    return out


def _load_all(spec: RunSpec) -> list[tuple[TaskConfig, list[Sample | SampleError], str]]:
    """Every task's samples, before any model is loaded: a missing dataset fails in seconds."""
    rank, world = rank_and_world()
    if world > 1:  # one rank builds bundled sample data; the others wait for it
        if rank == 0:
            for task in spec.tasks:
                ensure_sample_data(task, spec.data_root)
        barrier()
    out = []
    for task in spec.tasks:
        loaded, checksum = load_task_data(task, spec.data_root)
        items = dedupe(loaded.items)
        if spec.subsample is not None:
            items = subsample_items(items, spec.subsample, spec.seed)
        if spec.limit is not None:
            items = items[:spec.limit]
        out.append((task, items, checksum))
    return out


def evaluate(spec: RunSpec, model: Model | None = None) -> dict[str, Any]:
    """Run every task of ``spec``; returns the results.json payload (also written to disk).

    Order: capabilities (from the plugin class) and data are checked first, then the run
    directory's identity (no resuming with another model), and only then is the model loaded.
    """
    run_dir = spec.output_path / spec.run_id
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    rank, world = rank_and_world()
    if model is None:
        check_capabilities(MODELS.get(spec.model), spec.model, spec.tasks)
    prepared = _load_all(spec)
    identity = check_identity(run_dir, spec.model, spec.model_args, spec.tasks)
    if model is None:
        model = create_model(spec.model, spec.model_args, device=local_device(spec.device))
    check_capabilities(model, spec.model, spec.tasks)
    if rank == 0:
        record_identity(run_dir, identity)
    judge = None
    if spec.judge:
        judge = create_judge(spec.judge, spec.judge_args,
                             spec.judge_cache or spec.output_path / ".judge_cache")
    lmeval_plan = None
    if spec.lmeval_tasks:
        from healthbench.run import lmeval as lmeval_bridge

        lmeval_plan = lmeval_bridge.prepare(spec.lmeval_tasks, spec.lmeval_include_paths,
                                            model, spec.model,
                                            allow_task_code=spec.lmeval_allow_task_code,
                                            allow_download=spec.lmeval_allow_download)
    payload: dict[str, Any] = {
        "schema_version": 1, "run_id": spec.run_id,
        "model": {"name": spec.model, "args": public_args(spec.model_args),
                  "args_hash": args_hash(spec.model_args), "info": model.describe()},
        "harness": {"version": __version__, "git_sha": git_sha()},
        "env": environment(), "seed": spec.seed, "command": spec.command,
        "limit": spec.limit, "subsample": spec.subsample, "started": started, "tasks": {},
    }
    try:
        for task, items, checksum in prepared:
            t0 = time.perf_counter()
            metrics = bind_judge(build_metrics(task), judge)
            items, choices = choice_reports.plan(task, items, spec.permute_options, spec.seed)
            records = run_task(task, model, metrics, items,
                               run_dir / task.name / "samples.jsonl", spec.settings)
            if rank != 0:
                continue  # rank 0 merged the shards and aggregates; see healthbench.run.distributed
            records, choice_blocks = choices.report(records, spec.seed)  # original order only
            block = {**summarize_task(metrics, records, task.group_by, spec.seed), **choice_blocks}
            payload["tasks"][task.name] = {
                "version": task.version, "protocol": task.protocol,
                "data_checksum": checksum, "source": task.source,
                "output": task.output, "scorer": task.scorer, "group_by": list(task.group_by),
                "metric_info": {m.name: {"percent": m.percent,
                                         "higher_is_better": m.higher_is_better}
                                for m in metrics},
                **block, "seconds": round(time.perf_counter() - t0, 2)}
            judged = judge_summary(metrics, records, judge)
            if judged is not None:
                payload["tasks"][task.name]["judge"] = judged
            payload["ended"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
            write_results(run_dir, payload)  # after every task: a later crash keeps this one
        if lmeval_plan is not None and rank == 0:  # lm-eval tasks are not sharded
            payload["tasks"].update(lmeval_bridge.run(
                lmeval_plan, model, run_dir, seed=spec.seed, limit=spec.limit,
                subsample=spec.subsample, batch_size=spec.settings.batch_size))
            payload["ended"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
            write_results(run_dir, payload)
    finally:
        model.close()
        if judge is not None:
            judge.close()
        if rank == 0 and payload["tasks"]:
            write_tables(run_dir, payload)  # also for the tasks finished before a failure
    return payload

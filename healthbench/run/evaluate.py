"""A whole run: tasks × one model → results/<run-id>/ (samples, results.json, tables).

Kept short on purpose: loading, running, scoring and aggregating each live in their own module;
this one only wires them together and records what was run.
"""
from __future__ import annotations

import json
import logging
import sys
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

from healthbench.core.version import __version__
from healthbench.scoring.aggregate import summarize_task
from healthbench.core.catalog import METRICS, MODELS
from healthbench.core.names import check_name, require_inside
from healthbench.data.bulk import gc_paused
from healthbench.run import choice_reports
from healthbench.run.prepare import (ensure_sample_data, listed_checksum, load_task_data,
                                     manifest_problems, subsample_items)
from healthbench.run.distributed import barrier, local_device, rank_and_world
from healthbench.scoring.base import Metric
from healthbench.run.judge_client import create_judge
from healthbench.scoring.judge import bind_judge, judge_summary
from healthbench.models.base import (Model, create_model, public_args, public_info,
                                     redact_command)
from healthbench.run.resume import (args_hash, check_identity, current_block, read_previous,
                                    record_identity, retries_pending, samples_stamp)
from healthbench.results.schema import MetricInfo, ModelInfo, Results, TaskResult
from healthbench.results.write import environment, git_sha, write_results, write_tables
from healthbench.run.runner import RunSettings, check_capabilities, run_task
from healthbench.run.sample_inputs import judge_identity, task_inputs
from healthbench.run.seeds import fallback_seeds, seeded_model_args, seeded_task
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
    command: str = field(default_factory=lambda: redact_command(sys.argv))  # secrets removed
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


def metric_records(task: TaskConfig, metrics: Sequence[Metric]) -> dict[str, dict[str, Any]]:
    """``{metric name: {"registered": name, "args": {...}}}``: how to rebuild each metric from
    the registry (``core.catalog.METRICS``) with the arguments it was built with, so that
    ``compare`` can recompute corpus metrics without the task YAML. Arguments that are not JSON
    are not recorded (compare then falls back to stored per-sample scores)."""
    out: dict[str, dict[str, Any]] = {}
    for i, (call, metric) in enumerate(zip(task.metrics, metrics, strict=True)):
        args = with_protocol(METRICS.get(call.name), call.args, task, f"metrics[{i}]")
        try:
            json.dumps(args, allow_nan=False)
        except (TypeError, ValueError):
            out[metric.name] = {"registered": call.name}
            continue
        out[metric.name] = {"registered": call.name, "args": args}
    return out


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


def _load_all(spec: RunSpec
              ) -> list[tuple[TaskConfig, list[Sample | SampleError], str, dict[str, str]]]:
    """Every task's samples, before any model is loaded: a missing dataset fails in seconds."""
    rank, world = rank_and_world()
    if world > 1:  # one rank builds bundled sample data; the others wait for it
        if rank == 0:
            for task in spec.tasks:
                ensure_sample_data(task, spec.data_root)
        barrier()
    out = []
    for task in spec.tasks:
        with gc_paused():  # 100k+ Sample records at once: see healthbench.data.bulk
            loaded, checksum = load_task_data(task, spec.data_root)
        items = dedupe(loaded.items)
        if spec.subsample is not None:
            items = subsample_items(items, spec.subsample, spec.seed)
        if spec.limit is not None:
            items = items[:spec.limit]
        out.append((task, items, checksum, loaded.file_checksums))
    return out


def _sample_inputs(spec: RunSpec, prepared: Sequence[tuple[TaskConfig, Any, str, Any]],
                   model_seed: Any) -> dict[str, Any]:
    """What run.json records as deciding the stored samples (``run.sample_inputs``)."""
    judge = judge_identity(spec.judge, public_args(spec.judge_args))
    return {"model_seed": model_seed, "tasks": {
        task.name: task_inputs(task, data_checksum=checksum, seed=spec.seed, limit=spec.limit,
                               subsample=spec.subsample, permute_options=spec.permute_options,
                               judge=judge)
        for task, _, checksum, _ in prepared}}


def describe_task(task: TaskConfig, metrics: Sequence[Metric],
                  rebuild: dict[str, dict[str, Any]], checksum: str, data_files: dict[str, str],
                  seeds: dict[str, Any], permutations: str | int | None,
                  samples_path: Path) -> TaskResult:
    """A task's results.json block before aggregation: everything that decides its numbers
    besides the sample records (what ``resume.current_block`` compares)."""
    return TaskResult(
        version=task.version, n=0, n_errors=0, metrics={}, protocol=task.protocol,
        data_checksum=checksum, data_files=data_files, source=task.source,
        output=task.output, scorer=task.scorer, group_by=list(task.group_by),
        metric_info={m.name: MetricInfo(percent=m.percent, higher_is_better=m.higher_is_better,
                                        **rebuild[m.name])
                     for m in metrics},
        seeds={"subsample": seeds["subsample"], "bootstrap": seeds["bootstrap"],
               "official_fallback": fallback_seeds(task)},
        permutations=permutations,
        extra={"samples_file": samples_stamp(samples_path)})


def _finished(spec: RunSpec, run_dir: Path, seeds: dict[str, Any],
              previous: Results | None) -> Results | None:
    """results.json when every task of ``spec`` is finished and current for this command
    (``resume.current_block``), decided without loading a dataset: the data checksum comes
    from the loader's file list (``prepare.listed_checksum``). None, and the ordinary path
    (which reaches the same verdict by loading everything), wherever this cannot decide: a
    loader without a file list, a manifest sample count, a judge, lm-eval tasks, several
    processes, samples to retry."""
    if previous is None or rank_and_world()[1] > 1 or spec.judge or spec.lmeval_tasks or \
            not spec.tasks:
        return None
    now = replace(previous, harness_version=__version__, git_sha=git_sha(), seed=spec.seed,
                  limit=spec.limit, subsample=spec.subsample)
    try:
        for task in spec.tasks:
            samples_path = require_inside(run_dir, run_dir / task.name / "samples.jsonl")
            listed = listed_checksum(task, spec.data_root)
            if listed is None or retries_pending(samples_path):
                return None
            checksum, data_files = listed
            metrics = build_metrics(task)
            permutations = choice_reports.plan(task, [], spec.permute_options,
                                               spec.seed)[1].permutations
            described = describe_task(task, metrics, metric_records(task, metrics), checksum,
                                      data_files, seeds, permutations, samples_path)
            block = current_block(previous, now, task.name, described)
            whole = spec.limit is None and spec.subsample is None and permutations is None
            if block is None or manifest_problems(task, {
                    "files": len(data_files), "checksum": checksum,
                    "samples": block.n_total if whole else None}):
                return None
    except Exception:  # a probe: the ordinary path raises the same problem in its own order
        return None
    return previous


def evaluate(spec: RunSpec, model: Model | None = None) -> dict[str, Any]:
    """Run every task of ``spec``; returns the results.json payload as plain JSON values (the
    typed form: :func:`evaluate_results`)."""
    return evaluate_results(spec, model).to_json()


def evaluate_results(spec: RunSpec, model: Model | None = None) -> Results:
    """Run every task of ``spec``; returns the typed results.json (also written to disk).

    Order: capabilities (declared by the plugin for its arguments) and data are checked first,
    then the run
    directory's identity (no resuming with another model), and only then is the model loaded.
    """
    # --- one seed (healthbench.run.seeds): the run's seed reaches every task call taking one
    spec = replace(spec, tasks=[seeded_task(t, spec.seed) for t in spec.tasks])
    seeds: dict[str, Any] = {
        "model": None, "subsample": None if spec.subsample is None else spec.seed,
        "bootstrap": spec.seed, "official_fallback": spec.seed}
    # --- end one seed
    check_name(spec.run_id, "--run-id")
    for task in spec.tasks:
        check_name(task.name, f"{task.source or 'task'}: key 'task'")
    run_dir = require_inside(spec.output_path, spec.output_path / spec.run_id)
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    rank, world = rank_and_world()
    if model is None:
        declared = MODELS.get(spec.model).capabilities_for(spec.model_args)
        check_capabilities(frozenset(declared), spec.model, spec.tasks)
    # results.json as an earlier command left it, read once: the finished-run check and the
    # per-task reuse (resume.current_block) both compare against it
    previous = read_previous(run_dir) if rank == 0 and not spec.judge else None
    finished = _finished(spec, run_dir, seeds, previous) if rank == 0 else None
    if finished is not None:  # nothing to run: no dataset or model is loaded
        # the model and its arguments are still checked; run.json stays as it is (the seeds,
        # protocols and data it records were just found current by current_block)
        check_identity(run_dir, spec.model, spec.model_args, spec.tasks)
        if model is not None:
            check_capabilities(model, spec.model, spec.tasks)
            model.close()
        log.warning("%s: every task is finished and results.json is current; nothing to do",
                    run_dir)
        return finished
    prepared = _load_all(spec)
    if model is None:
        model_args, seeds["model"] = seeded_model_args(MODELS.get(spec.model), spec.model_args,
                                                       spec.seed)
    elif "seed" in spec.model_args:
        seeds["model"] = spec.model_args["seed"]
    identity = check_identity(run_dir, spec.model, spec.model_args, spec.tasks,
                              _sample_inputs(spec, prepared, seeds["model"]))
    if model is None:
        model = create_model(spec.model, model_args, device=local_device(spec.device))
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
    results = Results(
        run_id=spec.run_id,
        model=ModelInfo(name=spec.model, args=public_args(spec.model_args),
                        args_hash=args_hash(spec.model_args), info=public_info(model.describe())),
        harness_version=__version__, git_sha=git_sha(), env=environment(), seed=spec.seed,
        seeds=seeds, command=spec.command, limit=spec.limit, subsample=spec.subsample,
        started=started)
    reused = 0
    try:
        for task, items, checksum, data_files in prepared:
            t0 = time.perf_counter()
            built = build_metrics(task)
            rebuild = metric_records(task, built)
            metrics = bind_judge(built, judge)
            items, choices = choice_reports.plan(task, items, spec.permute_options, spec.seed)
            samples_path = require_inside(run_dir, run_dir / task.name / "samples.jsonl")
            records = run_task(task, model, metrics, items, samples_path, spec.settings)
            if rank != 0:
                continue  # rank 0 merged the shards and aggregates; see healthbench.run.distributed
            described = describe_task(task, metrics, rebuild, checksum, data_files, seeds,
                                      choices.permutations, samples_path)
            earlier = current_block(previous, results, task.name, described)
            if earlier is not None:  # a resume with nothing new: results.json already says it
                results.tasks[task.name] = earlier
                reused += 1
                continue
            with gc_paused():  # built while 100k records are alive: see healthbench.data.bulk
                records, choice_blocks = choices.report(records, spec.seed)  # original order
                summary = TaskResult.from_summary(
                    summarize_task(metrics, records, task.group_by, spec.seed))
            results.tasks[task.name] = replace(
                described, n=summary.n, n_errors=summary.n_errors, n_total=summary.n_total,
                metrics=summary.metrics, groups=summary.groups, macro=summary.macro,
                robustness=choice_blocks.get("robustness"),
                calibration=choice_blocks.get("calibration"),
                seconds=round(time.perf_counter() - t0, 2),
                judge=judge_summary(metrics, records, judge))
            results.ended = datetime.now(timezone.utc).isoformat(timespec="seconds")
            with gc_paused():
                write_results(run_dir, results)  # after every task: a crash keeps this one
        if reused and reused == len(prepared) and lmeval_plan is None:
            log.warning("%s: every task is finished and results.json is current; nothing to "
                        "do", run_dir)
            return previous  # type: ignore[return-value]
        if reused:
            write_results(run_dir, results)  # the reused blocks next to the new ones
        if lmeval_plan is not None and rank == 0:  # lm-eval tasks are not sharded
            results.tasks.update(lmeval_bridge.run(
                lmeval_plan, model, run_dir, seed=spec.seed, limit=spec.limit,
                subsample=spec.subsample, batch_size=spec.settings.batch_size))
            results.ended = datetime.now(timezone.utc).isoformat(timespec="seconds")
            write_results(run_dir, results)
    finally:
        model.close()
        if judge is not None:
            judge.close()
        if rank == 0 and results.tasks and not (reused == len(prepared) and
                                                lmeval_plan is None):
            with gc_paused():  # pandas' import, next to the records: see data.bulk
                write_tables(run_dir, results)  # also for the tasks finished before a failure
    return results

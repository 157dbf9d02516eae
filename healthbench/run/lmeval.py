"""lm-eval as an engine: its text tasks run on any healthbench model, results in our schema.

``healthbench run --tasks lmeval:pubmedqa,lmeval:medmcqa --model hf --model-args ...`` sends every
task name that starts with ``lmeval:`` here instead of to the TaskIndex. Three steps:

1. ``prepare``: resolve the names with lm-eval's ``TaskManager`` (built-in tasks plus any
   ``--lmeval-include-path`` folders; the 4-second built-in index is skipped when the include
   paths already define every name), load the tasks, and refuse the run before anything is
   generated if the model lacks what a task needs (``loglikelihood`` for multiple-choice tasks).
2. ``run``: ``HealthbenchLM`` adapts the healthbench model to lm-eval's ``LM`` interface
   (``generate_until`` → ``Model.generate``; ``loglikelihood`` → ``Model.score_choices``, one
   request per context with all its continuations as choices) and lm-eval's own evaluator builds
   prompts, few-shot contexts, filters and per-document metrics.
3. Conversion: every evaluated document becomes one ``samples.jsonl`` record (id = lm-eval's
   ``doc_id``), and each task one ``tasks["lmeval:<task>"]`` block of results.json (version, n,
   n_errors, metrics with bootstrap intervals, groups). A document whose model call failed is an
   error record, counted in ``n_errors`` and left out of the metrics, as everywhere in healthbench.
   Metric values are recomputed from lm-eval's per-document items with lm-eval's own aggregation
   functions, so without errors they equal lm-eval's numbers. ``acc``/``acc_norm`` are named
   ``accuracy``/``accuracy_norm`` (healthbench's name); a filter other than ``none`` is appended
   (``exact_match_flexible-extract``). An lm-eval group with aggregate metrics becomes one more
   block whose ``groups.subtask`` holds its tasks.

Safety (``!function`` task code refused, the hub offline) is ``lmeval_safety``; the ``LM``
adapter is ``lmeval_adapter``; resolving and loading tasks is ``lmeval_tasks``.
"""
from __future__ import annotations

import hashlib
import logging
import time
from pathlib import Path
from typing import Any, Iterable, Mapping

from healthbench.core.names import require_inside
from healthbench.core.types import SampleResult
from healthbench.models.base import Model
from healthbench.results.samples import rewrite_samples
from healthbench.results.schema import MetricInfo, TaskResult
from healthbench.run.lmeval_adapter import PREFIX, block_name, make_lm
from healthbench.run.lmeval_safety import LmevalTaskError, hub_access, needs_hub, needs_hub_error
from healthbench.run.lmeval_tasks import LmevalPlan, isolated_random_state, one_line, prepare
from healthbench.run.prepare import subsample_items
from healthbench.scoring.score import MODEL_ERROR
from healthbench.scoring.stats import bootstrap_ci, bootstrap_mean_ci, stratified_macro_ci

__all__ = ["LmevalTaskError", "REQUEST_LOG", "block_name", "prepare", "run",
           "split_task_names"]

log = logging.getLogger("healthbench")

#: Answered requests, kept in the run folder so that a resumed run asks the model only the rest.
REQUEST_LOG = "lmeval_requests.jsonl"
METRIC_NAMES = {"acc": "accuracy", "acc_norm": "accuracy_norm"}


def split_task_names(names: Iterable[str]) -> tuple[list[str], list[str]]:
    """(healthbench task names, lm-eval task names without the ``lmeval:`` prefix)."""
    ours, theirs = [], []
    for name in names:
        if name.startswith(PREFIX):
            bare = name[len(PREFIX):].strip()
            if not bare:
                raise LmevalTaskError(f"{name!r}: expected lmeval:<task or group name>")
            theirs.append(bare)
        else:
            ours.append(name)
    return ours, theirs


# ------------------------------------------------------------------------------ running


def run(plan: LmevalPlan, model: Model, run_dir: Path, *, seed: int = 0,
        limit: int | None = None, subsample: int | None = None,
        batch_size: int | str = "auto") -> dict[str, TaskResult]:
    """Evaluate the plan's tasks; write ``<run_dir>/lmeval:<task>/samples.jsonl`` and return
    the typed results.json blocks by name (tasks, then groups)."""
    from lm_eval.evaluator import evaluate as lm_evaluate

    t0 = time.perf_counter()
    size = model.auto_batch_size([]) if batch_size == "auto" else int(batch_size)
    lm = make_lm(model, size, run_dir / REQUEST_LOG)
    for task in plan.loaded["tasks"].values():
        if task.get_config("num_fewshot") is None:
            task.set_config(key="num_fewshot", value=0)
        task.set_fewshot_seed(seed=seed)
    chosen = _chosen_docs(plan, seed, limit, subsample)
    names = ", ".join(plan.loaded["tasks"]) or ", ".join(plan.names)
    # lm-eval draws from the global generators in places; they are seeded for the call and
    # restored afterwards, so running lm-eval tasks leaves the process's random state as it was.
    with hub_access(plan.allow_download), isolated_random_state(seed):
        try:
            results = lm_evaluate(lm=lm, task_dict=plan.loaded,
                                  limit=None if chosen else limit, samples=chosen,
                                  bootstrap_iters=0, log_samples=True, verbosity="WARNING")
        except Exception as exc:
            if not plan.allow_download and needs_hub(exc):
                raise needs_hub_error(names) from exc
            raise LmevalTaskError(f"lm-eval task {names} failed: {one_line(exc)}") from exc
    if results is None:
        raise LmevalTaskError(f"lm-eval task {names}: lm-eval returned no results")
    blocks: dict[str, TaskResult] = {}
    per_task: dict[str, list[SampleResult]] = {}
    elapsed = round(time.perf_counter() - t0, 2)
    for name, task in plan.loaded["tasks"].items():
        records = _records(name, results["samples"].get(name, []), lm.errors)
        path = require_inside(run_dir, run_dir / block_name(name) / "samples.jsonl")
        rewrite_samples(path, records)
        per_task[name] = records
        blocks[block_name(name)] = _task_block(plan, name, task, records, results, seed, elapsed)
    for group_name, group in plan.loaded["groups"].items():
        block = _group_block(plan, group_name, group, per_task, blocks, results, seed)
        if block is not None:
            blocks[block_name(group_name)] = block
    return blocks


def _chosen_docs(plan: LmevalPlan, seed: int, limit: int | None,
                 subsample: int | None) -> dict[str, list[int]] | None:
    """Doc ids per task for ``--subsample`` (healthbench's rule: sorted ``random.Random(seed)
    .sample``), then ``--limit``; None when lm-eval's own ``limit`` is enough."""
    if subsample is None:
        return None
    chosen = {}
    for name, task in plan.loaded["tasks"].items():
        n = len(task.eval_docs)
        ids = subsample_items(list(range(n)), subsample, seed)
        chosen[name] = ids[:limit] if limit is not None else ids
    return chosen


# ------------------------------------------------------------------------------ conversion


def metric_name(metric: str, filter_name: str) -> str:
    name = METRIC_NAMES.get(metric, metric)
    return name if filter_name == "none" else f"{name}_{filter_name}"


def _jsonable(value: Any) -> Any:
    """lm-eval values (numpy scalars, tuples, images) as plain JSON values."""
    if isinstance(value, (str, bool, int)) or value is None:
        return value
    if isinstance(value, float):
        return value
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 1) == 0:
        return value.item()
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return repr(value)


def _score(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number == number and abs(number) != float("inf") else None


def _records(name: str, samples: list[dict[str, Any]],
             errors: Mapping[tuple[str, int], str]) -> list[SampleResult]:
    """One record per doc (lm-eval logs one sample per doc and filter); dataset order."""
    by_doc: dict[int, list[dict[str, Any]]] = {}
    for sample in samples:
        by_doc.setdefault(int(sample["doc_id"]), []).append(sample)
    records = []
    for doc_id in sorted(by_doc):
        entries = by_doc[doc_id]
        first = entries[0]
        args = first.get("arguments") or [()]
        inputs = {"prompt": args[0][0] if args and args[0] else None,
                  "doc_hash": first.get("doc_hash")}
        error = errors.get((name, doc_id))
        multiple_choice = bool(args) and len(args[0]) > 1 and isinstance(args[0][1], str)
        if multiple_choice:
            inputs["choices"] = [a[1] for a in args]
        if error:
            records.append(SampleResult(id=str(doc_id), task=block_name(name),
                                        target=_jsonable(first.get("target")), response=None,
                                        parsed=None, scores={}, meta={},
                                        error=f"{MODEL_ERROR}{error}", inputs=inputs))
            continue
        scores: dict[str, float | None] = {}
        for entry in entries:
            for metric in entry.get("metrics", []):
                scores[metric_name(metric, entry["filter"])] = _score(entry.get(metric))
        filtered = first.get("filtered_resps")
        if multiple_choice:
            lls = [float(r[0]) if isinstance(r, (list, tuple)) else float(r)
                   for r in (filtered or [])]
            response: Any = lls
            parsed: Any = max(range(len(lls)), key=lambda i: lls[i]) if lls else None
        else:
            raw = first.get("resps") or [[None]]
            response = _jsonable(raw[0][0] if raw and raw[0] else None)
            parsed = _jsonable(filtered[0] if isinstance(filtered, list) and filtered
                               else filtered)
        records.append(SampleResult(
            id=str(doc_id), task=block_name(name), target=_jsonable(first.get("target")),
            response=response, parsed=parsed, scores=scores,
            meta={"filters": [e["filter"] for e in entries]} if len(entries) > 1 else {},
            inputs=inputs))
    return records


def _per_doc_items(samples: list[dict[str, Any]], metric: str, filter_name: str,
                   ok_docs: set[int]) -> list[Any]:
    return [s[metric] for s in sorted(samples, key=lambda s: int(s["doc_id"]))
            if s["filter"] == filter_name and metric in s and int(s["doc_id"]) in ok_docs]


def _summaries(task: Any, name: str, results: Mapping[str, Any], records: list[SampleResult],
               seed: int) -> tuple[dict[str, Any], dict[str, str]]:
    """metrics {healthbench name: {value, ci, n}} and {healthbench name: lm-eval key}."""
    from lm_eval.api.metrics import mean

    samples = results["samples"].get(name, [])
    ok_docs = {int(r.id) for r in records if not r.error}
    aggregations = task.aggregation()
    reported = results["results"].get(name, {})
    metrics: dict[str, Any] = {}
    keys: dict[str, str] = {}
    for key, value in reported.items():
        if "," not in key or "_stderr," in key:
            continue
        metric, filter_name = key.split(",", 1)
        out_name = metric_name(metric, filter_name)
        keys[out_name] = key
        items = _per_doc_items(samples, metric, filter_name, ok_docs)
        fn = aggregations.get(metric)
        if fn is mean and all(_score(i) is not None for i in items):
            scores = [float(i) for i in items]
            metrics[out_name] = {"value": float(sum(scores) / len(scores)) if scores else None,
                                 "ci": bootstrap_mean_ci(scores, seed=seed), "n": len(scores)}
        elif fn is not None and items:
            metrics[out_name] = {"value": _score(fn(items)),
                                 "ci": bootstrap_ci(items, lambda xs: _score(fn(xs)) or 0.0,
                                                    seed=seed), "n": len(items)}
        else:  # nothing per document to recompute from: lm-eval's value, no interval claimed
            metrics[out_name] = {"value": _score(value), "ci": [None, None], "n": len(ok_docs)}
    return metrics, keys


# --- the results.json blocks (typed by healthbench.results.schema) ---------------------------

#: lm-eval declares each metric's direction (``higher_is_better``) but not its scale. Its
#: built-in metrics that are fractions in [0, 1] (lm_eval/api/metrics.py: a 0/1 per document
#: averaged by ``mean``, or scikit-learn's F1) are shown as %; every other metric keeps lm-eval's
#: own unit: ``bleu``, ``chrf`` and ``ter`` are sacreBLEU's 0-100 scores, perplexities and bits
#: per byte are unbounded, and a task's own metric declares nothing.
LMEVAL_FRACTIONS = frozenset({"acc", "acc_norm", "acc_mutual_info", "acc_bytes", "acc_all",
                              "exact_match", "f1"})


def _metric_info(task: Any, keys: Mapping[str, str]) -> dict[str, MetricInfo]:
    """Each metric's scale and direction from lm-eval's own metadata: the direction the task
    declares (else lm-eval's registry, else higher is better), and % only for a built-in
    fraction metric aggregated by the function lm-eval registers for it."""
    from lm_eval.api.registry import get_metric_aggregation, is_higher_better

    try:
        declared = dict(task.higher_is_better() or {})
        aggregations = dict(task.aggregation() or {})
    except Exception:  # an lm-eval task without the declarations
        declared, aggregations = {}, {}
    info = {}
    for out, key in keys.items():
        metric = key.split(",", 1)[0]
        higher = declared.get(metric)
        higher = is_higher_better(metric) if higher is None else higher
        percent = metric in LMEVAL_FRACTIONS and aggregations.get(metric) is not None \
            and aggregations.get(metric) is get_metric_aggregation(metric)
        info[out] = MetricInfo(percent=percent,
                               higher_is_better=True if higher is None else bool(higher))
    return info


def _task_block(plan: LmevalPlan, name: str, task: Any, records: list[SampleResult],
                results: Mapping[str, Any], seed: int, elapsed: float) -> TaskResult:
    import lm_eval

    metrics, keys = _summaries(task, name, results, records, seed)
    output_type = task.get_config("output_type")
    errors = [r for r in records if r.error]
    digest = hashlib.sha256("".join(f"{r.id}:{r.inputs.get('doc_hash')}\n"
                                    for r in records).encode()).hexdigest()
    entry = getattr(plan.manager, "task_index", {}).get(name)
    return TaskResult.from_summary(
        {"n": len(records) - len(errors), "n_errors": len(errors), "n_total": len(records),
         "metrics": metrics},
        version=str(results.get("versions", {}).get(name, "?")),
        data_checksum=digest, source=str(getattr(entry, "yaml_path", f"lm-eval:{name}")),
        output="text",
        scorer="generate" if output_type == "generate_until" else "loglikelihood",
        metric_info=_metric_info(task, keys),
        engine={"name": "lm-eval", "version": getattr(lm_eval, "__version__", "?"),
                "task": name, "output_type": output_type,
                "num_fewshot": task.get_config("num_fewshot"), "metric_keys": keys},
        seconds=elapsed)


def _leaf_tasks(plan: LmevalPlan, group: str) -> list[str]:
    out: list[str] = []
    for child in plan.loaded["group_map"].get(group, []):
        if child in plan.loaded["tasks"]:
            out.append(child)
        elif child in plan.loaded["group_map"]:
            out.extend(_leaf_tasks(plan, child))
    return out


def _group_block(plan: LmevalPlan, group_name: str, group: Any,
                 per_task: Mapping[str, list[SampleResult]], blocks: Mapping[str, TaskResult],
                 results: Mapping[str, Any], seed: int) -> TaskResult | None:
    """An lm-eval group with aggregate metrics: micro (pooled docs) where lm-eval weights by
    size, macro (mean of task values) where it does not; ``groups.subtask`` per task."""
    configs = list(getattr(group, "aggregate_metric_list", None) or [])
    if not configs:
        return None  # a plain collection: its tasks' blocks say everything
    leaves = _leaf_tasks(plan, group_name)
    child_blocks = {leaf: blocks[block_name(leaf)] for leaf in leaves}
    metrics: dict[str, Any] = {}
    macro: dict[str, Any] = {}
    info: dict[str, MetricInfo] = {}
    for config in configs:
        metric = _get(config, "metric")
        filters = _get(config, "filter_list") or ["none"]
        filters = [filters] if isinstance(filters, str) else filters
        for filter_name in filters:
            name = metric_name(metric, filter_name)
            having = [leaf for leaf in leaves if name in child_blocks[leaf].metrics]
            per_leaf = [[r.scores.get(name) for r in per_task[leaf] if not r.error]
                        for leaf in having]
            values = [child_blocks[leaf].metrics[name].value for leaf in having]
            values = [v for v in values if v is not None]
            pooled = [s for scores in per_leaf for s in scores if s is not None]
            macro_value = sum(values) / len(values) if values else None
            macro_ci = stratified_macro_ci(per_leaf, seed=seed)
            if _get(config, "weight_by_size"):
                metrics[name] = {"value": sum(pooled) / len(pooled) if pooled else None,
                                 "ci": bootstrap_mean_ci(pooled, seed=seed), "n": len(pooled)}
            else:
                metrics[name] = {"value": macro_value, "ci": macro_ci, "n": len(pooled)}
            macro[name] = {"value": macro_value, "ci": macro_ci, "n_groups": len(values)}
            if having:  # the group's metric is its tasks' metric: same scale and direction
                info[name] = child_blocks[having[0]].info(name)
    return TaskResult.from_summary(
        {"n": sum(b.n for b in child_blocks.values()),
         "n_errors": sum(b.n_errors for b in child_blocks.values()),
         "n_total": sum(b.n_total or 0 for b in child_blocks.values()),
         "metrics": metrics,
         "groups": {"subtask": {leaf: {"n": b.n, "n_errors": b.n_errors,
                                       "metrics": {k: v.to_json() for k, v in b.metrics.items()
                                                   if k in metrics}}
                                for leaf, b in child_blocks.items()}},
         "macro": {"subtask": macro}},
        version=str(results.get("versions", {}).get(group_name, "?")),
        data_checksum=hashlib.sha256("".join(
            f"{leaf}:{child_blocks[leaf].data_checksum}\n" for leaf in leaves).encode()
        ).hexdigest(),
        source=f"lm-eval group {group_name}", output="text", scorer="mixed",
        group_by=["subtask"], metric_info=info,
        engine={"name": "lm-eval", "group": group_name, "tasks": leaves})


def _get(config: Any, key: str) -> Any:
    return config.get(key) if isinstance(config, Mapping) else getattr(config, key, None)


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

Safety (design.md: task files never import code; data is never downloaded implicitly):

* A task YAML that names Python code with ``!function`` (lm-eval imports and runs that file) is
  refused unless ``allow_task_code`` (``--allow-task-code``). Every YAML file under the include
  paths is scanned before lm-eval reads any of them, then the resolved configs of the requested
  tasks (their ``include:`` chains, group members, tag members). lm-eval's own task folder, part
  of the installed package, is trusted like the rest of that package.
* Loading and evaluation run with the Hugging Face hub offline (``HF_DATASETS_OFFLINE`` /
  ``HF_HUB_OFFLINE``) unless ``allow_download`` (``--allow-download``): a task whose dataset is
  not in the ``datasets`` cache (``HF_DATASETS_CACHE``) and not local is a one-line error naming
  the task. Any other lm-eval failure is a one-line ``LmevalTaskError`` naming the task(s); the
  original exception is chained (``--debug`` shows it).
"""
from __future__ import annotations

import hashlib
import logging
import os
import random
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from healthbench.core.names import require_inside
from healthbench.models.base import Model
from healthbench.models.hf import cut_at_stop
from healthbench.results.samples import rewrite_samples
from healthbench.scoring.stats import bootstrap_ci, bootstrap_mean_ci, stratified_macro_ci
from healthbench.core.types import GenerationParams, Request, Response, SampleResult

log = logging.getLogger("healthbench")

PREFIX = "lmeval:"
METRIC_NAMES = {"acc": "accuracy", "acc_norm": "accuracy_norm"}
NEEDS = {"generate_until": "text", "multiple_choice": "loglikelihood",
         "loglikelihood": "loglikelihood"}
DEFAULT_MAX_GEN_TOKS = 256
# The log-likelihood handed to lm-eval for a failed doc: finite, so its softmax-based metrics
# stay NaN-free; the doc is an error record and left out of every healthbench metric anyway.
LOST = -1e30


class LmevalTaskError(ValueError):
    """An lm-eval task that cannot run here (unknown, unloadable, or beyond the model)."""


OFFLINE_ENV = ("HF_DATASETS_OFFLINE", "HF_HUB_OFFLINE")
TASK_CODE_TAG = "!function"


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


def block_name(task: str) -> str:
    return PREFIX + task


# ------------------------------------------------------------------------------ preparation


@dataclass
class LmevalPlan:
    """Loaded lm-eval tasks, ready to run; ``loaded`` is ``TaskManager.load``'s TaskDict."""

    names: list[str]
    manager: Any
    loaded: dict[str, Any]
    allow_download: bool = False


def _task_manager(names: Sequence[str], include_paths: Sequence[Path]) -> Any:
    from lm_eval.tasks import TaskManager

    paths = [str(Path(p).resolve()) for p in include_paths]
    for path in paths:
        if not Path(path).is_dir():
            raise LmevalTaskError(f"--lmeval-include-path: {path} is not a folder")
    if paths:
        manager = TaskManager(include_path=paths, include_defaults=False)
        if all(name in manager.all_tasks for name in names):
            return manager  # every name is local: skip indexing lm-eval's built-in tasks
    manager = TaskManager(include_path=paths or None)
    unknown = [name for name in names if name not in manager.all_tasks]
    if unknown:
        raise LmevalTaskError(f"unknown lm-eval task(s): {', '.join(unknown)} (see "
                              "`lm-eval ls tasks`, or add --lmeval-include-path DIR)")
    return manager


# ------------------------------------------------------------------------------ safety


def _one_line(exc: BaseException, limit: int = 300) -> str:
    text = " ".join(str(exc).split())
    text = text if len(text) <= limit else text[:limit - 1] + "…"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _lm_eval_dir() -> Path | None:
    try:
        import lm_eval
    except ImportError:
        return None
    return Path(lm_eval.__file__).resolve().parent


def _function_tags(path: Path) -> tuple[list[str], list[Path]]:
    """(``file:line`` of every ``!function`` tag, files named by ``include:``) of one YAML file.
    The file is composed (parsed to nodes), never constructed: nothing in it runs."""
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return [], []
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:  # unparseable here: refuse on the bare tag, as lm-eval would read it
        return [f"{path}:{i + 1}" for i, line in enumerate(text.splitlines())
                if TASK_CODE_TAG in line], []
    found: list[str] = []
    includes: list[Path] = []
    stack = [root] if root is not None else []
    seen: set[int] = set()
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if node.tag == TASK_CODE_TAG:
            found.append(f"{path}:{node.start_mark.line + 1}")
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                stack += [key, value]
                if node is root and isinstance(key, yaml.ScalarNode) and key.value == "include":
                    items = value.value if isinstance(value, yaml.SequenceNode) else [value]
                    includes += [path.parent / str(item.value) for item in items
                                 if isinstance(item, yaml.ScalarNode)]
        elif isinstance(node, yaml.SequenceNode):
            stack += list(node.value)
    return sorted(found), includes


def _scan(paths: Iterable[Path], found: list[str], seen: set[Path]) -> None:
    """Add the ``!function`` uses of ``paths`` and of their ``include:`` chains to ``found``;
    files inside the installed lm-eval package are trusted."""
    trusted = _lm_eval_dir()
    for path in paths:
        path = Path(path).resolve()
        if path in seen or not path.is_file():
            continue
        seen.add(path)
        if trusted is not None and trusted in path.parents:
            continue
        tags, includes = _function_tags(path)
        found += tags
        _scan(includes, found, seen)


def _include_path_yaml(include_paths: Sequence[Path]) -> list[Path]:
    out: list[Path] = []
    for folder in include_paths:
        if Path(folder).is_dir():
            out += sorted(p for pattern in ("*.yaml", "*.yml")
                          for p in Path(folder).rglob(pattern) if p.is_file())
    return out


def _resolved_yaml(manager: Any, names: Sequence[str]) -> list[Path]:
    """The YAML files the requested names resolve to: tasks, group and tag members."""
    index = getattr(manager, "task_index", {}) or {}
    out: list[Path] = []
    todo, done = list(names), set()
    while todo:
        name = todo.pop()
        if not isinstance(name, str) or name in done:
            continue
        done.add(name)
        entry = index.get(name)
        if entry is None:
            continue
        if getattr(entry, "yaml_path", None):
            out.append(Path(entry.yaml_path))
        cfg = getattr(entry, "cfg", None) or {}
        members = cfg.get("task") if "group" in cfg else None
        if isinstance(members, (list, tuple)):
            todo += [m for m in members if isinstance(m, str)]
        todo += sorted(getattr(entry, "tags", ()) or ())
    return out


def refuse_task_code(found: Sequence[str]) -> None:
    if found:
        shown = ", ".join(found[:3]) + (f" and {len(found) - 3} more" if len(found) > 3 else "")
        raise LmevalTaskError(
            f"lm-eval task config uses {TASK_CODE_TAG} (it would import and run Python code): "
            f"{shown}; pass --allow-task-code to run task code you trust")


@contextmanager
def hub_access(allow_download: bool):
    """Within: the Hugging Face hub offline (env and the already-imported libraries' flags),
    unless ``allow_download``. Restored on exit."""
    if allow_download:
        yield
        return
    import sys

    saved_env = {key: os.environ.get(key) for key in OFFLINE_ENV}
    flags = [(sys.modules.get(mod), attr) for mod, attr in (
        ("datasets.config", "HF_HUB_OFFLINE"), ("datasets.config", "HF_DATASETS_OFFLINE"),
        ("huggingface_hub.constants", "HF_HUB_OFFLINE"))]
    flags = [(mod, attr, getattr(mod, attr)) for mod, attr in flags
             if mod is not None and hasattr(mod, attr)]
    for key in OFFLINE_ENV:
        os.environ[key] = "1"
    for mod, attr, _ in flags:
        setattr(mod, attr, True)
    try:
        yield
    finally:
        for mod, attr, value in flags:
            setattr(mod, attr, value)
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _needs_hub(exc: BaseException) -> bool:
    """Whether ``exc`` (or what it wraps) is the hub being unreachable in offline mode."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        name = type(current).__name__
        text = str(current).lower()
        if isinstance(current, ConnectionError) or name in {
                "OfflineModeIsEnabled", "LocalEntryNotFoundError"} or "offline" in text:
            return True
        current = current.__cause__ or current.__context__
    return False


def _needs_hub_error(task: str) -> LmevalTaskError:
    return LmevalTaskError(
        f"lm-eval task {task} needs its dataset from the Hugging Face hub; pass "
        "--allow-download or point the task at local files")


def _load(manager: Any, names: Sequence[str], allow_download: bool) -> dict[str, Any]:
    with hub_access(allow_download):
        try:
            return manager.load(list(names))
        except Exception as exc:
            culprit = ", ".join(names)
            for name in [*_leaf_names(manager, names), *names]:  # which one: each alone
                try:
                    manager.load([name])
                except Exception:
                    culprit = name
                    break
            if not allow_download and _needs_hub(exc):
                raise _needs_hub_error(culprit) from exc
            raise LmevalTaskError(f"lm-eval could not load task {culprit}: "
                                  f"{_one_line(exc)}") from exc


def _leaf_names(manager: Any, names: Sequence[str]) -> list[str]:
    index = getattr(manager, "task_index", {}) or {}
    out: list[str] = []
    todo, done = list(names), set()
    while todo:
        name = todo.pop(0)
        if not isinstance(name, str) or name in done or name not in index:
            continue
        done.add(name)
        entry = index[name]
        cfg = getattr(entry, "cfg", None) or {}
        members = cfg.get("task") if "group" in cfg else None
        if isinstance(members, (list, tuple)):
            todo += [m for m in members if isinstance(m, str)]
        elif getattr(entry, "tags", None) and not getattr(entry, "yaml_path", None):
            todo += sorted(entry.tags)
        else:
            out.append(name)
    return out


def prepare(names: Sequence[str], include_paths: Sequence[Path], model: Model,
            model_name: str, *, allow_task_code: bool = False,
            allow_download: bool = False) -> LmevalPlan:
    """Resolve and load the tasks; refuse those the model cannot run, before any generation.
    Task code (``!function``) is refused unless ``allow_task_code``; loading happens with the
    hub offline unless ``allow_download``."""
    if not allow_task_code:  # before lm-eval reads a file of the include paths
        found: list[str] = []
        _scan(_include_path_yaml(include_paths), found, set())
        refuse_task_code(found)
    manager = _task_manager(names, include_paths)
    if not allow_task_code:
        found = []
        _scan(_resolved_yaml(manager, names), found, set())
        refuse_task_code(found)
    loaded = _load(manager, names, allow_download)
    for name, task in loaded["tasks"].items():
        output_type = task.get_config("output_type")
        needed = NEEDS.get(output_type)
        if needed is None:
            raise LmevalTaskError(f"lm-eval task {name!r}: output type {output_type!r} is not "
                                  f"supported (healthbench runs {', '.join(NEEDS)})")
        if needed not in model.capabilities:
            raise LmevalTaskError(
                f"model {model_name!r} cannot run lm-eval task {name!r} ({output_type}): it "
                f"needs {needed} but the model offers {', '.join(sorted(model.capabilities))}")
    return LmevalPlan(list(names), manager, loaded, allow_download)


# ------------------------------------------------------------------------------ the LM adapter


def _lm_base() -> type:
    from lm_eval.api.model import LM

    return LM


def make_lm(model: Model, batch_size: int) -> Any:
    """An lm-eval ``LM`` backed by ``model`` (the class is built lazily: lm_eval imports late)."""

    class HealthbenchLM(_lm_base()):  # type: ignore[misc]
        """lm-eval requests → healthbench Requests, in batches; failures recorded per doc."""

        MULTIMODAL = True  # images given by a task's doc_to_image are passed on

        def __init__(self) -> None:
            super().__init__()
            self.model = model
            self.batch_size = max(1, int(batch_size))
            self.errors: dict[tuple[str, int], str] = {}

        def _requests(self, instances: Sequence[Any],
                      build: Callable[[Any], Request]) -> list[Request]:
            return [build(inst) for inst in instances]

        def _call(self, fn: Callable[[list[Request]], list[Response]],
                  requests: list[Request]) -> list[Response]:
            out: list[Response] = []
            for start in range(0, len(requests), self.batch_size):
                out.extend(_resilient(fn, requests[start:start + self.batch_size]))
            return out

        def _note(self, inst: Any, response: Response) -> None:
            if response.error:
                self.errors.setdefault((inst.task_name, inst.doc_id), response.error)

        def generate_until(self, requests: list[Any], disable_tqdm: bool = False) -> list[str]:
            built = [_generation_request(inst) for inst in requests]
            responses = self._call(self.model.generate, built)
            texts = []
            for inst, request, response in zip(requests, built, responses):
                self._note(inst, response)
                texts.append(cut_at_stop(response.text or "", request.generation.stop)
                             if not response.error else "")
            return texts

        def loglikelihood(self, requests: list[Any],
                          disable_tqdm: bool = False) -> list[tuple[float, bool]]:
            # One healthbench request per (doc, context, images): its continuations are choices.
            groups: dict[tuple, list[int]] = {}
            for i, inst in enumerate(requests):
                visual = _visuals(inst.args)
                key = (inst.task_name, inst.doc_id, inst.args[0], tuple(id(v) for v in visual))
                groups.setdefault(key, []).append(i)
            keys = list(groups)
            built = []
            for key in keys:
                first = requests[groups[key][0]]
                built.append(Request(
                    task=block_name(first.task_name), sample_id=str(first.doc_id),
                    prompt=_strip_image_marks(first.args[0]), images=_visuals(first.args),
                    choices=tuple(requests[i].args[1] for i in groups[key])))
            responses = self._call(self.model.score_choices, built)
            out: list[tuple[float, bool]] = [(LOST, False)] * len(requests)
            for key, response in zip(keys, responses):
                members = groups[key]
                self._note(requests[members[0]], response)
                lls, greedy = _likelihoods(response, len(members))
                for j, i in enumerate(members):
                    out[i] = (lls[j], greedy[j])
            return out

        def loglikelihood_rolling(self, requests: list[Any],
                                  disable_tqdm: bool = False) -> list[float]:
            raise NotImplementedError("healthbench models score choices after a prompt; "
                                      "rolling (perplexity) tasks are not supported")

    return HealthbenchLM()


def _resilient(fn: Callable[[list[Request]], list[Response]],
               requests: list[Request]) -> list[Response]:
    """The batch at once; if it raises, one at a time, so only the failing docs are lost."""
    try:
        responses = list(fn(requests))
        if len(responses) == len(requests):
            return responses
        raise RuntimeError(f"model returned {len(responses)} responses for {len(requests)}")
    except Exception as exc:
        if len(requests) == 1:
            return [Response(error=f"{type(exc).__name__}: {exc}")]
        out = []
        for request in requests:
            out.extend(_resilient(fn, [request]))
        return out


def _visuals(args: Sequence[Any]) -> tuple[Any, ...]:
    extra = args[2] if len(args) > 2 and isinstance(args[2], Mapping) else {}
    return tuple(extra.get("visual") or ())


def _strip_image_marks(text: str) -> str:
    # Plugins place image tokens themselves; lm-eval's literal placeholder would be read as text.
    return text.replace("<image>", "")


def _generation_request(inst: Any) -> Request:
    context, kwargs = inst.args[0], dict(inst.args[1] or {})
    until = kwargs.get("until") or ()
    until = (until,) if isinstance(until, str) else tuple(until)
    sample = bool(kwargs.get("do_sample", False))
    params = GenerationParams(
        max_new_tokens=int(kwargs.get("max_gen_toks", kwargs.get("max_new_tokens",
                                                                 DEFAULT_MAX_GEN_TOKS))),
        temperature=float(kwargs.get("temperature", 1.0)) if sample else 0.0,
        top_p=float(kwargs.get("top_p", 1.0)) if sample else 1.0, stop=until)
    return Request(task=block_name(inst.task_name), sample_id=str(inst.doc_id),
                   prompt=_strip_image_marks(context), images=_visuals(inst.args),
                   generation=params)


def _likelihoods(response: Response, n: int) -> tuple[list[float], list[bool]]:
    """Summed log-likelihoods (``extra['loglikelihood']`` where the plugin gives them, else its
    choice scores) and greedy flags; -inf for a failed request."""
    if response.error:
        return [LOST] * n, [False] * n
    extra = response.extra or {}
    lls = list(extra.get("loglikelihood") or response.choice_scores or ())
    greedy = list(extra.get("is_greedy") or [False] * n)
    if len(lls) != n:
        return [LOST] * n, [False] * n
    return [float(v) for v in lls], [bool(g) for g in greedy]



# ------------------------------------------------------------------------------ running


def run(plan: LmevalPlan, model: Model, run_dir: Path, *, seed: int = 0,
        limit: int | None = None, subsample: int | None = None,
        batch_size: int | str = "auto") -> dict[str, dict[str, Any]]:
    """Evaluate the plan's tasks; write ``<run_dir>/lmeval:<task>/samples.jsonl`` and return
    the results.json blocks by name (tasks, then groups)."""
    import numpy as np
    from lm_eval.evaluator import evaluate as lm_evaluate

    t0 = time.perf_counter()
    size = model.auto_batch_size([]) if batch_size == "auto" else int(batch_size)
    lm = make_lm(model, size)
    random.seed(seed)
    np.random.seed(seed)
    _seed_torch(seed)
    for task in plan.loaded["tasks"].values():
        if task.get_config("num_fewshot") is None:
            task.set_config(key="num_fewshot", value=0)
        task.set_fewshot_seed(seed=seed)
    chosen = _chosen_docs(plan, seed, limit, subsample)
    names = ", ".join(plan.loaded["tasks"]) or ", ".join(plan.names)
    with hub_access(plan.allow_download):
        try:
            results = lm_evaluate(lm=lm, task_dict=plan.loaded,
                                  limit=None if chosen else limit, samples=chosen,
                                  bootstrap_iters=0, log_samples=True, verbosity="WARNING")
        except Exception as exc:
            if not plan.allow_download and _needs_hub(exc):
                raise _needs_hub_error(names) from exc
            raise LmevalTaskError(f"lm-eval task {names} failed: {_one_line(exc)}") from exc
    if results is None:
        raise LmevalTaskError(f"lm-eval task {names}: lm-eval returned no results")
    blocks: dict[str, dict[str, Any]] = {}
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


def _seed_torch(seed: int) -> None:
    import sys

    torch = sys.modules.get("torch")  # seeded only if a plugin already uses it
    if torch is not None:
        torch.manual_seed(seed)


def _chosen_docs(plan: LmevalPlan, seed: int, limit: int | None,
                 subsample: int | None) -> dict[str, list[int]] | None:
    """Doc ids per task for ``--subsample`` (healthbench's rule: sorted ``random.Random(seed)
    .sample``), then ``--limit``; None when lm-eval's own ``limit`` is enough."""
    if subsample is None:
        return None
    chosen = {}
    for name, task in plan.loaded["tasks"].items():
        n = len(task.eval_docs)
        ids = sorted(random.Random(seed).sample(range(n), subsample)) if subsample < n \
            else list(range(n))
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
                                        error=f"model error: {error}", inputs=inputs))
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


def _metric_info(task: Any, keys: Mapping[str, str]) -> dict[str, dict[str, bool]]:
    """Each metric's direction as lm-eval's task declares it (its scale is left to the report
    tools: lm-eval mixes fractions with 0-100 scores such as sacreBLEU)."""
    try:
        declared = dict(task.higher_is_better() or {})
    except Exception:  # an lm-eval task without the declaration
        return {}
    return {out: {"higher_is_better": bool(declared[key.split(",", 1)[0]])}
            for out, key in keys.items() if key.split(",", 1)[0] in declared}


def _task_block(plan: LmevalPlan, name: str, task: Any, records: list[SampleResult],
                results: Mapping[str, Any], seed: int, elapsed: float) -> dict[str, Any]:
    import lm_eval

    metrics, keys = _summaries(task, name, results, records, seed)
    output_type = task.get_config("output_type")
    errors = [r for r in records if r.error]
    digest = hashlib.sha256("".join(f"{r.id}:{r.inputs.get('doc_hash')}\n"
                                    for r in records).encode()).hexdigest()
    entry = getattr(plan.manager, "task_index", {}).get(name)
    return {
        "version": str(results.get("versions", {}).get(name, "?")),
        "data_checksum": digest, "source": str(getattr(entry, "yaml_path", f"lm-eval:{name}")),
        "output": "text",
        "scorer": "generate" if output_type == "generate_until" else "loglikelihood",
        "group_by": [], "n": len(records) - len(errors), "n_errors": len(errors),
        "n_total": len(records), "metrics": metrics, "groups": {}, "macro": {},
        "metric_info": _metric_info(task, keys),
        "engine": {"name": "lm-eval", "version": getattr(lm_eval, "__version__", "?"),
                   "task": name, "output_type": output_type,
                   "num_fewshot": task.get_config("num_fewshot"), "metric_keys": keys},
        "seconds": elapsed,
    }


def _leaf_tasks(plan: LmevalPlan, group: str) -> list[str]:
    out: list[str] = []
    for child in plan.loaded["group_map"].get(group, []):
        if child in plan.loaded["tasks"]:
            out.append(child)
        elif child in plan.loaded["group_map"]:
            out.extend(_leaf_tasks(plan, child))
    return out


def _group_block(plan: LmevalPlan, group_name: str, group: Any,
                 per_task: Mapping[str, list[SampleResult]], blocks: Mapping[str, Any],
                 results: Mapping[str, Any], seed: int) -> dict[str, Any] | None:
    """An lm-eval group with aggregate metrics: micro (pooled docs) where lm-eval weights by
    size, macro (mean of task values) where it does not; ``groups.subtask`` per task."""
    configs = list(getattr(group, "aggregate_metric_list", None) or [])
    if not configs:
        return None  # a plain collection: its tasks' blocks say everything
    leaves = _leaf_tasks(plan, group_name)
    child_blocks = {leaf: blocks[block_name(leaf)] for leaf in leaves}
    metrics: dict[str, Any] = {}
    macro: dict[str, Any] = {}
    for config in configs:
        metric = _get(config, "metric")
        filters = _get(config, "filter_list") or ["none"]
        filters = [filters] if isinstance(filters, str) else filters
        for filter_name in filters:
            name = metric_name(metric, filter_name)
            having = [leaf for leaf in leaves if name in child_blocks[leaf]["metrics"]]
            per_leaf = [[r.scores.get(name) for r in per_task[leaf] if not r.error]
                        for leaf in having]
            values = [child_blocks[leaf]["metrics"][name]["value"] for leaf in having]
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
    return {
        "version": str(results.get("versions", {}).get(group_name, "?")),
        "data_checksum": hashlib.sha256("".join(
            f"{leaf}:{child_blocks[leaf]['data_checksum']}\n" for leaf in leaves).encode()
        ).hexdigest(),
        "source": f"lm-eval group {group_name}", "output": "text",
        "scorer": "mixed", "group_by": ["subtask"],
        "n": sum(b["n"] for b in child_blocks.values()),
        "n_errors": sum(b["n_errors"] for b in child_blocks.values()),
        "n_total": sum(b["n_total"] for b in child_blocks.values()),
        "metrics": metrics,
        "groups": {"subtask": {leaf: {"n": b["n"], "n_errors": b["n_errors"],
                                      "metrics": {k: v for k, v in b["metrics"].items()
                                                  if k in metrics}}
                               for leaf, b in child_blocks.items()}},
        "macro": {"subtask": macro},
        "engine": {"name": "lm-eval", "group": group_name, "tasks": leaves},
    }


def _get(config: Any, key: str) -> Any:
    return config.get(key) if isinstance(config, Mapping) else getattr(config, key, None)


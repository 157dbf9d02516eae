"""What a run directory was made by, so that resuming never mixes two models' outputs.

``<run-dir>/run.json`` records the model, a hash of its arguments, each task's version and
(``samples``) whatever else decides a stored sample: seeds, protocols, data, task settings,
option orders, limit and subsample (``run.sample_inputs``). A later command with the same run id
resumes only if those agree; otherwise it stops with a clear message before anything runs.
(Secrets are hashed together with the other arguments, never written.)
"""
from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any, Mapping, Sequence

from healthbench.results.samples import atomic_write_text
from healthbench.results.schema import Results, TaskResult, read_results
from healthbench.run.distributed import shard_paths
from healthbench.scoring.score import MODEL_ERROR
from healthbench.run.sample_inputs import SAMPLE_INPUTS_VERSION, differences, unchecked
from healthbench.taskconfig.schema import TaskConfig

log = logging.getLogger("healthbench")


class ResumeMismatchError(ValueError):
    """The run directory holds outputs made with another model, other model args or other
    settings that decide a stored sample (seed, protocol, task version or settings...)."""


def args_hash(args: Mapping[str, Any]) -> str:
    text = json.dumps(dict(args), sort_keys=True, default=str)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()[:16]


def check_identity(run_dir: Path, model: str, model_args: Mapping[str, Any],
                   tasks: Sequence[TaskConfig],
                   samples: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Refuse to resume a run made by something else; return what this run is (written by
    ``record_identity`` once the model has loaded, so a failed start leaves nothing behind).

    ``samples`` (``{"model_seed": ..., "tasks": {name: run.sample_inputs.task_inputs(...)}}``)
    is what else decides the stored samples: seeds, protocols, data, task settings, option
    orders, limit and subsample. A run.json written before it was recorded still resumes, with a
    warning that those could not be checked."""
    path = run_dir / "run.json"
    identity: dict[str, Any] = {"model": model, "model_args_hash": args_hash(model_args),
                                "tasks": {t.name: t.version for t in tasks}}
    if samples is not None:
        identity["samples"] = {"layout": SAMPLE_INPUTS_VERSION, **samples}
    if path.exists():
        try:
            earlier = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(earlier, dict):
                raise ValueError("not a JSON object")
        except (OSError, ValueError) as exc:
            raise ResumeMismatchError(f"{path}: unreadable ({exc}); use a new --run-id") from exc
        problems = []
        if earlier.get("model") != model:
            problems.append(f"model {earlier.get('model')!r} (now {model!r})")
        if earlier.get("model_args_hash") != identity["model_args_hash"]:
            problems.append("different --model-args")
        for name, version in identity["tasks"].items():
            before = (earlier.get("tasks") or {}).get(name)
            if before is not None and before != version:
                problems.append(f"task {name} version {before} (now {version})")
        old_samples = earlier.get("samples")
        if samples is not None and isinstance(old_samples, Mapping):
            problems += differences(old_samples, samples)
        if problems:
            raise ResumeMismatchError(
                f"{run_dir} was made with {'; '.join(problems)}: resuming would mix outputs. "
                "Use a new --run-id, or resume with the original model, arguments and "
                "settings.")
        if samples is not None:
            _warn_unchecked(path, earlier, samples)
            old = old_samples if isinstance(old_samples, Mapping) else {}
            identity["samples"]["tasks"] = {**(old.get("tasks") or {}), **samples["tasks"]}
        identity["tasks"] = {**(earlier.get("tasks") or {}), **identity["tasks"]}
    return identity


def _warn_unchecked(path: Path, earlier: Mapping[str, Any], samples: Mapping[str, Any]) -> None:
    """A run.json from before the sample inputs were recorded: say what was not checked."""
    old = earlier.get("samples")
    old = old if isinstance(old, Mapping) else {}
    names = unchecked(old, list(earlier.get("tasks") or {}), samples)
    if names:
        log.warning("%s predates the resume checks of seeds, protocols, data, task settings, "
                    "option orders and limit/subsample: task(s) %s resume without them (they "
                    "are recorded from now on)", path, ", ".join(names))


def record_identity(run_dir: Path, identity: Mapping[str, Any]) -> None:
    atomic_write_text(run_dir / "run.json", json.dumps(dict(identity), indent=2) + "\n")


def samples_stamp(samples_path: Path) -> dict[str, int] | None:
    """Size and modification time of samples.jsonl: any append or rewrite changes them."""
    try:
        st = samples_path.stat()
    except OSError:
        return None
    return {"bytes": st.st_size, "mtime_ns": st.st_mtime_ns}


def retries_pending(samples_path: Path) -> bool:
    """Whether resuming would change samples.jsonl: a sample that failed in the model (it is
    retried; found by a byte search, so a response that merely quotes the words counts too)
    or shard files a distributed run left to merge."""
    if shard_paths(samples_path):
        return True
    marker = MODEL_ERROR.encode()
    tail = b""
    try:
        with open(samples_path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 23), b""):  # 8 MB at a time
                if marker in tail + chunk[:len(marker)] or marker in chunk:
                    return True
                tail = chunk[-len(marker):]
    except OSError:
        return True
    return False


def read_previous(run_dir: Path) -> Results | None:
    """The run's results.json as an earlier command left it, or None (absent or unreadable:
    then every task is aggregated again)."""
    try:
        return read_results(run_dir / "results.json")
    except (OSError, ValueError):
        return None


def current_block(previous: Results | None, results: Results, task: str,
                  described: TaskResult) -> TaskResult | None:
    """The earlier ``tasks.<task>`` block when aggregating again would reproduce it: same
    harness (version and git sha), seed, limit and subsample, same task inputs (version,
    protocol, data checksum, group_by, metrics, seeds, option orders) and samples.jsonl untouched
    since (its stamp, ``samples_file``)."""
    if previous is None or described.extra.get("samples_file") is None:
        return None
    block = previous.tasks.get(task)
    if block is None:
        return None
    same_run = all(getattr(previous, k) == getattr(results, k)
                   for k in ("harness_version", "git_sha", "seed", "limit", "subsample"))
    stored = block.to_json()
    wanted = json.loads(json.dumps(described.to_json()))  # tuples as lists, as stored
    same_task = all(stored.get(k) == wanted.get(k) for k in _TASK_INPUTS)
    return block if same_run and same_task else None


#: The results.json keys of a task block that decide its numbers besides samples.jsonl.
_TASK_INPUTS = ("version", "protocol", "data_checksum", "data_files", "source", "output",
                "scorer", "group_by", "metric_info", "seeds", "permutations", "samples_file")

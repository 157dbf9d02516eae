"""What a run directory was made by, so that resuming never mixes two models' outputs.

``<run-dir>/run.json`` records the model, a hash of its arguments and each task's version. A
later command with the same run id resumes only if those agree; otherwise it stops with a clear
message before anything runs. (Secrets are hashed together with the other arguments, never
written.)
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Mapping, Sequence

from healthbench.results.samples import atomic_write_text
from healthbench.taskconfig.schema import TaskConfig


class ResumeMismatchError(ValueError):
    """The run directory holds outputs of another model, model args or task version."""


def args_hash(args: Mapping[str, Any]) -> str:
    text = json.dumps(dict(args), sort_keys=True, default=str)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()[:16]


def check_identity(run_dir: Path, model: str, model_args: Mapping[str, Any],
                   tasks: Sequence[TaskConfig]) -> dict[str, Any]:
    """Refuse to resume a run made by something else; return what this run is (written by
    ``record_identity`` once the model has loaded, so a failed start leaves nothing behind)."""
    path = run_dir / "run.json"
    identity = {"model": model, "model_args_hash": args_hash(model_args),
                "tasks": {t.name: t.version for t in tasks}}
    if path.exists():
        try:
            earlier = json.loads(path.read_text(encoding="utf-8"))
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
        if problems:
            raise ResumeMismatchError(
                f"{run_dir} was made with {'; '.join(problems)}: resuming would mix outputs. "
                "Use a new --run-id (or the original model, args and tasks).")
        identity["tasks"] = {**(earlier.get("tasks") or {}), **identity["tasks"]}
    return identity


def record_identity(run_dir: Path, identity: Mapping[str, Any]) -> None:
    atomic_write_text(run_dir / "run.json", json.dumps(dict(identity), indent=2) + "\n")


def samples_stamp(samples_path: Path) -> dict[str, int] | None:
    """Size and modification time of samples.jsonl: any append or rewrite changes them."""
    try:
        st = samples_path.stat()
    except OSError:
        return None
    return {"bytes": st.st_size, "mtime_ns": st.st_mtime_ns}


def read_previous(run_dir: Path) -> dict[str, Any] | None:
    """The run's results.json as an earlier command left it, or None."""
    try:
        payload = json.loads((run_dir / "results.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return payload if isinstance(payload, dict) else None


def current_block(previous: Mapping[str, Any] | None, payload: Mapping[str, Any], task: str,
                  inputs: Mapping[str, Any]) -> dict[str, Any] | None:
    """The earlier ``tasks.<task>`` block when aggregating again would reproduce it: same
    harness (version and git sha), seed, limit and subsample, same task inputs (version,
    protocol, data checksum, group_by, metrics) and samples.jsonl untouched since (its stamp)."""
    if previous is None or inputs.get("samples_file") is None:
        return None
    block = (previous.get("tasks") or {}).get(task)
    if not isinstance(block, dict):
        return None
    same_run = all(previous.get(k) == payload.get(k) for k in ("harness", "seed", "limit",
                                                               "subsample"))
    same_task = all(block.get(k) == v for k, v in inputs.items())
    return dict(block) if same_run and same_task else None

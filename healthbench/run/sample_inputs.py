"""What decides the content of a stored sample, recorded in run.json so a resume can refuse to
mix samples made under different settings in one samples.jsonl.

A sample record holds the prompt the model saw, its answer, the parsed answer and per-sample
scores. Besides the model and its arguments (``resume.check_identity``) these depend on:

* the seed as it reaches the model (a plugin taking ``seed``), the subsample (which ids), the
  seeded option orders (``--permute-options N``) and the official random fallbacks of seeded
  metrics/extractors;
* per task: its version, ``protocol:``, the data (checksum of the annotation files), the dataset
  format/options, prompt, extractor, metrics, scorer, output and generation settings, the
  option-order mode, ``--limit``/``--subsample``, and the judge of ``llm_judge`` metrics.

Not recorded, because they never change a stored sample: ``--batch-size`` (batch invariance is a
plugin's promise, see docs/models.md), ``--device``, workers, progress, ``group_by`` and the
bootstrap seed (both only change results.json, which is recomputed from samples.jsonl), and
which tasks run (a resumed run may add tasks).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import fields, is_dataclass
from typing import Any, Mapping, Sequence

from healthbench.run.seeds import fallback_seeds
from healthbench.scoring.robustness import parse_permutations
from healthbench.taskconfig.schema import NamedCall, TaskConfig

#: run.json ``samples`` layout; a run.json without it was written before these checks existed.
SAMPLE_INPUTS_VERSION = 1

#: How each recorded value is named in a refusal (the option or key that sets it).
LABELS = {
    "model_seed": "model seed (--seed)",
    "protocol": "protocol (task 'protocol:')",
    "data_checksum": "data checksum (the dataset files changed)",
    "limit": "--limit",
    "subsample": "--subsample",
    "subsample_seed": "subsample seed (--seed)",
    "permutations": "option orders (--permute-options / task 'permutations:')",
    "permutation_seed": "option-order seed (--seed)",
    "official_fallback": "official-fallback seeds (--seed or a task 'seed')",
    "judge": "judge (--judge / --judge-args)",
}

#: Seeds that only matter with another recorded value (a subsample, seeded option orders).
_SEED_OF = {"subsample_seed": "subsample", "permutation_seed": "permutations"}


def _plain(value: Any) -> Any:
    """JSON-able form of task config parts (dataclasses, mappings, tuples)."""
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _digest(value: Any) -> str:
    text = json.dumps(_plain(value), sort_keys=True, default=str)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()[:12]


def _unseeded(call: NamedCall) -> dict[str, Any]:
    """A metric/extractor call without its seed: seeds are recorded (and named) on their own."""
    return {"name": call.name, "args": {k: v for k, v in call.args.items() if k != "seed"}}


def _settings(task: TaskConfig) -> dict[str, str]:
    """A short hash per part of the task YAML that shapes a stored sample, so that a refusal
    can say which part changed."""
    return {
        "dataset": _digest({"format": task.dataset.format, "options": task.dataset.options}),
        "prompt": _digest(task.prompt),
        "extract": _digest(_unseeded(task.extract)),
        "metrics": _digest([_unseeded(c) for c in task.metrics]),
        "scoring": _digest({"output": task.output, "scorer": task.scorer,
                            "choice_template": task.choice_template}),
        "generation": _digest(task.generation),
    }


def option_order_mode(task: TaskConfig, permute_options: Any) -> str | int | None:
    """The option-order mode a task runs with: ``--permute-options`` wins over the task's
    ``permutations:``; only text-output tasks are re-asked."""
    mode = parse_permutations(permute_options if permute_options is not None
                              else task.permutations, "--permute-options")
    return mode if task.output == "text" else None


def task_inputs(task: TaskConfig, *, data_checksum: str, seed: int, limit: int | None,
                subsample: int | None, permute_options: Any,
                judge: str | None) -> dict[str, Any]:
    """Everything besides the model that decides the task's stored samples. ``task`` is the
    seeded task (``run.seeds.seeded_task``); ``judge`` names the run's judge (None: none)."""
    mode = option_order_mode(task, permute_options)
    judged = any(c.name == "llm_judge" for c in task.metrics)
    return {
        "version": task.version, "protocol": task.protocol, "data_checksum": data_checksum,
        "limit": limit, "subsample": subsample,
        "subsample_seed": None if subsample is None else seed,
        "permutations": mode,
        "permutation_seed": seed if isinstance(mode, int) else None,
        "official_fallback": fallback_seeds(task),
        "judge": judge if judged else None,
        "settings": _settings(task),
    }


def judge_identity(name: str | None, public_args: Mapping[str, Any]) -> str | None:
    """The judge as recorded: its name and a hash of its arguments with secrets redacted (a
    rotated API key does not change what the judge says)."""
    return None if name is None else f"{name} {_digest(dict(public_args))}"


def _show(value: Any) -> str:
    return repr(value) if not isinstance(value, (dict, list)) else json.dumps(value,
                                                                              sort_keys=True)


def differences(earlier: Mapping[str, Any], now: Mapping[str, Any]) -> list[str]:
    """``earlier``/``now`` are run.json ``samples`` blocks; one phrase per value that differs,
    ``"<what> <old> (now <new>)"``, for the run-level values and each task both record. A key
    the earlier block lacks (written by an older layout) is not compared."""
    out = []
    if "model_seed" in earlier and earlier["model_seed"] != now.get("model_seed"):
        out.append(f"{LABELS['model_seed']} {_show(earlier.get('model_seed'))} "
                   f"(now {_show(now.get('model_seed'))})")
    before_tasks = earlier.get("tasks") or {}
    for name, inputs in (now.get("tasks") or {}).items():
        before = before_tasks.get(name)
        if not isinstance(before, Mapping):
            continue
        changed = {key for key, value in inputs.items()
                   if key in before and _plain(before[key]) != _plain(value)}
        # the version is checked with run.json's older keys; settings are named part by part;
        # the seed of a subsample or option orders that changed needs no phrase of its own
        changed -= {"version", "settings"} | {k for k, of in _SEED_OF.items() if of in changed}
        for key, value in inputs.items():
            if key in changed:
                out.append(f"task {name} {LABELS.get(key, key)} {_show(before.get(key))} "
                           f"(now {_show(value)})")
        old_settings = before.get("settings") or {}
        for part, digest in (inputs.get("settings") or {}).items():
            if part in old_settings and old_settings[part] != digest:
                out.append(f"task {name} {part} settings in its YAML {old_settings.get(part)} "
                           f"(now {digest})")
    return out


def unchecked(earlier: Mapping[str, Any], earlier_tasks: Sequence[str],
              now: Mapping[str, Any]) -> list[str]:
    """Tasks of this run that an earlier run already wrote but whose sample inputs it did not
    record (a run.json from before these checks): they resume unchecked."""
    recorded = (earlier.get("tasks") or {}) if earlier else {}
    return [name for name in (now.get("tasks") or {})
            if name in earlier_tasks and name not in recorded]

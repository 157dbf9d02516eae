"""An LLM as a grader of open answers: the ``llm_judge`` metric and the judge it calls.

Any task with free-text answers can score them with a judge model: MMOral's open questions,
PMC-MI-Bench, the open questions of VQA-RAD / SLAKE / PathVQA. The *judge* is any model healthbench
can call (``openai`` for an OpenAI-compatible server, or a local plugin); the *prompt* is a
template in the task YAML, so that the official few-shot prompt of a benchmark is data, hashed
and recorded, not code.

How the pieces meet (the hook, explicit and per run):

1. A task lists ``{name: llm_judge, args: {template: ..., ...}}`` among its metrics. The factory
   returns an *unbound* ``JudgeMetric``: it scores nothing and marks each open answer
   ``not_scored``.
2. ``run.evaluate`` builds one ``Judge`` (``run.judge_client``) per run from ``RunSpec.judge`` /
   ``RunSpec.judge_args`` (CLI ``--judge NAME --judge-args k=v,...``) and calls
   ``bind_judge(metrics, judge)``, which returns the task's metric list with every
   ``JudgeMetric`` replaced by one bound to that judge. Nothing is global: another run, or a
   run without ``--judge``, never sees this judge.
3. After aggregation ``judge_summary`` adds a ``judge`` block to the task in results.json:
   judge identity, template hash, settings, counts (judged / not scored / failed) and a
   ``fingerprint`` over all of these. Runs whose fingerprints differ were judged differently
   and must not be ranked together.

Per answer, as the official MMOral / MM-Vet scorers do: the filled template is sent (text only,
no image) once per temperature in ``temperatures`` (default 0.0, 0.5, 1.0, 1.5, 2.0) until a
reply parses. A reply parses when the *whole* reply is a number (``float()``, surrounding
whitespace allowed) in [0, 1]; anything else (prose, "0.8 because…", "nan", 1.5) is a failed
try. A transport failure (timeout, HTTP error after the plugin's own retries) is a failed try
too. When every try fails: ``on_failure: error`` (default) makes the sample a recorded
per-sample error (its response and every raw judge output kept); ``on_failure: zero`` scores it
0.0 as the official code does. Every raw output, the temperatures, cache hits and the prompt's
hash go into samples.jsonl under ``meta.details.<metric name>``.

Judge replies are cached on disk, one small JSON file per key, where the key is the sha256 of
(judge identity, full prompt, temperature, max_tokens). Re-scoring the same answers with the
same judge (``--model replay --model-args path=<old run>``) makes no judge call. Transport
failures are not cached; unparsable replies are (they are what the judge said).
"""
from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any, Mapping, Protocol, Sequence

from healthbench.core.catalog import METRICS
from healthbench.scoring.base import Metric
from healthbench.scoring.score import Detailed
from healthbench.core.types import Response, Sample, SampleResult

#: The official MMOral / MM-Vet schedule: try i is sent at temperature i * 0.5.
OFFICIAL_TEMPERATURES = (0.0, 0.5, 1.0, 1.5, 2.0)
TEMPLATE_FIELDS = ("question", "answer", "prediction")
_FIELD = re.compile(r"\{(" + "|".join(TEMPLATE_FIELDS) + r")\}")
ON_FAILURE = ("error", "zero")


def sha256_text(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


# ---------------------------------------------------------------------------------- the judge


@dataclass(frozen=True)
class JudgeReply:
    text: str | None
    error: str | None = None
    cached: bool = False


class JudgeClient(Protocol):
    """What the metric needs of a judge (``healthbench.run.judge_client.Judge`` is the one
    healthbench builds from ``--judge``): one call per prompt and temperature that never raises,
    a stable identity (recorded and part of the fingerprint) and a description for results.json."""

    identity: dict[str, Any]
    identity_sha256: str

    def ask(self, prompt: str, temperature: float, max_tokens: int, task: str = "judge",
            sample_id: str = "") -> JudgeReply: ...

    def describe(self) -> dict[str, Any]: ...


# ---------------------------------------------------------------------------- the metric


@dataclass(frozen=True)
class JudgeSettings:
    """What the task YAML fixes about judging; recorded in results.json."""

    template: str
    temperatures: tuple[float, ...] = OFFICIAL_TEMPERATURES
    max_tokens: int = 16384
    on_failure: str = "error"
    pad_and_or: bool = False
    where: Mapping[str, Any] = field(default_factory=dict)

    @property
    def template_sha256(self) -> str:
        return sha256_text(self.template)

    def record(self) -> dict[str, Any]:
        return {"template_sha256": self.template_sha256, "temperatures": list(self.temperatures),
                "max_tokens": self.max_tokens, "on_failure": self.on_failure,
                "pad_and_or": self.pad_and_or, "where": dict(self.where)}


def render_judge_prompt(template: str, question: str, answer: str, prediction: str) -> str:
    """Fill ``{question}``, ``{answer}``, ``{prediction}`` in one pass; every other brace in the
    template (JSON in few-shot rows) is literal text, and braces in the values are never read."""
    values = {"question": question, "answer": answer, "prediction": prediction}
    return _FIELD.sub(lambda m: values[m.group(1)], template)


def parse_score(text: str | None) -> tuple[float | None, str | None]:
    """(score, None) when the whole reply is a number in [0, 1], else (None, why not)."""
    if text is None:
        return None, "no text"
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None, "failed to parse"
    if not math.isfinite(value) or value < 0.0 or value > 1.0:
        return None, f"invalid score: {value}"
    return value, None


def is_open_question(sample: Sample, where: Mapping[str, Any]) -> bool:
    """Which samples a judge grades. With ``where`` (YAML), every meta key must equal its value.
    Otherwise: ``meta.answer_type == "open"`` where the loader sets ``answer_type``, else a
    sample without options."""
    if where:
        return all(sample.meta.get(k) == v for k, v in where.items())
    if "answer_type" in sample.meta:
        return sample.meta.get("answer_type") == "open"
    return not sample.options


@dataclass(frozen=True)
class JudgeMetric(Metric):
    """A per-sample judge score; ``with_judge`` returns the same metric bound to a judge."""

    settings: JudgeSettings | None = None
    judge: JudgeClient | None = field(default=None, compare=False)

    def with_judge(self, judge: JudgeClient | None) -> "JudgeMetric":
        assert self.settings is not None
        return _judge_metric(self.name, self.settings, judge)


def _judge_metric(name: str, settings: JudgeSettings, judge: JudgeClient | None) -> JudgeMetric:
    def score(sample: Sample, response: Response, parsed: Any) -> Detailed | None:
        return judge_one(settings, judge, sample, response)

    return JudgeMetric(name, per_sample=score, settings=settings, judge=judge)


def judge_one(settings: JudgeSettings, judge: JudgeClient | None, sample: Sample,
              response: Response) -> Detailed | None:
    """The judge's score for one answer, with everything it said; None for closed questions."""
    if not is_open_question(sample, settings.where):
        return None
    answer = "" if sample.target is None else str(sample.target)
    if settings.pad_and_or:
        answer = answer.replace("<AND>", " <AND> ").replace("<OR>", " <OR> ")
    prediction = response.text if response.text is not None else ""
    prompt = render_judge_prompt(settings.template, sample.question, answer, prediction)
    details: dict[str, Any] = {"prompt_sha256": sha256_text(prompt)}
    if judge is None:
        return Detailed(None, {**details, "status": "not_scored",
                               "reason": "no judge configured (--judge)"})
    tries: list[dict[str, Any]] = []
    for temperature in settings.temperatures:
        reply = judge.ask(prompt, temperature, settings.max_tokens, sample_id=sample.id)
        attempt: dict[str, Any] = {"temperature": temperature}
        if reply.error is not None:
            tries.append({**attempt, "error": reply.error})
            continue
        value, problem = parse_score(reply.text)
        attempt.update(output=reply.text, cached=reply.cached)
        if value is None:
            tries.append({**attempt, "problem": problem})
            continue
        tries.append(attempt)
        return Detailed(value, {**details, "status": "judged", "score": value, "tries": tries})
    last = tries[-1] if tries else {}
    why = (f"judge gave no valid score in {len(tries)} tries (last: "
           f"{last.get('error') or repr(last.get('output'))[:200]})")
    if settings.on_failure == "zero":
        return Detailed(0.0, {**details, "status": "failed", "score": 0.0, "tries": tries,
                              "failure": why + "; scored 0.0 (on_failure: zero)"})
    return Detailed(None, {**details, "status": "failed", "tries": tries, "error": why})


@METRICS.register("llm_judge")
def llm_judge(template: str, name: str = "judge_accuracy",
              temperatures: Sequence[float] = OFFICIAL_TEMPERATURES, max_tokens: int = 16384,
              on_failure: str = "error", pad_and_or: bool = False,
              where: Mapping[str, Any] | None = None) -> JudgeMetric:
    """Mean judge score in [0, 1] over the open questions (see the module docstring).

    ``template`` must contain ``{prediction}`` and may use ``{question}`` and ``{answer}`` (the
    reference). ``pad_and_or`` pads ``<AND>``/``<OR>`` in the reference with spaces (MM-Vet).
    """
    if "{prediction}" not in template:
        raise ValueError("llm_judge: template must contain {prediction}")
    temps = tuple(float(t) for t in temperatures)
    if not temps or any(t < 0 for t in temps):
        raise ValueError("llm_judge: temperatures must be a non-empty list of numbers >= 0")
    if on_failure not in ON_FAILURE:
        raise ValueError(f"llm_judge: on_failure must be one of {', '.join(ON_FAILURE)}")
    if int(max_tokens) < 1:
        raise ValueError("llm_judge: max_tokens must be >= 1")
    settings = JudgeSettings(template=template, temperatures=temps, max_tokens=int(max_tokens),
                             on_failure=on_failure, pad_and_or=bool(pad_and_or),
                             where=dict(where or {}))
    return _judge_metric(name, settings, None)


# ------------------------------------------------------------------ binding and recording


def bind_judge(metrics: Sequence[Metric], judge: JudgeClient | None) -> list[Metric]:
    """The task's metrics with every judge metric bound to ``judge`` (None: not scored)."""
    return [m.with_judge(judge) if isinstance(m, JudgeMetric) else m for m in metrics]


def judge_summary(metrics: Sequence[Metric], records: Sequence[SampleResult],
                  judge: JudgeClient | None) -> dict[str, Any] | None:
    """The ``judge`` block of a task in results.json; None when the task has no judge metric.

    ``fingerprint`` changes whenever the judge, a template or a setting changes; the leaderboard
    ranks together only runs with equal fingerprints (null = not judged).
    """
    judged = [m for m in metrics if isinstance(m, JudgeMetric) and m.settings is not None]
    if not judged:
        return None
    per_metric: dict[str, Any] = {}
    for metric in judged:
        counts = {"judged": 0, "not_scored": 0, "failed": 0, "cached_tries": 0}
        for record in records:
            details = (record.meta.get("details") or {}).get(metric.name)
            if not isinstance(details, Mapping):
                continue
            status = details.get("status")
            if status in counts:
                counts[status] += 1
            counts["cached_tries"] += sum(1 for t in details.get("tries", ())
                                          if isinstance(t, Mapping) and t.get("cached"))
        assert metric.settings is not None
        per_metric[metric.name] = {**metric.settings.record(),
                                   **{f"n_{k}": v for k, v in counts.items()}}
    identity = judge.identity if judge is not None else None
    fingerprint = None
    if judge is not None:
        fingerprint = sha256_text(_canonical({
            "judge": identity, "metrics": {k: {s: v[s] for s in (
                "template_sha256", "temperatures", "max_tokens", "on_failure", "pad_and_or",
                "where")} for k, v in per_metric.items()}}))
    return {"configured": judge is not None, "identity": identity, "fingerprint": fingerprint,
            "info": judge.describe() if judge is not None else None, "metrics": per_metric}


def not_scored_notes(payload: Mapping[str, Any]) -> list[str]:
    """One line per task whose open answers were left unscored (printed by the CLI)."""
    notes = []
    for name, block in payload.get("tasks", {}).items():
        for metric, info in ((block.get("judge") or {}).get("metrics") or {}).items():
            if info.get("n_not_scored"):
                notes.append(f"{name}: {info['n_not_scored']} open answer(s) not scored by "
                             f"{metric} (no judge configured; see docs/judge.md)")
    return notes


"""One Response → one SampleResult: extract the answer, compute per-sample scores.

Kept apart from the runner so that re-scoring saved responses (``replay``) and the runner share
exactly one code path.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from healthbench.core.catalog import EXTRACTORS
from healthbench.scoring.base import UNPARSED, Metric
from healthbench.taskconfig.schema import TaskConfig, with_protocol
from healthbench.core.types import Response, Sample, SampleError, SampleResult


@dataclass(frozen=True)
class Detailed:
    """What a per-sample metric may return instead of a bare float: the score plus a JSON-safe
    record of how it was reached (e.g. an LLM judge's raw outputs). ``details`` is written to
    samples.jsonl under ``meta.details.<metric name>``; an ``"error"`` key in it makes the
    sample an error record (response and details kept, so it can be re-scored)."""

    value: float | None
    details: Mapping[str, Any] = field(default_factory=dict)


#: Prefix of errors raised by the model call (retried on resume); others are deterministic.
MODEL_ERROR = "model error: "


def summarize_inputs(sample: Sample, prompt: str | None = None) -> dict[str, Any]:
    """A compact, JSON-safe record of what the model was shown (not the pixels); each image is a
    structured record (``ImageSource.to_record``) that reports rebuild thumbnails from."""
    out: dict[str, Any] = {"images": [img.to_record() for img in sample.images]}
    if sample.question:
        out["question"] = sample.question
    if sample.options:
        out["options"] = dict(sample.options)
    if prompt is not None:
        out["prompt"] = prompt
    return out


def _json_target(target: Any) -> Any:
    describe = getattr(target, "describe", None)
    return describe() if callable(describe) else target


def error_result(task: str, sample: Sample | SampleError, message: str,
                 prompt: str | None = None) -> SampleResult:
    if isinstance(sample, SampleError):
        return SampleResult(id=sample.id, task=task, target=None, response=None, parsed=None,
                            scores={}, meta=dict(sample.meta), error=message)
    return SampleResult(id=sample.id, task=task, target=_json_target(sample.target),
                        response=None, parsed=None, scores={}, meta=dict(sample.meta),
                        error=message, inputs=summarize_inputs(sample, prompt))


def parse_response(task: TaskConfig, sample: Sample, response: Response) -> tuple[Any, Any]:
    """(what to store as ``response``, the parsed answer)."""
    return SampleScorer(task, ())._parse(sample, response)


def score_sample(task: TaskConfig, metrics: Sequence[Metric], sample: Sample,
                 response: Response, prompt: str | None = None) -> SampleResult:
    """The finished record for one sample; a failing metric becomes the sample's error."""
    return SampleScorer(task, metrics)(sample, response, prompt)


class SampleScorer:
    """``score_sample`` for one task, with what every sample shares worked out once: the
    extractor with its arguments and the per-sample metrics (the runner scores 100k samples
    of a full-size suite one by one). A config problem found here (an unknown extractor, a
    contradicting protocol) still fails each sample, as ``score_sample`` always did."""

    def __init__(self, task: TaskConfig, metrics: Sequence[Metric]) -> None:
        self.task = task
        self.metrics = [m for m in metrics if m.per_sample is not None]
        self._extract: Any = None
        self._problem: Exception | None = None
        if task.scorer != "loglikelihood" and task.output != "image":
            try:
                extractor = EXTRACTORS.get(task.extract.name)
                args = with_protocol(extractor, task.extract.args, task, "extract")
                self._extract = functools.partial(extractor, **args) if args else extractor
            except Exception as exc:  # raised again, per sample, inside its try
                self._problem = exc

    def _parse(self, sample: Sample, response: Response) -> tuple[Any, Any]:
        """(what to store as ``response``, the parsed answer)."""
        task = self.task
        if task.scorer == "loglikelihood":
            scores = list(response.choice_scores or ())
            if len(scores) != len(sample.options):
                raise ValueError(f"model returned {len(scores)} choice scores for "
                                 f"{len(sample.options)} options")
            best = max(range(len(scores)), key=lambda i: (scores[i], -i))  # ties: first option
            return scores, list(sample.options)[best]
        if task.output == "image":
            stored = {"image_shape": list(getattr(response.image, "shape", ())),
                      "dtype": str(getattr(response.image, "dtype", "")),
                      **{k: response.extra[k] for k in ("output", "strip")
                         if k in response.extra}}
            return stored, response.image
        if self._problem is not None:
            raise self._problem
        text = response.text if response.text is not None else ""
        return text, self._extract(text, sample)

    def __call__(self, sample: Sample, response: Response,
                 prompt: str | None = None) -> SampleResult:
        task = self.task
        if response.error:
            return error_result(task.name, sample, f"{MODEL_ERROR}{response.error}", prompt)
        try:
            stored, parsed = self._parse(sample, response)
            scores = {m.name: m.per_sample(sample, response, parsed) for m in self.metrics}
        except Exception as exc:  # a metric or extractor rejecting this output
            return error_result(task.name, sample,
                                f"scoring failed: {type(exc).__name__}: {exc}", prompt)
        details = {k: dict(v.details) for k, v in scores.items() if isinstance(v, Detailed)}
        if details:
            scores = {k: (v.value if isinstance(v, Detailed) else v) for k, v in scores.items()}
        failed = [f"scoring failed: {k}: {d['error']}" for k, d in details.items()
                  if d.get("error")]
        if task.output == "image":
            parsed = None  # pixels are not written into samples.jsonl
        return SampleResult(id=sample.id, task=task.name, target=_json_target(sample.target),
                            response=stored, parsed=parsed if parsed is not UNPARSED else None,
                            scores={k: (None if v is None else float(v))
                                    for k, v in scores.items()},
                            meta={**sample.meta, **({"details": details} if details else {})},
                            error="; ".join(failed) or None,
                            inputs=summarize_inputs(sample, prompt))

"""lm-eval's ``LM`` interface over a healthbench model, riding the same machinery as the runner.

``generate_until`` → ``Model.generate``; ``loglikelihood`` → ``Model.score_choices`` (one
request per context, its continuations as choices). Batches go through the runner's
``BatchCaller`` (out-of-memory halving, then one request at a time, so only the failing docs are
lost), text is cut at stop strings as every text plugin cuts it, and every answered request is
appended to a request log in the run folder (fsync'd per batch): a resumed run answers those
requests from the log and asks the model only for the rest. Model failures are not logged, so
a resume retries them, as the runner retries samples that failed in the model.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from healthbench.core.types import GenerationParams, Request, Response
from healthbench.models.base import Model, cut_at_stop
from healthbench.run.batching import BatchCaller

DEFAULT_MAX_GEN_TOKS = 256
# The log-likelihood handed to lm-eval for a failed doc: finite, so its softmax-based metrics
# stay NaN-free; the doc is an error record and left out of every healthbench metric anyway.
LOST = -1e30
PREFIX = "lmeval:"


def block_name(task: str) -> str:
    return PREFIX + task


class RequestLog:
    """Answered requests by key, one JSON line each, appended and fsync'd per batch; a torn
    last line (a kill mid-write) is ignored on reading. ``path`` None keeps nothing."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.answers: dict[str, dict[str, Any]] = {}
        if path is not None and path.exists():
            for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
                try:
                    entry = json.loads(line)
                    self.answers[entry["key"]] = entry["response"]
                except (ValueError, KeyError, TypeError):
                    continue  # torn or foreign line: that request is asked again

    def get(self, key: str) -> Response | None:
        data = self.answers.get(key)
        if data is None:
            return None
        scores = data.get("choice_scores")
        return Response(text=data.get("text"),
                        choice_scores=tuple(scores) if scores is not None else None,
                        extra=data.get("extra") or {})

    def add(self, answered: Sequence[tuple[str, Response]]) -> None:
        kept = [(k, r) for k, r in answered if not r.error]
        if self.path is None or not kept:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as fh:
            for key, response in kept:
                extra = response.extra or {}
                data = {"text": response.text,
                        "choice_scores": None if response.choice_scores is None
                        else [float(v) for v in response.choice_scores],
                        "extra": {"loglikelihood": [float(v) for v in extra["loglikelihood"]]}
                        if "loglikelihood" in extra else {}}
                if "is_greedy" in extra:
                    data["extra"]["is_greedy"] = [bool(v) for v in extra["is_greedy"]]
                self.answers[key] = data
                fh.write(json.dumps({"key": key, "response": data}) + "\n")
            fh.flush()
            os.fsync(fh.fileno())


def request_key(kind: str, task: str, doc_id: Any, request: Request) -> str:
    """Stable across runs: the lm-eval task, the doc, and what the model is asked."""
    what = {"kind": kind, "task": task, "doc": str(doc_id), "prompt": request.prompt,
            "choices": list(request.choices), "generation": asdict(request.generation)}
    return hashlib.sha256(json.dumps(what, sort_keys=True, default=str).encode()).hexdigest()


def make_lm(model: Model, batch_size: int, log_path: Path | None = None) -> Any:
    """An lm-eval ``LM`` backed by ``model`` (the class is built lazily: lm_eval imports late)."""
    from lm_eval.api.model import LM

    class HealthbenchLM(LM):  # type: ignore[misc]
        """lm-eval requests → healthbench Requests, in batches; failures recorded per doc."""

        MULTIMODAL = True  # images given by a task's doc_to_image are passed on

        def __init__(self) -> None:
            super().__init__()
            self.model = model
            self.batch_size = max(1, int(batch_size))
            self.errors: dict[tuple[str, int], str] = {}
            self.log = RequestLog(log_path)
            self.asked = 0  # requests sent to the model (not answered from the log)

        def _call(self, fn: Callable[[list[Request]], list[Response]], kind: str,
                  owners: Sequence[Any], requests: list[Request]) -> list[Response]:
            keys = [request_key(kind, o.task_name, o.doc_id, r) for o, r in zip(owners, requests)]
            out: list[Response | None] = [self.log.get(k) for k in keys]
            todo = [i for i, r in enumerate(out) if r is None]
            caller = BatchCaller(fn)
            for start in range(0, len(todo), self.batch_size):
                chunk = todo[start:start + self.batch_size]
                responses = caller([requests[i] for i in chunk])
                self.asked += len(chunk)
                self.log.add([(keys[i], r) for i, r in zip(chunk, responses)])
                for i, response in zip(chunk, responses):
                    out[i] = response
            for owner, response in zip(owners, out):
                if response is not None and response.error:
                    self.errors.setdefault((owner.task_name, owner.doc_id), response.error)
            return [r if r is not None else Response(error="no response") for r in out]

        def generate_until(self, requests: list[Any], disable_tqdm: bool = False) -> list[str]:
            built = [generation_request(inst) for inst in requests]
            responses = self._call(self.model.generate, "generate", requests, built)
            return [cut_at_stop(response.text or "", request.generation.stop)
                    if not response.error else "" for request, response in zip(built, responses)]

        def loglikelihood(self, requests: list[Any],
                          disable_tqdm: bool = False) -> list[tuple[float, bool]]:
            # One healthbench request per (doc, context, images): its continuations are choices.
            groups: dict[tuple, list[int]] = {}
            for i, inst in enumerate(requests):
                visual = visuals(inst.args)
                key = (inst.task_name, inst.doc_id, inst.args[0], tuple(id(v) for v in visual))
                groups.setdefault(key, []).append(i)
            keys = list(groups)
            owners = [requests[groups[key][0]] for key in keys]
            built = [Request(task=block_name(first.task_name), sample_id=str(first.doc_id),
                             prompt=strip_image_marks(first.args[0]), images=visuals(first.args),
                             choices=tuple(requests[i].args[1] for i in groups[key]))
                     for key, first in zip(keys, owners)]
            responses = self._call(self.model.score_choices, "loglikelihood", owners, built)
            out: list[tuple[float, bool]] = [(LOST, False)] * len(requests)
            for key, response in zip(keys, responses):
                members = groups[key]
                lls, greedy = likelihoods(response, len(members))
                for j, i in enumerate(members):
                    out[i] = (lls[j], greedy[j])
            return out

        def loglikelihood_rolling(self, requests: list[Any],
                                  disable_tqdm: bool = False) -> list[float]:
            raise NotImplementedError("healthbench models score choices after a prompt; "
                                      "rolling (perplexity) tasks are not supported")

    return HealthbenchLM()


def visuals(args: Sequence[Any]) -> tuple[Any, ...]:
    extra = args[2] if len(args) > 2 and isinstance(args[2], Mapping) else {}
    return tuple(extra.get("visual") or ())


def strip_image_marks(text: str) -> str:
    # Plugins place image tokens themselves; lm-eval's literal placeholder would be read as text.
    return text.replace("<image>", "")


def generation_request(inst: Any) -> Request:
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
                   prompt=strip_image_marks(context), images=visuals(inst.args),
                   generation=params)


def likelihoods(response: Response, n: int) -> tuple[list[float], list[bool]]:
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

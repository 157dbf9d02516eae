"""The judge client: a model plugin used as a grader of open answers, replies cached on disk.

The ``llm_judge`` metric (``healthbench.scoring.judge``) knows only the small ``JudgeClient``
interface; this module builds the concrete client from a model name and arguments (CLI
``--judge NAME --judge-args k=v,...``), so scoring never imports a model plugin.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Mapping

from healthbench.core.types import GenerationParams, Request, Response
from healthbench.models.base import Model, create_model, public_args, public_info
from healthbench.scoring.judge import JudgeReply, _canonical, sha256_text

#: Plugin arguments that change how a judge is reached, not what it answers: left out of its
#: identity (and so of the cache key and the fingerprint).
TRANSPORT_ARGS = frozenset({"max_concurrency", "timeout", "max_retries", "backoff",
                            "max_backoff", "batch_size", "device"})


class JudgeCache:
    """One JSON file per key under ``root/<2 hex>/<key>.json``, written atomically."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> str | None:
        try:
            data = json.loads(self._path(key).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None  # absent, or a torn file from a crash: ask again
        text = data.get("text") if isinstance(data, dict) else None
        return text if isinstance(text, str) else None

    def put(self, key: str, text: str, identity: Mapping[str, Any]) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"text": text, "judge": identity}), encoding="utf-8")
        os.replace(tmp, path)


class Judge:
    """A model used as a grader, with its replies cached on disk.

    ``name``/``args`` are what ``create_model`` receives; a ready ``model`` may be passed instead
    (tests, or a plugin built by hand). ``cache_dir`` None disables the cache.
    """

    def __init__(self, name: str, args: Mapping[str, Any] | None = None,
                 cache_dir: Path | None = None, model: Model | None = None) -> None:
        self.name = name
        self.args = dict(args or {})
        self.model = model if model is not None else create_model(name, self.args)
        self.cache = JudgeCache(cache_dir) if cache_dir is not None else None
        self.identity: dict[str, Any] = {
            "model": name,
            "args": {k: v for k, v in public_args(self.args).items() if k not in TRANSPORT_ARGS},
        }
        self.identity_sha256 = sha256_text(_canonical(self.identity))

    def cache_key(self, prompt: str, temperature: float, max_tokens: int) -> str:
        return hashlib.sha256(_canonical({"judge": self.identity, "prompt": prompt,
                                          "temperature": temperature,
                                          "max_tokens": max_tokens}).encode()).hexdigest()

    def ask(self, prompt: str, temperature: float, max_tokens: int, task: str = "judge",
            sample_id: str = "") -> JudgeReply:
        """One judge call (or cache hit); never raises."""
        key = self.cache_key(prompt, temperature, max_tokens)
        if self.cache is not None:
            hit = self.cache.get(key)
            if hit is not None:
                return JudgeReply(hit, cached=True)
        request = Request(task=task, sample_id=sample_id, prompt=prompt, output="text",
                          generation=GenerationParams(max_new_tokens=max_tokens,
                                                      temperature=temperature))
        try:
            responses = self.model.generate([request])
            response = responses[0] if len(responses) == 1 else Response(
                error=f"judge returned {len(responses)} answers for 1 request")
        except Exception as exc:  # a judge bug costs this try only
            response = Response(error=f"{type(exc).__name__}: {exc}")
        if response.error or response.text is None:
            return JudgeReply(None, error=response.error or "judge returned no text")
        if self.cache is not None:
            try:
                self.cache.put(key, response.text, self.identity)
            except OSError:
                pass  # a full disk loses the cache entry, not the score
        return JudgeReply(response.text)

    def describe(self) -> dict[str, Any]:
        return {**self.identity, "identity_sha256": self.identity_sha256,
                "info": public_info(self.model.describe()),
                "cache_dir": str(self.cache.root) if self.cache else None}

    def close(self) -> None:
        self.model.close()


def create_judge(name: str, args: Mapping[str, Any] | None, cache_dir: Path | None) -> Judge:
    return Judge(name, args, cache_dir)

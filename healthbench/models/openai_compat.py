"""``openai``: a model behind an OpenAI-compatible ``/chat/completions`` server (vLLM, SGLang,
TGI, llama.cpp, OpenAI itself…).

    export MY_KEY=...   # optional: local servers usually need none
    healthbench run --model openai --model-args model=Qwen/Qwen2-VL-7B-Instruct,base_url=http://127.0.0.1:8000/v1,api_key_env=MY_KEY

The API key is read from the environment variable that ``api_key_env`` names (default
``OPENAI_API_KEY``); the key itself is never an argument, so it never reaches results.json.
Images travel inline as base64 ``data:`` URLs, after the prompt text of the single user turn.

Every request ends with a Response, never an exception: up to ``max_concurrency`` requests are in
flight at once; each attempt has a hard ``timeout`` (seconds, the whole answer included, so a
server that hangs or trickles bytes is cut off); 429, 408 and 5xx answers, timeouts and dropped
connections are retried ``max_retries`` times with exponential backoff (``backoff`` ·
2^attempt, jittered, capped at ``max_backoff``, honouring ``Retry-After``). After the last try the
sample gets ``Response.error`` saying what happened. A malformed 200 answer or another 4xx is not
retried. So one call takes at most about ``(max_retries + 1) · (timeout + max_backoff)`` per wave
of ``max_concurrency`` requests.

Only the standard library is used (``http.client``), so the plugin adds no dependency.
"""
from __future__ import annotations

import base64
import http.client
import io
import json
import logging
import os
import random
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Sequence
from urllib.parse import urlsplit

from healthbench.core.catalog import MODELS
from healthbench.models.base import Model, ModelArgsError
from healthbench.models.base import cut_at_stop
from healthbench.core.types import Request, Response

log = logging.getLogger("healthbench")

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
MAX_RESPONSE_BYTES = 64 * 1024 * 1024
OPENAI_MAX_STOP = 4  # the API rejects more; the rest are applied locally


class RetryableError(Exception):
    """A failed attempt worth repeating (timeout, dropped connection, 429/5xx)."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class FinalError(Exception):
    """A failed attempt that another try would not fix (4xx, malformed answer)."""


@MODELS.register("openai")
class OpenAIChatModel(Model):
    """A model served over an OpenAI-compatible chat-completions HTTP API."""

    capabilities = frozenset({"text"})
    default_batch_size = 32

    def __init__(self, model: str, base_url: str = "http://127.0.0.1:8000/v1",
                 api_key_env: str = "OPENAI_API_KEY", max_concurrency: int = 8,
                 timeout: float = 120.0, max_retries: int = 4, backoff: float = 1.0,
                 max_backoff: float = 30.0, system_prompt: str | None = None,
                 image_format: str = "png", seed: int | None = None,
                 batch_size: int | None = None) -> None:
        parts = urlsplit(str(base_url))
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ModelArgsError(f"openai: base_url must be http(s)://host[:port]/path, got "
                                 f"{base_url!r}")
        if image_format not in ("png", "jpeg"):
            raise ModelArgsError(f"openai: image_format must be png or jpeg, got "
                                 f"{image_format!r}")
        for name, value in (("max_concurrency", max_concurrency), ("timeout", timeout)):
            if value <= 0:
                raise ModelArgsError(f"openai: {name} must be positive, got {value!r}")
        if max_retries < 0 or backoff < 0 or max_backoff < 0:
            raise ModelArgsError("openai: max_retries, backoff and max_backoff must be >= 0")
        self.model = str(model)
        self.scheme, self.host = parts.scheme, parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.path = parts.path.rstrip("/") + "/chat/completions"
        self.public_url = f"{parts.scheme}://{self.host}:{self.port}{parts.path}"  # no userinfo
        self.api_key_env = api_key_env
        self.max_concurrency = int(max_concurrency)
        self.timeout = float(timeout)
        self.max_retries = int(max_retries)
        self.backoff = float(backoff)
        self.max_backoff = float(max_backoff)
        self.system_prompt = system_prompt
        self.image_format = image_format
        self.seed = seed
        if batch_size is not None:
            self.default_batch_size = int(batch_size)
        self._closing = threading.Event()

    def auto_batch_size(self, requests: Sequence[Request]) -> int:
        return max(self.default_batch_size, 4 * self.max_concurrency)

    # ---------------------------------------------------------------- requests

    def generate(self, requests: Sequence[Request]) -> list[Response]:
        if not requests:
            return []
        workers = min(self.max_concurrency, len(requests))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="hb-openai") as pool:
            return list(pool.map(self._answer, requests))

    def _answer(self, request: Request) -> Response:
        """One request through all its attempts; never raises."""
        try:
            if request.output != "text":
                return Response(error=f"openai: generates text only, not {request.output!r}")
            payload = json.dumps(self._body(request)).encode("utf-8")
        except Exception as exc:  # a bad image or prompt costs only this sample
            return Response(error=f"openai: cannot build the request: "
                                  f"{type(exc).__name__}: {exc}")
        attempts = self.max_retries + 1
        for attempt in range(attempts):
            try:
                text = self._attempt(payload)
            except FinalError as exc:
                return Response(error=f"openai: {exc}", extra={"attempts": attempt + 1})
            except RetryableError as exc:
                if attempt + 1 == attempts or self._closing.is_set():
                    return Response(error=f"openai: {exc}; gave up after {attempt + 1} "
                                          f"attempt(s)", extra={"attempts": attempt + 1})
                delay = min(self.max_backoff, self.backoff * 2 ** attempt)
                delay *= random.uniform(0.5, 1.0)
                if exc.retry_after is not None:
                    delay = max(delay, min(exc.retry_after, self.max_backoff))
                log.debug("openai: %s (%s); retry %d in %.2fs", request.sample_id, exc,
                          attempt + 1, delay)
                self._closing.wait(delay)
            except Exception as exc:  # a bug must not lose the sample either
                return Response(error=f"openai: {type(exc).__name__}: {exc}")
            else:
                return Response(text=cut_at_stop(text, request.generation.stop),
                                extra={"attempts": attempt + 1})
        raise AssertionError("unreachable")

    def _body(self, request: Request) -> dict[str, Any]:
        if request.images:
            content: Any = [{"type": "text", "text": request.prompt}]
            content += [{"type": "image_url", "image_url": {"url": self._data_url(image)}}
                        for image in request.images]
        else:
            content = request.prompt
        messages: list[dict[str, Any]] = []
        system = self.system_prompt or request.system
        if system:
            messages.append({"role": "system", "content": system})
        messages.append({"role": "user", "content": content})
        params = request.generation
        body: dict[str, Any] = {"model": self.model, "messages": messages,
                                "max_tokens": params.max_new_tokens,
                                "temperature": params.temperature}
        if not params.greedy:
            body["top_p"] = params.top_p
        if params.stop:
            body["stop"] = list(params.stop[:OPENAI_MAX_STOP])
        if self.seed is not None:
            body["seed"] = self.seed
        return body

    def _data_url(self, image: Any) -> str:
        if not hasattr(image, "save"):
            raise TypeError(f"image is a {type(image).__name__}, not a decoded PIL image")
        if image.mode not in ("L", "RGB", "RGBA") or \
                (self.image_format == "jpeg" and image.mode != "RGB"):
            image = image.convert("RGB")
        buffer = io.BytesIO()
        image.save(buffer, format=self.image_format.upper())
        encoded = base64.b64encode(buffer.getvalue()).decode("ascii")
        return f"data:image/{self.image_format};base64,{encoded}"

    # ---------------------------------------------------------------- HTTP

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        key = os.environ.get(self.api_key_env) if self.api_key_env else None
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return headers

    def _attempt(self, payload: bytes) -> str:
        """One POST; the answer's text, or RetryableError / FinalError."""
        deadline = time.monotonic() + self.timeout
        cls = http.client.HTTPSConnection if self.scheme == "https" else \
            http.client.HTTPConnection
        conn = cls(self.host, self.port, timeout=self.timeout)
        try:
            conn.request("POST", self.path, body=payload, headers=self._headers())
            sock = conn.sock
            _set_timeout(sock, deadline)
            response = conn.getresponse()
            chunks, size = [], 0
            while True:
                _set_timeout(sock, deadline)
                chunk = response.read1(65536)
                if not chunk:
                    break
                size += len(chunk)
                if size > MAX_RESPONSE_BYTES:
                    raise FinalError(f"answer larger than {MAX_RESPONSE_BYTES} bytes")
                chunks.append(chunk)
            status, data = response.status, b"".join(chunks)
            retry_after = _retry_after(response.getheader("Retry-After"))
        except (TimeoutError, socket.timeout):
            raise RetryableError(f"no complete answer within timeout={self.timeout:g}s") \
                from None
        except (ConnectionError, http.client.HTTPException, OSError) as exc:
            raise RetryableError(f"connection to {self.public_url} failed: "
                                 f"{type(exc).__name__}: {exc}") from None
        finally:
            conn.close()
        if status != 200:
            message = f"HTTP {status} from {self.public_url}: {_error_text(data)}"
            if status in RETRY_STATUSES:
                raise RetryableError(message, retry_after)
            raise FinalError(message)
        return _completion_text(data)

    def describe(self) -> dict[str, Any]:
        return {"kind": "OpenAI-compatible chat server", "base_url": self.public_url,
                "served_model": self.model, "max_concurrency": self.max_concurrency}

    def close(self) -> None:
        self._closing.set()


def _set_timeout(sock: Any, deadline: float) -> None:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise TimeoutError
    if sock is not None:
        sock.settimeout(remaining)


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None  # an HTTP date: fall back to our own backoff


def _error_text(data: bytes) -> str:
    try:
        body = json.loads(data)
        message = body.get("error", {}).get("message") if isinstance(body, dict) else None
        if message:
            return str(message)[:300]
    except (ValueError, AttributeError):
        pass
    return data[:300].decode("utf-8", errors="replace") or "(empty body)"


def _completion_text(data: bytes) -> str:
    try:
        body = json.loads(data)
        content = body["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        snippet = data[:200].decode("utf-8", errors="replace")
        raise FinalError(f"malformed chat completion ({type(exc).__name__}): {snippet!r}") \
            from None
    if content is None:
        return ""  # e.g. a refusal or tool call: an empty answer, scored as unparsed
    if isinstance(content, list):  # some servers return content parts
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return str(content)


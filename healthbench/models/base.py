"""The model plugin contract: one batched call, declared capabilities, order kept.

A plugin subclasses ``Model``, declares ``capabilities`` (``text``, ``image``, and optionally
``loglikelihood``) and implements ``generate``: a list of Requests in, a list of Responses out,
same length and order. Nothing outside ``models/`` knows how a model works inside; nothing inside
knows which benchmark it serves. Register built-ins with ``@MODELS.register("name")``; third
parties declare an entry point in the ``healthbench.models`` group::

    [options.entry_points]
    healthbench.models =
        mymodel = mypackage.plugin:MyModel

Model arguments arrive as keyword arguments from ``--model-args k=v,k=v`` (values already typed:
int, float, bool, or str).
"""
from __future__ import annotations

import inspect
import re
from abc import ABC, abstractmethod
from typing import Any, Callable, ClassVar, Mapping, Sequence

from healthbench.core.types import Request, Response

CAPABILITIES = ("text", "image", "loglikelihood")


class ModelArgsError(ValueError):
    """Model arguments the plugin does not accept or cannot use."""


class Model(ABC):
    """Base class of every model plugin."""

    #: What the model can produce: "text", "image", "loglikelihood" (score_choices).
    capabilities: ClassVar[frozenset[str]] = frozenset({"text"})
    #: Batch size used for ``--batch-size auto`` unless the plugin overrides ``auto_batch_size``.
    default_batch_size: ClassVar[int] = 8
    #: True when each response depends only on its own request (and the model's seed), never on
    #: the other requests of its batch: then batch size, batch composition and a resume that
    #: splits a batch cannot change a single output bit. docs/models.md lists who guarantees it.
    batch_invariant: bool = False

    @classmethod
    def capabilities_for(cls, args: Mapping[str, Any]) -> frozenset[str]:
        """What a model built from ``args`` will be able to do, known before any weight is read,
        so that a task the model cannot serve is refused before loading. Plugins whose
        capabilities depend on their arguments (a variant without a generation adapter, weights
        not given) override this; the instance's ``capabilities`` must agree with it."""
        return frozenset(cls.capabilities)

    #: Whether the model looks at input pixels. False (replay, random): text-output requests
    #: carry no decoded images (``images == ()``); the runner only checks each image file's
    #: header, so a missing or unreadable image is still an error, at a fraction of the cost.
    needs_pixels: ClassVar[bool] = True

    @abstractmethod
    def generate(self, requests: Sequence[Request]) -> list[Response]:
        """One Response per Request, in order. Raise only for failures of the whole batch."""

    def score_choices(self, requests: Sequence[Request]) -> list[Response]:
        """For each request, a score per ``request.choices`` (higher = more likely)."""
        raise NotImplementedError(f"{type(self).__name__} does not score choices")

    def auto_batch_size(self, requests: Sequence[Request]) -> int:
        return self.default_batch_size

    def describe(self) -> dict[str, Any]:
        """Facts recorded in results.json (variant, parameter count…); no secrets."""
        return {}

    def close(self) -> None:
        """Free memory/connections; called once when the run ends."""


def cut_at_stop(text: str, stops: Sequence[str]) -> str:
    """``text`` up to the first occurrence of any stop string (a model may run past it). Every
    text plugin and the lm-eval adapter cut the same way."""
    cut = len(text)
    for stop in stops:
        if stop:
            at = text.find(stop)
            if at != -1:
                cut = min(cut, at)
    return text[:cut]


def sample_seed(seed: int, request: Request) -> int:
    """A seed of its own for each sample: (model seed, task, sample id), not its batch slot."""
    import hashlib

    digest = hashlib.sha256(f"{seed}\0{request.task}\0{request.sample_id}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def each_alone(call: Callable[[Sequence[Request]], list[Response]], requests: Sequence[Request],
               seed: int) -> list[Response]:
    """``call`` on one request at a time, each under its own seed (``sample_seed``) with the
    global torch RNG restored afterwards: no padding against neighbours, no RNG state shared
    with them, so every output is independent of batch size, composition and order."""
    import torch

    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    out: list[Response] = []
    for request in requests:
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(sample_seed(seed, request))
            out.extend(call([request]))
    return out


def secret_arg(name: str) -> bool:
    """Argument names whose values are never written anywhere (results, logs, HTML)."""
    lowered = name.lower()
    return any(word in lowered for word in ("key", "token", "secret", "password", "auth"))


def public_args(args: Mapping[str, Any]) -> dict[str, Any]:
    """Arguments as recorded: secret-named values redacted, credentials inside URLs too."""
    return {k: ("<redacted>" if secret_arg(k) else redact_urls(v) if isinstance(v, str) else v)
            for k, v in args.items()}


_URL_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/?#@\s]+@")
_URL_QUERY = re.compile(r"(?i)([?&;])([^=&;#\s,]*)=([^&;#\s,]*)")


def redact_urls(text: str) -> str:
    """``http://user:pass@host/?api_key=x`` → ``http://<redacted>@host/?api_key=<redacted>``:
    credentials in a URL's user part, and query parameters with secret names, wherever a URL
    is recorded (model args, the command line, logs)."""
    text = _URL_USERINFO.sub(r"\1<redacted>@", text)
    if "://" not in text:
        return text
    return _URL_QUERY.sub(lambda m: f"{m[1]}{m[2]}=<redacted>" if secret_arg(m[2]) else m[0],
                          text)


def public_info(value: Any) -> Any:
    """A plugin's ``describe()`` as recorded: secret-named keys and URL credentials redacted at
    any depth (a plugin that echoes its base URL must not leak a password in it)."""
    if isinstance(value, Mapping):
        return {k: "<redacted>" if secret_arg(str(k)) else public_info(v)
                for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [public_info(v) for v in value]
    return redact_urls(value) if isinstance(value, str) else value


ARGS_FLAGS = ("--model-args", "--judge-args")


def redact_command(argv: Sequence[str]) -> str:
    """The command line as recorded in results.json: inside ``--model-args``/``--judge-args``
    each secret-named ``k=v`` gets ``<redacted>`` exactly as ``public_args`` does, a secret-named
    flag (``--api-key X``) has its value redacted, and URL credentials are removed."""
    out: list[str] = []
    after: str | None = None
    for token in argv:
        flag, eq, value = token.partition("=")
        if after in ARGS_FLAGS:
            token = _redact_pairs(token)
        elif after is not None and secret_arg(after):
            token = "<redacted>"
        elif token.startswith("--") and eq:
            value = _redact_pairs(value) if flag in ARGS_FLAGS else \
                "<redacted>" if secret_arg(flag) else value
            token = f"{flag}={value}"
        after = token if token.startswith("--") and "=" not in token else None
        out.append(redact_urls(token))
    import shlex

    return shlex.join(out)


def _redact_pairs(text: str) -> str:
    parts = []
    for part in text.split(","):
        key, eq, value = part.partition("=")
        parts.append(f"{key}=<redacted>" if eq and secret_arg(key.strip()) else part)
    return ",".join(parts)


def parse_model_args(text: str | None) -> dict[str, Any]:
    """``"a=1,b=x,c=true"`` → ``{"a": 1, "b": "x", "c": True}``; a bare word is an error."""
    args: dict[str, Any] = {}
    for part in (text or "").split(","):
        if not part.strip():
            continue
        if "=" not in part:
            raise ModelArgsError(f"--model-args: expected key=value, got {part!r}")
        key, value = (s.strip() for s in part.split("=", 1))
        args[key] = _typed(value)
    return args


_INT = re.compile(r"-?(0|[1-9][0-9]*)")
_FLOAT = re.compile(r"-?[0-9]+\.[0-9]+")


def _typed(value: str) -> Any:
    """A best guess from the text alone; ``create_model`` then converts by the plugin's
    annotations. Only plain numbers become numbers ("007" and "1e3" stay text)."""
    if value.lower() in ("true", "false"):
        return value.lower() == "true"
    if _INT.fullmatch(value):
        return int(value)
    if _FLOAT.fullmatch(value):
        return float(value)
    return value


def _convert(model: str, key: str, value: Any, annotation: Any) -> Any:
    """Convert one argument to the type the plugin declares, or say what was expected."""
    text = annotation if isinstance(annotation, str) else getattr(annotation, "__name__",
                                                                  str(annotation))
    kinds = set(re.findall(r"\b(str|int|float|bool|Path)\b", text))
    if not kinds or "Any" in text or type(value).__name__ in kinds:
        return value
    if kinds & {"str", "Path"}:
        return str(value)
    if "float" in kinds and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    expected = " or ".join(sorted(kinds))
    raise ModelArgsError(f"model {model!r}: argument {key}={value!r}: expected {expected}")


def create_model(name: str, args: Mapping[str, Any], device: str | None = None) -> Model:
    """Instantiate a registered model with its arguments; unknown arguments are named."""
    from healthbench.core.catalog import MODELS

    cls = MODELS.get(name)
    params = inspect.signature(cls).parameters
    kwargs = dict(args)
    if device is not None and "device" in params:
        kwargs.setdefault("device", device)
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        unknown = sorted(set(kwargs) - set(params))
        if unknown:
            accepted = ", ".join(p for p in params if p != "self") or "none"
            raise ModelArgsError(f"model {name!r} does not accept {', '.join(unknown)} "
                                 f"(accepted: {accepted})")
    missing = [p.name for p in params.values() if p.default is inspect.Parameter.empty
               and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name not in kwargs]
    if missing:
        example = ",".join(f"{m}=..." for m in missing)
        raise ModelArgsError(f"model {name!r} needs {', '.join(missing)} "
                             f"(--model-args {example})")
    kwargs = {k: _convert(name, k, v, params[k].annotation) if k in params else v
              for k, v in kwargs.items()}
    try:
        model = cls(**kwargs)
    except TypeError as exc:
        raise ModelArgsError(f"model {name!r}: {exc}") from exc
    if not isinstance(model, Model):
        raise ModelArgsError(f"model {name!r} does not implement healthbench.models.Model")
    return model

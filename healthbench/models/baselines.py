"""Chance baselines and replay of saved outputs.

``random``: for multiple-choice requests, one option letter drawn uniformly; for choice scoring,
uniform random scores; for image requests, **uniform noise**, uint8 RGB of ``image_size``² (256,
HealthGPT's output size) — not the input itself: reproducing the input is the ``identity``
baseline of the generation suites. Draws depend only on (seed, task, sample id), so results do not depend on batch size or
order.

``replay``: responses read from a file, so outputs made elsewhere can be scored. Accepts lines of
``{"task", "id", "response"}`` or a previous run's samples.jsonl (a file, or a run directory
holding ``<task>/samples.jsonl``). For image tasks a response is ``{"output": relpath}`` (a PNG,
or a ``.npy`` array, relative to the JSONL file's folder and resolved inside it) or the pixels as
a nested list (H×W or H×W×C; integers 0..255 become uint8, anything else float64); see
docs/generation.md.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from healthbench.core.catalog import MODELS
from healthbench.data.paths import DuplicateKeyError, loads_json
from healthbench.data.bulk import gc_paused
from healthbench.models.base import Model, ModelArgsError
from healthbench.core.types import Request, Response


def _rng(seed: int, request: Request) -> np.random.Generator:
    digest = hashlib.sha256(f"{seed}\0{request.task}\0{request.sample_id}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


@MODELS.register("random")
class RandomModel(Model):
    """Uniform chance: a random option letter, random choice scores, or a noise image."""

    capabilities = frozenset({"text", "image", "loglikelihood"})
    default_batch_size = 64
    batch_invariant = True  # per-request computation only
    needs_pixels = False  # draws depend on (seed, task, id) only

    def __init__(self, seed: int = 0, image_size: int = 256) -> None:
        self.seed = seed
        self.image_size = image_size

    def generate(self, requests: Sequence[Request]) -> list[Response]:
        out = []
        for request in requests:
            rng = _rng(self.seed, request)
            if request.output == "image":
                side = self.image_size
                out.append(Response(image=rng.integers(0, 256, (side, side, 3), dtype=np.uint8)))
            elif request.options:
                letters = list(request.options)
                out.append(Response(text=letters[int(rng.integers(len(letters)))]))
            else:
                out.append(Response(text=""))
        return out

    def score_choices(self, requests: Sequence[Request]) -> list[Response]:
        return [Response(choice_scores=tuple(float(x) for x in
                                             _rng(self.seed, r).random(len(r.choices))))
                for r in requests]

    def describe(self) -> dict[str, Any]:
        return {"kind": "chance baseline", "seed": self.seed}


@MODELS.register("replay")
class ReplayModel(Model):
    """Responses from a JSONL file or a previous run, matched by (task, id)."""

    capabilities = frozenset({"text", "image", "loglikelihood"})
    default_batch_size = 256
    batch_invariant = True  # per-request computation only
    needs_pixels = False  # answers come from the file

    def __init__(self, path: str, task: str | None = None) -> None:
        self.path = Path(path)
        self.default_task = task
        self.responses: dict[tuple[str, str], Any] = {}
        files = sorted(self.path.glob("*/samples.jsonl")) if self.path.is_dir() else [self.path]
        if not files or not all(f.is_file() for f in files):
            raise ModelArgsError(f"replay: no responses file at {self.path} (a JSONL file of "
                                 '{"task", "id", "response"} lines or a run directory)')
        with gc_paused():  # 100k small records: see healthbench.data.bulk
            for file in files:
                self._read(file)

    def _read(self, file: Path) -> None:
        """Read as strictly as a dataset file: bytes that are not UTF-8 and JSON objects that
        name a key twice are errors naming the file and line, never silently replaced."""
        with open(file, "rb") as fh:
            for lineno, raw in enumerate(fh, 1):
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise ModelArgsError(f"replay: {file} line {lineno}: not UTF-8 text "
                                         f"(byte {exc.start}: {exc.reason})") from None
                if not line.strip():
                    continue
                try:
                    row = loads_json(line)
                    task = row.get("task") or self.default_task
                    key = (str(task), str(row["id"]))
                    value = row["response"]
                except DuplicateKeyError as exc:
                    raise ModelArgsError(f"replay: {file} line {lineno}: {exc}") from None
                except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
                    raise ModelArgsError(f"replay: {file} line {lineno}: expected a JSON object "
                                         f"with task, id and response ({exc})") from exc
                if row.get("error") and value is None:
                    continue  # a failed sample of an earlier run has no response to replay
                if isinstance(value, dict) and "output" in value:  # a saved generated image
                    value = self._output_file(file, lineno, value["output"])
                self.responses[key] = value

    @staticmethod
    def _output_file(file: Path, lineno: int, relative: Any) -> dict[str, str]:
        """A saved image's path, resolved inside the replayed file's folder (no absolute
        paths, no ``..``, no symlink out); a path that escapes is that sample's error."""
        from healthbench.data.paths import UnsafePathError, resolve_inside

        try:
            return {"output_file": str(resolve_inside(file.parent, str(relative),
                                                      f"replay: {file} line {lineno}"))}
        except UnsafePathError as exc:
            return {"refused": str(exc)}

    def _lookup(self, request: Request) -> Any:
        return self.responses.get((request.task, request.sample_id))

    def generate(self, requests: Sequence[Request]) -> list[Response]:
        out = []
        for request in requests:
            value = self._lookup(request)
            if value is None:
                out.append(Response(error=f"replay: no saved response for task "
                                          f"{request.task!r} id {request.sample_id!r}"))
            elif request.output == "image":
                out.append(self._image(value))
            else:
                out.append(Response(text=str(value)))
        return out

    @staticmethod
    def _image(value: Any) -> Response:
        """A generated image from a previous run's saved file, or pixels given in the JSONL."""
        from healthbench.data.images import load_output

        if isinstance(value, dict) and "output_file" in value:
            try:
                return Response(image=load_output(Path(value["output_file"])))
            except (OSError, ValueError) as exc:
                return Response(error=f"replay: cannot read {value['output_file']}: {exc}")
        if isinstance(value, dict) and "refused" in value:
            return Response(error=value["refused"])
        if isinstance(value, dict):
            return Response(error="replay: the saved record has no generated image file")
        arr = np.asarray(value)
        if arr.dtype.kind in "iu" and arr.size and 0 <= arr.min() and arr.max() <= 255:
            return Response(image=arr.astype(np.uint8))  # 8-bit pixels written as JSON ints
        return Response(image=arr.astype(np.float64))

    def score_choices(self, requests: Sequence[Request]) -> list[Response]:
        out = []
        for request in requests:
            value = self._lookup(request)
            if isinstance(value, list) and len(value) == len(request.choices):
                out.append(Response(choice_scores=tuple(float(v) for v in value)))
            else:
                out.append(Response(error=f"replay: no saved choice scores for "
                                          f"{request.task!r} id {request.sample_id!r}"))
        return out

    def describe(self) -> dict[str, Any]:
        return {"kind": "replay", "responses": len(self.responses)}

"""The plain records that flow through healthbench (docs/architecture.md, "One sample, from
YAML to leaderboard").

Everything between stages is one of these frozen dataclasses, never a dict of dicts:

``Sample`` (what a loader reads) -> ``Request`` (what a model receives) -> ``Response``
(what a model returns) -> ``SampleResult`` (one line of samples.jsonl).

Loaders validate their rows once, where they enter; the rest of the harness trusts these types.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Mapping

OutputKind = Literal["text", "image"]
OUTPUT_KINDS: tuple[str, ...] = ("text", "image")


@dataclass(frozen=True)
class ImageSource:
    """Where one input image comes from; decoded lazily (off the main thread) by ``data.images``.

    Exactly one of ``path`` (already checked to lie inside the data root) or ``data`` (encoded
    bytes, e.g. a base64 cell of a TSV) is set. ``frame`` picks a frame of a multi-frame DICOM or
    an axial slice of a NIfTI volume.
    """

    path: Path | None = None
    data: bytes | None = None
    frame: int | None = None
    label: str | None = None  # how the benchmark names this image, e.g. "Fig-2"
    #: Intensity window (lo, hi) mapped to 0..255 for the model; None = the image's min..max
    #: (raster files are shown as they are).
    window: tuple[float, float] | None = None
    #: Integer down-scaling factor applied after rendering (super-resolution inputs).
    downscale: int = 1

    def __post_init__(self) -> None:
        if (self.path is None) == (self.data is None):
            raise ValueError("ImageSource needs exactly one of path or data")

    def describe(self) -> str:
        """A short, JSON-safe description used in samples.jsonl and error messages."""
        where = str(self.path) if self.path is not None else f"<{len(self.data or b'')} bytes>"
        if self.frame is not None:
            where += f"#{self.frame}"
        if self.window is not None:
            where += f" window={list(self.window)}"
        return where if self.downscale == 1 else f"{where} downscale=x{self.downscale}"

    def to_record(self) -> dict[str, Any]:
        """The image as data, for samples.jsonl ``inputs.images``: ``file`` (None for embedded
        bytes, whose size is ``bytes``), ``frame`` (slice index), ``window`` ([lo, hi]),
        ``transform`` (e.g. ``{"downscale": 4}``) and ``label``. Reports rebuild thumbnails of
        exactly what the model saw from it (``from_record``), never from display text."""
        return {"file": None if self.path is None else str(self.path),
                "bytes": None if self.data is None else len(self.data),
                "frame": self.frame,
                "window": None if self.window is None else [float(v) for v in self.window],
                "transform": {"downscale": self.downscale} if self.downscale != 1 else None,
                "label": self.label}

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> "ImageSource | None":
        """The source a ``to_record`` record names; None for embedded bytes (not kept) or a
        record that is not one."""
        file = record.get("file") if isinstance(record, Mapping) else None
        if not isinstance(file, str) or not file:
            return None
        window = record.get("window")
        transform = record.get("transform") or {}
        return cls(path=Path(file), frame=record.get("frame"), label=record.get("label"),
                   window=None if window is None else (float(window[0]), float(window[1])),
                   downscale=int(transform.get("downscale", 1)))


@dataclass(frozen=True)
class Sample:
    """One evaluation item as the benchmark defines it.

    ``id`` is stable across runs: it comes from the dataset (or from file name and position where
    the dataset has none), never from the order of execution. ``options`` maps letters to option
    text in the benchmark's order. ``target`` is a letter, a free-text answer, a label vector or a
    reference image source, depending on the task. ``meta`` holds the keys tasks group by.
    """

    id: str
    question: str = ""
    images: tuple[ImageSource, ...] = ()
    options: Mapping[str, str] = field(default_factory=dict)
    target: Any = None
    meta: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SampleError:
    """A row the loader could not turn into a Sample. It is recorded and counted, never dropped.

    ``where`` names the file and row (or key) so that the user can find and fix it.
    """

    id: str
    where: str
    message: str
    meta: Mapping[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        return f"{self.where}: {self.message}"


@dataclass(frozen=True)
class GenerationParams:
    """Decoding settings a task asks for; greedy by default so that runs are reproducible."""

    max_new_tokens: int = 32
    temperature: float = 0.0
    top_p: float = 1.0
    stop: tuple[str, ...] = ()

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0


@dataclass(frozen=True)
class Request:
    """What a model plugin receives: a rendered prompt, decoded images and what to return.

    ``images`` are decoded ``PIL.Image.Image`` objects in the order the prompt refers to them.
    ``choices`` is set when the task scores by log-likelihood over candidate continuations.
    ``output`` says whether the answer is text or an image; a model refuses kinds it lacks.
    """

    task: str
    sample_id: str
    prompt: str
    images: tuple[Any, ...] = ()
    output: OutputKind = "text"
    generation: GenerationParams = GenerationParams()
    choices: tuple[str, ...] = ()
    options: Mapping[str, str] = field(default_factory=dict)
    meta: Mapping[str, Any] = field(default_factory=dict)
    #: The task's system prompt (YAML ``prompt.system``), for plugins with a system turn; a
    #: plugin's own ``system_prompt`` argument, when given, takes precedence.
    system: str | None = None


@dataclass(frozen=True)
class Response:
    """What a model returns for one Request, in the same position as its Request.

    ``text`` for text outputs, ``image`` (a numpy array, H×W or H×W×C) for image outputs,
    ``choice_scores`` (one log-likelihood-like score per choice, higher is better) for
    likelihood scoring. ``error`` marks a per-sample failure; the run goes on.
    """

    text: str | None = None
    image: Any = None
    choice_scores: tuple[float, ...] | None = None
    error: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SampleResult:
    """One line of ``results/<run-id>/<task>/samples.jsonl``: its fields are that file's schema."""

    id: str
    task: str
    target: Any
    response: Any
    parsed: Any
    scores: Mapping[str, float | None]
    meta: Mapping[str, Any]
    error: str | None = None
    inputs: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "task": self.task,
            "target": self.target,
            "response": self.response,
            "parsed": self.parsed,
            "scores": dict(self.scores),
            "meta": dict(self.meta),
            "error": self.error,
            "inputs": dict(self.inputs),
        }

    @classmethod
    def from_json(cls, row: Mapping[str, Any]) -> "SampleResult":
        return cls(
            id=str(row["id"]),
            task=str(row["task"]),
            target=row.get("target"),
            response=row.get("response"),
            parsed=row.get("parsed"),
            scores=dict(row.get("scores") or {}),
            meta=dict(row.get("meta") or {}),
            error=row.get("error"),
            inputs=dict(row.get("inputs") or {}),
        )

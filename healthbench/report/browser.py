"""The sample browser's data: input thumbnails, generation strips and one card per sample.

Split from ``report.html`` (which renders the page): this part reads samples.jsonl records and
copies the images a page shows under ``<site>/thumbs/`` and ``<site>/strips/``. Input thumbnails
are built from the structured image records of ``inputs.images`` (``ImageSource.to_record``).
"""
from __future__ import annotations

import hashlib
import json
import logging
import random
from pathlib import Path
from typing import Any, Iterable, Mapping

from healthbench.core.types import ImageSource, SampleResult
from healthbench.report.leaderboard import Table
from healthbench.report.runs import Run, group_values

log = logging.getLogger("healthbench.html")

THUMB_SIZE = 192
STRIP_SIZE = (3 * THUMB_SIZE, THUMB_SIZE)  # input | output | reference, at most 576 x 192
MAX_TEXT = 2000  # characters of a response kept in the page


# --- thumbnails ------------------------------------------------------------------------------

class Thumbnails:
    """Downscaled PNG copies of input images under ``<site>/thumbs/``, one per source image."""

    def __init__(self, site: Path) -> None:
        self.folder = site / "thumbs"
        self.folder.mkdir(parents=True, exist_ok=True)
        self.made: dict[str, str | None] = {}  # record (as JSON) -> URL
        self.failed = 0

    def get(self, image: Any) -> str | None:
        """Relative URL of the thumbnail of an input image as samples.jsonl records it, or None
        (embedded bytes, a file no longer there, an unreadable image). ``image`` is a structured
        record (``ImageSource.to_record``: file, frame, window, transform), so the thumbnail
        shows what the model saw — a windowed DICOM slice, a down-scaled super-resolution
        input; a plain string is a run from before images were recorded as data."""
        key = json.dumps(image, sort_keys=True, default=str)
        if key not in self.made:
            self.made[key] = self._make(key, legacy_source(image) if isinstance(image, str)
                                        else ImageSource.from_record(image)
                                        if isinstance(image, Mapping) else None)
        return self.made[key]

    def _make(self, key: str, source: ImageSource | None) -> str | None:
        from healthbench.data.images import load_image

        if source is None or source.path is None or not source.path.is_file():
            return None
        name = hashlib.sha1(key.encode("utf-8")).hexdigest()[:20] + ".png"
        target = self.folder / name
        if not target.exists():
            try:
                image = load_image(source)
                image.thumbnail((THUMB_SIZE, THUMB_SIZE))
                tmp = target.with_suffix(".tmp.png")
                image.save(tmp, format="PNG", optimize=True)
                tmp.replace(target)
            except Exception as exc:  # any undecodable input: no thumbnail, page still works
                log.warning("no thumbnail for %s: %s", source.describe(), exc)
                self.failed += 1
                return None
        return f"thumbs/{name}"


def legacy_source(described: str) -> ImageSource | None:
    """An image of a run written before images were records: the display text was a path,
    optionally ``#<frame>`` (window and transform were not recoverable from it)."""
    path, frame = Path(described), None
    if not path.is_file() and "#" in described:
        head, _, tail = described.rpartition("#")
        if tail.isdigit():
            path, frame = Path(head), int(tail)
    return ImageSource(path=path, frame=frame) if path.is_file() else None


class Strips:
    """Copies of generation strips (input | output | reference PNGs, written by the run under
    ``<run>/<task>/images/``) under ``<site>/strips/``, downscaled to at most ``STRIP_SIZE``.
    Only files inside the run's task folder are copied; the page never points outside the site."""

    def __init__(self, site: Path) -> None:
        self.folder = site / "strips"
        self.made: dict[Path, str | None] = {}
        self.failed = 0

    def get(self, run: Run, task: str, response: Any) -> str | None:
        """Relative URL of the copied strip of a sample's response, or None (no strip recorded,
        a path leaving the task folder, a file no longer there, an unreadable image)."""
        relative = response.get("strip") if isinstance(response, Mapping) else None
        if not isinstance(relative, str) or not relative:
            return None
        task_dir = (run.path / task).resolve()
        source = (task_dir / relative).resolve()
        if not source.is_relative_to(task_dir) or not source.is_file():
            return None
        if source not in self.made:
            self.made[source] = self._make(source)
        return self.made[source]

    def _make(self, source: Path) -> str | None:
        from PIL import Image

        name = hashlib.sha1(str(source).encode("utf-8")).hexdigest()[:20] + ".png"
        target = self.folder / name
        if not target.exists():
            try:
                self.folder.mkdir(parents=True, exist_ok=True)
                with Image.open(source) as image:
                    image = image.convert("RGB")
                    image.thumbnail(STRIP_SIZE)
                    tmp = target.with_suffix(".tmp.png")
                    image.save(tmp, format="PNG", optimize=True)
                tmp.replace(target)
            except Exception as exc:  # an undecodable strip: the card says so, page still works
                log.warning("no strip copy for %s: %s", source, exc)
                self.failed += 1
                return None
        return f"strips/{name}"


# --- sample data -----------------------------------------------------------------------------

def _text(value: Any) -> str:
    if value is None:
        return ""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT] + " …"


def correctness(record: SampleResult) -> str:
    """``error``, ``unparsed``, ``correct``, ``wrong`` or ``n/a`` (no 0/1 score to say)."""
    if record.error:
        return "error"
    scores = record.scores
    if scores.get("parse_failure") == 1.0 or (record.parsed is None and "accuracy" in scores
                                              and record.response not in (None, "")):
        return "unparsed"
    for name in ("accuracy", "exact_match"):
        if scores.get(name) in (0.0, 1.0):
            return "correct" if scores[name] == 1.0 else "wrong"
    return "n/a"


def sample_rows(runs: Iterable[Run], tables: Iterable[Table], thumbs: Thumbnails,
                max_samples: int, strips: Strips | None = None,
                ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict]:
    """(runs, samples, truncated counts) for the browser; a seeded subsample when a task has
    more than ``max_samples`` records, so the page stays light and the choice is repeatable.
    For image-output tasks (``tasks.<t>.output == "image"``) each card also gets the sample's
    input | output | reference strip (``strip``: its copy in the site, or ``"missing"``)."""
    group_keys: dict[str, list[str]] = {}
    for table in tables:
        group_keys.setdefault(table.task, table.group_keys)
    run_rows, samples, truncated = [], [], {}
    for index, run in enumerate(runs):
        run_rows.append({"id": run.run_id, "model": run.model.name})
        for task, block in run.tasks.items():
            image_output = block.output == "image"
            records = sorted(run.samples(task).values(), key=lambda r: r.id)
            if len(records) > max_samples:
                truncated[f"{run.run_id}/{task}"] = len(records)
                picked = sorted(random.Random(0).sample(range(len(records)), max_samples))
                records = [records[i] for i in picked]
            for record in records:
                images = [thumbs.get(d) for d in (record.inputs or {}).get("images", [])]
                row: dict[str, Any] = {
                    "r": index, "t": task, "id": record.id,
                    "q": _text((record.inputs or {}).get("question")),
                    "o": {str(k): _text(v) for k, v in
                          ((record.inputs or {}).get("options") or {}).items()},
                    "resp": _text(record.response), "parsed": _text(record.parsed),
                    "target": _text(record.target), "c": correctness(record),
                    "err": _text(record.error),
                    "g": {k: group_values(record, k) for k in group_keys.get(task, [])},
                    "s": {k: v for k, v in record.scores.items() if v is not None},
                    "img": [u for u in images if u],
                    "nimg": len(images),
                }
                if image_output and strips is not None:
                    recorded = isinstance(record.response, Mapping) and \
                        bool(record.response.get("strip"))
                    strip = strips.get(run, task, record.response)
                    if strip or recorded:
                        row["strip"] = strip or "missing"
                samples.append(row)
    return run_rows, samples, truncated


def _json_for_script(data: Any) -> str:
    """JSON safe inside <script>: '<', '>' and '&' only occur in strings and are escaped."""
    return (json.dumps(data, ensure_ascii=False, allow_nan=False)
            .replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"))

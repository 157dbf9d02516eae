"""samples.jsonl: append-only, one finished sample per line, the run's durable record.

Each line is written whole and flushed as soon as its sample is scored, and the file is fsync'd
after every batch, so a killed run loses at most the batch in flight. On resume, a last line cut
short by a kill (no trailing newline, or not valid JSON) is removed before appending, and samples
already present are skipped: no sample is written twice.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Iterable

from healthbench.core.types import SampleResult
from healthbench.data.bulk import gc_paused


def _json_default(value: Any) -> Any:
    try:
        import numpy as np

        if isinstance(value, np.generic):
            return value.item()
        if isinstance(value, np.ndarray):
            return value.tolist()
    except ImportError:  # pragma: no cover - numpy is a dependency
        pass
    if isinstance(value, (set, tuple)):
        return list(value)
    if isinstance(value, Path):
        return str(value)
    return repr(value)


def _finite(value: Any) -> Any:
    """JSON has no NaN/inf: they are written as null so that every line stays standard JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False)  # json.dumps' own, built once


def dumps(row: dict[str, Any]) -> str:
    """One JSON line. Plain rows (the usual case) take one pass of the C encoder; rows with
    NaN/inf or numpy/other values take the converting path, which writes the same text."""
    return _dumps(row)[0]


def _dumps(row: dict[str, Any]) -> tuple[str, bool]:
    """(the line, whether the C encoder took the row as it is)."""
    try:
        return _ENCODER.encode(row), True
    except (TypeError, ValueError):
        return json.dumps(_finite(json.loads(json.dumps(row, default=_json_default))),
                          ensure_ascii=False, allow_nan=False), False


_SCALARS = frozenset({str, int, bool, type(None)})


def _round_trips(value: Any) -> bool:
    """Whether ``json.loads(json.dumps(value))`` gives ``value`` back with the same types: plain
    str/int/float/bool/None, lists and str-keyed dicts of them. Tuples (read back as lists),
    other key types (as str), subclasses (numpy floats, enums) and NaN/inf do not.
    (Containers are walked in loops, not a call per value: this runs for every record.)"""
    kind = type(value)
    if kind in _SCALARS:
        return True
    if kind is float:
        return math.isfinite(value)
    if kind is dict:
        for key in value:
            if type(key) is not str:
                return False
        items = value.values()
    elif kind is list:
        items = value
    else:
        return False
    for item in items:
        kind = type(item)
        if kind in _SCALARS:
            continue
        if kind is float:
            if not math.isfinite(item):
                return False
        elif not _round_trips(item):
            return False
    return True


def as_read_back(result: SampleResult, line: str, plain: bool = True) -> SampleResult:
    """The record ``read_samples`` would build from ``line`` (the text written for ``result``):
    ``result`` itself when every field survives JSON unchanged, else the line parsed."""
    fields = (result.id, result.task, result.target, result.response, result.parsed,
              result.scores, result.meta, result.error, result.inputs)
    if plain and type(result.id) is str and all(map(_round_trips, fields)):
        return result
    return SampleResult.from_json(json.loads(line))


def read_samples(path: Path, repair: bool = False, offset: int = 0) -> dict[str, SampleResult]:
    """Finished samples by id (first occurrence wins). With ``repair``, a torn last line is cut.

    ``offset``: read only from this byte on (the lines appended since an earlier read of the
    file up to that offset), so a resumed run reads each line once.
    """
    results: dict[str, SampleResult] = {}
    if not path.exists():
        return results
    with open(path, "rb") as fh:
        fh.seek(offset)
        data = fh.read()
    with gc_paused():
        good_end = _parse_lines(path, data, offset, results)
    if repair and good_end < len(data):
        with open(path, "r+b") as fh:
            fh.truncate(offset + good_end)
            fh.flush()
            os.fsync(fh.fileno())
    return results


def _parse_lines(path: Path, data: bytes, offset: int, results: dict[str, SampleResult]) -> int:
    """Parse whole lines of ``data`` into ``results``; returns where the good lines end."""
    good_end = 0
    line_end = 0
    for raw in data.splitlines(keepends=True):
        line_end += len(raw)
        if not raw.endswith(b"\n"):
            break  # torn last line: the kill came mid-write
        try:
            row = json.loads(raw.decode("utf-8"))
            result = SampleResult.from_json(row)
        except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError):
            if line_end == len(data):
                break  # a garbled last line is treated like a torn one
            lineno = data[:line_end].count(b"\n")
            where = f"line {lineno}" + (f" after byte {offset}" if offset else "")
            raise ValueError(f"{path}: {where} is not a valid sample record; the file "
                             "was edited or corrupted")
        results.setdefault(result.id, result)
        good_end = line_end
    return good_end


class DiskFullError(OSError):
    """Writing samples failed for lack of space; what was written before is intact."""


class SamplesWriter:
    """Appends sample records to samples.jsonl; ``sync()`` makes them durable.

    ``keep``: a dict that receives each written record by id (first one wins) exactly as
    ``read_samples`` would give it back, so that a run need not read its own lines again."""

    def __init__(self, path: Path, keep: dict[str, SampleResult] | None = None) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._fh = open(path, "a", encoding="utf-8")
        self.written = 0
        self.keep = keep

    def write(self, result: SampleResult) -> None:
        line, plain = _dumps(result.to_json())
        try:
            self._fh.write(line + "\n")
            self._fh.flush()
        except OSError as exc:
            raise self._explain(exc) from exc
        self.written += 1
        if self.keep is not None:
            record = as_read_back(result, line, plain)
            self.keep.setdefault(record.id, record)

    def _explain(self, exc: OSError) -> OSError:
        import errno

        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return DiskFullError(exc.errno, f"disk full while writing {self.path}; the "
                                 f"{self.written} samples written before this one are intact: "
                                 "free space and rerun the same command to resume")
        return exc

    def write_all(self, results: Iterable[SampleResult]) -> None:
        for result in results:
            self.write(result)
        self.sync()

    def sync(self) -> None:
        try:
            self._fh.flush()
            os.fsync(self._fh.fileno())
        except OSError as exc:
            raise self._explain(exc) from exc

    def close(self) -> None:
        if not self._fh.closed:
            try:
                self.sync()
            finally:
                try:
                    self._fh.close()
                except OSError:
                    pass  # the error that matters was raised by sync()

    def __enter__(self) -> "SamplesWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def rewrite_samples(path: Path, records: Iterable[SampleResult]) -> None:
    """Replace samples.jsonl with exactly ``records`` (atomically: a kill leaves the old file)."""
    atomic_write_text(path, "".join(dumps(r.to_json()) + "\n" for r in records))


def atomic_write_text(path: Path, text: str) -> None:
    """Write via a temporary file and rename, so readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)

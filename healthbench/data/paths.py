"""What every loader shares: the loaded-dataset record, safe path resolution, checksums.

Loaders read a benchmark's *official* on-disk layout from a data root the user points at. They
never download. Paths inside annotation files are resolved with ``resolve_inside`` so that a row
cannot reach outside the data root (``..``, absolute paths, symlinks pointing out).
"""
from __future__ import annotations

import hashlib
import json
import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence, TypeVar

from healthbench.core.types import Sample, SampleError

DATA_ROOT_ENV = "HEALTHBENCH_DATA"
F = TypeVar("F", bound=Callable[..., Any])


class DatasetMissingError(FileNotFoundError):
    """The benchmark's files are not where the task expects them; says what is expected where."""


class UnsafePathError(ValueError):
    """A path in an annotation file that would leave the data root."""


@dataclass
class LoadedDataset:
    """A loader's output: samples (or per-row errors) and the files that define the dataset.

    ``files`` are the annotation files whose bytes go into the data checksum recorded in
    results.json (images are covered by their paths inside those files, not re-hashed: hashing
    80,000 images on every run would cost minutes).
    """

    items: list[Sample | SampleError] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    file_checksums: dict[str, str] = field(default_factory=dict)  # filled by data_checksum


def declare_files(lister: Callable[..., list[Path]]) -> Callable[[F], F]:
    """Attach ``lister(root, **options)`` to a loader: exactly the files its
    ``LoadedDataset.files`` will hold, found without reading them. With it a finished run is
    recognised from the data checksum alone, without loading the dataset (``run.evaluate``)."""

    def mark(loader: F) -> F:
        loader.list_files = lister  # type: ignore[attr-defined]
        return loader

    return mark


class DuplicateKeyError(ValueError):
    """A JSON object that names one key twice: which value the dataset meant is unknowable."""


def _refuse_duplicates(pairs: list[tuple[str, object]]) -> dict[str, object]:
    out = dict(pairs)  # built in C; a duplicate shows as a shorter dict
    if len(out) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise DuplicateKeyError(f"duplicate key {key!r} in one JSON object")
            seen.add(key)
    return out


def loads_json(text: str) -> object:
    """``json.loads`` that refuses duplicate keys (Python's would silently keep the last)."""
    return json.loads(text, object_pairs_hook=_refuse_duplicates)


def default_data_root() -> Path:
    """``$HEALTHBENCH_DATA`` or ``~/.cache/healthbench/data``."""
    env = os.environ.get(DATA_ROOT_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "healthbench" / "data"


def resolve_inside(root: Path, relative: str | os.PathLike[str], where: str) -> Path:
    """``root / relative``, refusing anything that resolves outside ``root``.

    Absolute paths, ``..`` segments and symlinks whose target lies outside the root are all
    refused with an ``UnsafePathError`` that says where the path came from. The data root and
    each folder are resolved once and remembered (``_real_dir``); per row only the final file is
    checked for a symlink, so 100k rows in a few hundred folders cost a few hundred resolutions.
    """
    rel = os.fspath(relative)
    if os.path.isabs(rel):
        raise UnsafePathError(f"{where}: absolute path {str(relative)!r} is not allowed; "
                              "paths must be relative to the dataset folder")
    if ".." in rel and ".." in Path(rel).parts:
        raise UnsafePathError(f"{where}: path {str(relative)!r} contains '..'")
    # string operations: at 100k rows, pathlib's object overhead is most of the cost
    root_s = os.fspath(root)
    root_real = _real_dir(root_s)
    folder, name = os.path.split(rel)
    if name in ("", "."):  # "", ".", "a/", "a/.": rare; resolved as a whole
        full = os.path.realpath(os.path.join(root_s, rel))
    else:
        full = os.path.join(_real_dir(os.path.join(root_s, folder)), name)
        if os.path.islink(full):
            full = os.path.realpath(full)
    if full != root_real and not full.startswith(root_real.rstrip(os.sep) + os.sep):
        raise UnsafePathError(f"{where}: path {str(relative)!r} resolves outside the data root "
                              f"({full})")
    return Path(full)


_REAL_DIRS: dict[str, tuple[tuple[int, int, int], str]] = {}
_PASS: dict[str, str] | None = None  # set inside ``one_pass()``


@contextmanager
def one_pass() -> Iterator[None]:
    """One loader's pass over its annotation files: inside it each folder is resolved once and
    then taken as it was (no ``lstat`` per row to notice a folder swapped meanwhile; the file
    itself is still checked per row). At 100k rows that is 200k system calls fewer. Such a
    swap mid-pass is the same race as one between the check and the model reading the file."""
    global _PASS
    outer = _PASS
    if outer is None:
        _PASS = {}
    try:
        yield
    finally:
        if outer is None:
            _PASS = None


def _real_dir(folder: str) -> str:
    """``os.path.realpath(folder)``, remembered while the folder's own ``lstat`` (device, inode,
    mode) is unchanged: a folder swapped for a symlink, or reached through an ancestor now
    linked elsewhere, has another inode or mode and is resolved afresh. Inside ``one_pass()``
    the first answer for a folder stands for the rest of the pass."""
    memo = _PASS
    if memo is not None:
        real = memo.get(folder)
        if real is None:
            real = memo[folder] = _checked_real_dir(folder)
        return real
    return _checked_real_dir(folder)


def _checked_real_dir(folder: str) -> str:
    try:
        st = os.lstat(folder)
    except OSError:
        return os.path.realpath(folder)  # not there (yet): nothing worth remembering
    stamp = (st.st_dev, st.st_ino, st.st_mode)
    hit = _REAL_DIRS.get(folder)
    if hit is not None and hit[0] == stamp:
        return hit[1]
    real = os.path.realpath(folder)
    if len(_REAL_DIRS) >= 65_536:
        _REAL_DIRS.clear()
    _REAL_DIRS[folder] = (stamp, real)
    return real


def require_dir(path: Path, benchmark: str, expected: str) -> Path:
    """Fail with a message that says which files are expected where."""
    if not path.is_dir():
        raise DatasetMissingError(
            f"{benchmark} not found at {path}. Expected {expected}. Point --data-root (or "
            f"${DATA_ROOT_ENV}) at the folder that holds it; healthbench never downloads data.")
    return path


def data_checksum(files: Sequence[Path], root: Path,
                  per_file: dict[str, str] | None = None) -> str:
    """sha256 over (relative path, content) of the dataset's annotation files, in sorted order.
    ``per_file``, when given, receives each file's own sha256 by relative path (in the same
    pass), so that a changed checksum can name the files that changed."""
    digest = hashlib.sha256()
    for path in sorted(files):
        try:
            rel = path.resolve().relative_to(root.resolve())
        except ValueError:
            rel = Path(path.name)
        digest.update(str(rel).encode())
        digest.update(b"\0")
        own = hashlib.sha256()
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
                own.update(chunk)
        digest.update(b"\0")
        if per_file is not None:
            per_file[str(rel)] = "sha256:" + own.hexdigest()
    return "sha256:" + digest.hexdigest()

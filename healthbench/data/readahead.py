"""Asking the disk for the next batch's image files before they are read.

Header checks (pixel-free models) and decoding threads read images one at a time, each read
waiting for the disk. ``posix_fadvise(WILLNEED)`` asks the kernel to start reading a file into
the page cache without waiting, and a disk serves hundreds of such requests at once: in a cold
100k-image run of ``benchmarks/harness_overhead.py`` the image checks went from 10.7 s to 2.1 s,
about what they take when every file is cached (``benchmarks/readahead.py`` measures the reads
alone; docs/benchmarks.md). When the files are already cached the hint would only cost an
``open`` per file, so a batch is first probed: if a few of its files are all cached (a read
that may not wait, ``preadv(RWF_NOWAIT)``, succeeds), the batch is taken as cached and left
alone. Where the probe is refused (tmpfs; file systems without non-blocking buffered reads)
every batch is advised. Everything here is a hint: it never raises, and where the calls do not
exist (macOS, Windows) it does nothing.
"""
from __future__ import annotations

import os
from typing import Sequence

from healthbench.core.types import ImageSource
from healthbench.data.images import HEADER_BYTES, NIFTI_SUFFIXES

_WILLNEED = getattr(os, "POSIX_FADV_WILLNEED", None)
_NOWAIT = getattr(os, "RWF_NOWAIT", None)
#: O_NONBLOCK: a FIFO in the data folder must not hang a hint.
_FLAGS = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NONBLOCK", 0)
#: Files probed per batch (first, middle, last).
PROBES = 3


def advise_reading(sources: Sequence[ImageSource], headers_only: bool = False) -> None:
    """Start reading these images into the page cache, unless a probe finds them cached: their
    first ``HEADER_BYTES`` for header checks, else the whole file (NIfTI volumes excepted: only
    a slice's worth of a volume may be read)."""
    advise_paths([src.path for src in sources if src.path is not None and
                  (headers_only or not src.path.name.lower().endswith(NIFTI_SUFFIXES))],
                 HEADER_BYTES if headers_only else 0)


def advise_paths(paths: Sequence[os.PathLike[str] | str], length: int = 0) -> None:
    """Start reading the first ``length`` bytes (0: all) of these files into the page cache,
    unless a probe finds them cached. A file that cannot be opened is skipped (its own read
    reports it)."""
    if _WILLNEED is None or not paths or _all_cached(paths):
        return
    for path in paths:
        fd = _open(path)
        if fd is None:
            continue
        try:
            os.posix_fadvise(fd, 0, length, _WILLNEED)
        except OSError:
            pass
        finally:
            os.close(fd)


def _open(path: os.PathLike[str] | str) -> int | None:
    """A descriptor, or None for what cannot be opened: missing, unreadable, or a path no file
    can have (a NUL byte raises ValueError). The sample's own read words the error."""
    try:
        return os.open(path, _FLAGS)
    except (OSError, ValueError):
        return None


def _all_cached(paths: Sequence[os.PathLike[str] | str]) -> bool:
    """Whether the first byte of each probed file is in the page cache. False when a probe
    cannot tell (no ``RWF_NOWAIT``; a file system that refuses it, such as tmpfs; no probed
    file opens): then the batch is advised. A probe that misses starts the kernel's own
    readahead of that page; it is advised anyway."""
    if _NOWAIT is None:
        return False
    picks = {0, len(paths) // 2, len(paths) - 1} if len(paths) >= PROBES else range(len(paths))
    buf = bytearray(1)
    opened = 0
    for i in sorted(picks):
        fd = _open(paths[i])
        if fd is None:
            continue  # a missing file is the check's business, not the probe's
        opened += 1
        try:
            os.preadv(fd, [buf], 0, _NOWAIT)
        except BlockingIOError:
            return False  # not cached: the read would wait for the disk
        except OSError:
            return False  # the probe is not supported here
        finally:
            os.close(fd)
    return opened > 0

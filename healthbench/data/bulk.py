"""Bulk reads of many small records: the cyclic garbage collector paused while they are built.

Building 100k sample records (dicts inside dataclasses) triggers a collection every few hundred
allocations, each scanning every live object: the cost of reading samples.jsonl grew faster than
its size. The records hold no reference cycles, so pausing the collector loses nothing.
"""
from __future__ import annotations

import gc
from contextlib import contextmanager
from typing import Iterator


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic collector for the block (re-entrant; restores the previous state)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()

"""Sharding a run over processes started by torchrun or accelerate (RANK / WORLD_SIZE).

Each rank takes every WORLD_SIZE-th pending sample and appends to its own
``samples.rank<R>.jsonl``; after a barrier, rank 0 merges every shard into ``samples.jsonl``
(atomically) and aggregates. Resume works as in one process: every rank reads all files already
written and skips those samples. The barrier uses torch.distributed with the gloo backend, which
needs no GPU (the same command runs on CPU for tests and on GPUs for real).
"""
from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path


def rank_and_world() -> tuple[int, int]:
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def local_device(device: str | None) -> str | None:
    """``cuda`` → ``cuda:<LOCAL_RANK>`` under a multi-process launch; anything else unchanged."""
    if device == "cuda" and rank_and_world()[1] > 1:
        return f"cuda:{os.environ.get('LOCAL_RANK', '0')}"
    return device


def barrier() -> None:
    """Wait for every rank (no-op in a single process)."""
    if rank_and_world()[1] <= 1:
        return
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group(backend="gloo", timeout=timedelta(hours=6))
    dist.barrier()


def shard_paths(samples_path: Path) -> list[Path]:
    return sorted(samples_path.parent.glob(f"{samples_path.stem}.rank*.jsonl"))


def rank_path(samples_path: Path, rank: int) -> Path:
    return samples_path.with_name(f"{samples_path.stem}.rank{rank}.jsonl")

"""Reading ``.bin``/``.pt``/``.pth`` checkpoints without running code, with a one-line refusal.

``torch.load(weights_only=True)`` refuses pickles that would construct arbitrary objects, but its
message is a page of text that ends by suggesting ``weights_only=False`` — the one thing a user
must not do with a file they do not trust. ``load_weights`` keeps the refusal and replaces the
text with one line: the file, what in it was refused, and the safe way forward (safetensors).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any


class CheckpointRefusedError(ValueError):
    """A checkpoint that cannot be read as plain tensors (it needs code to run, or is corrupt)."""


def _reason(exc: BaseException) -> str:
    """The informative sentence of torch's refusal, never its advice about ``weights_only``."""
    skip = ("weights only load failed", "check the documentation", "please file an issue",
            "weights_only")
    for part in str(exc).replace("WeightsUnpickler error:", "\n").split("\n"):
        part = part.strip()
        if part and not any(s in part.lower() for s in skip):
            return part.rstrip(".")
    return type(exc).__name__


def refusal(path: str | Path, exc: BaseException) -> str:
    """One line saying why ``path`` was not loaded."""
    return (f"{path}: refused: not a plain-tensor checkpoint ({_reason(exc)}); healthbench reads "
            "checkpoints without unpickling code, so convert it to safetensors where you trust it")


def load_weights(path: str | Path) -> Any:
    """``torch.load(path, weights_only=True)`` on CPU; a refusal is a one-line
    ``CheckpointRefusedError``."""
    import warnings

    import torch

    try:
        with warnings.catch_warnings():  # torch's notes on pickle protocols are not for users
            warnings.simplefilter("ignore", UserWarning)
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # refused globals, unknown opcodes, truncated files
        raise CheckpointRefusedError(refusal(path, exc)) from exc

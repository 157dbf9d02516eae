"""Calling a model on a batch without losing the batch: out-of-memory halving and per-request
retry. Used by the runner for healthbench tasks and by the lm-eval adapter for lm-eval's
requests, so both behave the same when a model fails."""
from __future__ import annotations

import logging
from typing import Callable

from healthbench.core.types import Request, Response

log = logging.getLogger("healthbench")


def is_out_of_memory(exc: BaseException) -> bool:
    """CUDA/MPS out-of-memory errors, recognised without importing torch."""
    return type(exc).__name__ == "OutOfMemoryError" or "out of memory" in str(exc).lower()


class BatchCaller:
    """Calls the model on a batch with two fall-backs.

    Out of memory → the batch is split in halves (recursively) and the smaller size is kept as a
    cap for the rest of the task. Any other failure → each request alone, so only the failing
    samples become errors.
    """

    def __init__(self, call: Callable[[list[Request]], list[Response]]) -> None:
        self.call = call  # the model's generate or score_choices (must keep order and length)
        self.cap: int | None = None

    def __call__(self, requests: list[Request]) -> list[Response]:
        cap = self.cap
        if cap is not None and len(requests) > cap:
            out: list[Response] = []
            for start in range(0, len(requests), cap):
                out.extend(self(requests[start:start + cap]))
            return out
        try:
            responses = list(self.call(requests))
            if len(responses) != len(requests):
                raise RuntimeError(f"model returned {len(responses)} responses for "
                                   f"{len(requests)} requests")
            return responses
        except Exception as exc:
            if is_out_of_memory(exc) and len(requests) > 1:
                self.cap = max(1, len(requests) // 2)
                log.warning("out of memory at batch %d; retrying at batch %d", len(requests),
                            self.cap)
                _free_accelerator_memory()
                return self(requests)
            if len(requests) == 1:
                return [Response(error=f"{type(exc).__name__}: {exc}")]
            log.warning("batch of %d failed (%s: %s); retrying one at a time", len(requests),
                        type(exc).__name__, exc)
            return [response for request in requests for response in self([request])]


def _free_accelerator_memory() -> None:
    import sys

    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()

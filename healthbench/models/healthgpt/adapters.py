"""Each task's H-LoRA shape, read from the adapter file rather than fixed by the variant.

The released files hold, per wrapped linear, ``lora_A`` (R × d_in), ``lora_B`` (d_out × R) and
``lora_route`` (n × d_in). The total rank R is read from ``lora_A``; the number of experts n and
α (scaling α/t, t = R/n) cannot be told from the weights alone (the router's rows give n, so
they are checked against it) and come from the model args ``hlora_experts`` and
``com_hlora_alpha`` / ``gen_hlora_alpha``, defaulting to the variant's released values. So an
adapter fine-tuned at another rank, in the released key layout, loads through ``--model-args``;
a file whose tensors disagree names the key and both shapes.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

from healthbench.models.healthgpt.checkpoint import CheckpointError
from healthbench.models.healthgpt.hlora import HLoRAConfig


def _shapes(state: Mapping[str, torch.Tensor], suffix: str) -> list[tuple[str, tuple[int, ...]]]:
    return sorted((k, tuple(v.shape)) for k, v in state.items()
                  if k.endswith(suffix) and isinstance(v, torch.Tensor))


def config_from_state(path: str | Path, state: Mapping[str, torch.Tensor],
                      default: HLoRAConfig, alpha: float | None = None,
                      experts: int | None = None) -> HLoRAConfig:
    """The task's H-LoRA config: rank from the file, α and experts given or the variant's."""
    experts = default.experts if experts is None else int(experts)
    alpha = default.alpha if alpha is None else float(alpha)
    downs = _shapes(state, ".lora_A.weight")
    if not downs:   # nothing to read: the strict key check will name what is missing
        return HLoRAConfig(default.rank, alpha, experts)
    key, shape = downs[0]
    rank = shape[0]
    for other, other_shape in downs[1:]:
        if other_shape[0] != rank:
            raise CheckpointError(f"{path}: H-LoRA ranks differ: {key} is {shape} but {other} "
                                  f"is {other_shape}")
    if rank <= 0 or rank % experts:
        raise CheckpointError(f"{path}: {key} is {shape}: rank {rank} is not a multiple of "
                              f"{experts} experts (set hlora_experts)")
    for route, route_shape in _shapes(state, ".lora_route.weight"):
        if route_shape[0] != experts:
            raise CheckpointError(f"{path}: {route} is {route_shape} but {experts} experts "
                                  f"need ({experts}, {route_shape[1]}) (set hlora_experts)")
    return HLoRAConfig(rank, alpha, experts)


@dataclass(frozen=True)
class HLoRAArgs:
    """The model args that shape adapters (None: the variant's released value)."""

    com_alpha: float | None = None
    gen_alpha: float | None = None
    experts: int | None = None

    def alpha(self, task: str) -> float | None:
        return self.com_alpha if task == "comprehension" else self.gen_alpha

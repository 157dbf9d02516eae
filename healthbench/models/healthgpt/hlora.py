"""H-LoRA: a linear layer plus a per-token soft mixture of low-rank experts (DCDmllm/HealthGPT
``llava/peft/tuners/lora.py``, ``Linear.forward``).

For an input x (…, d_in), with n experts of rank t each (total rank R = n·t) and scaling
s = α / t (the released code's convention, not the paper's Eq. 9)::

    g(x) = softmax(x · W_routeᵀ)                  (…, n)    per token, in the input dtype
    h    = W0 x + b0 + B · ( repeat_interleave(g(x), t) ⊙ (s · A x) )

The adapter is computed with two matmuls on fused weights, no loop over experts: the router
rows are stacked under A (``down``: (R + n) × d_in), so one matmul yields both the rank-R
projection and the routing logits; the gate is broadcast over the t rank slots of each expert
(a view, equivalent to repeat-interleave) before ``up`` (B: d_out × R).

One wrapped linear can hold several named adapters (one per task: comprehension, generation);
``active`` picks the one applied, or none. Switching is a pointer change, so a process that
switches tasks computes exactly what a fresh process with only that adapter computes.
"""
from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

#: The linears the released checkpoints carry adapters for (never lm_head, never the vision side).
TARGETS: dict[str, tuple[str, ...]] = {
    "phi3": ("qkv_proj", "o_proj", "gate_up_proj", "down_proj"),
    "qwen2": ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"),
}


@dataclass(frozen=True)
class HLoRAConfig:
    """Shape of one task's adapters: total rank R, n experts, α (scaling s = α·n/R = α/t)."""

    rank: int
    alpha: float
    experts: int = 4

    def __post_init__(self) -> None:
        if self.rank <= 0 or self.experts <= 0 or self.rank % self.experts:
            raise ValueError(f"H-LoRA rank {self.rank} must be a positive multiple of the "
                             f"number of experts {self.experts}")

    @property
    def expert_rank(self) -> int:
        return self.rank // self.experts

    @property
    def scaling(self) -> float:
        return self.alpha / self.expert_rank


class HLoRAAdapter(nn.Module):
    """One task's adapter weights for one linear: fused [A; W_route] and B."""

    def __init__(self, d_in: int, d_out: int, config: HLoRAConfig,
                 device: torch.device | None = None, dtype: torch.dtype | None = None) -> None:
        super().__init__()
        self.config = config
        rank, n = config.rank, config.experts
        self.down = nn.Parameter(torch.empty(rank + n, d_in, device=device, dtype=dtype))
        self.up = nn.Parameter(torch.zeros(d_out, rank, device=device, dtype=dtype))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Upstream's init: A and the router kaiming-uniform(a=√5), B zero (no effect yet)."""
        rank = self.config.rank
        nn.init.kaiming_uniform_(self.down[:rank], a=math.sqrt(5))
        nn.init.kaiming_uniform_(self.down[rank:], a=math.sqrt(5))
        nn.init.zeros_(self.up)

    # Views onto the fused weight, named as in the released checkpoints.
    @property
    def lora_A(self) -> torch.Tensor:
        return self.down[: self.config.rank]

    @property
    def lora_route(self) -> torch.Tensor:
        return self.down[self.config.rank:]

    @property
    def lora_B(self) -> torch.Tensor:
        return self.up

    @torch.no_grad()
    def load(self, lora_A: torch.Tensor, lora_B: torch.Tensor, lora_route: torch.Tensor) -> None:
        """Copy released tensors in (shapes already checked by the loader)."""
        rank = self.config.rank
        self.down[:rank].copy_(lora_A)
        self.down[rank:].copy_(lora_route)
        self.up.copy_(lora_B)

    def delta(self, x: torch.Tensor) -> torch.Tensor:
        cfg = self.config
        projected = F.linear(x, self.down)                       # (…, R + n)
        low, logits = projected.split((cfg.rank, cfg.experts), dim=-1)
        gate = torch.softmax(logits, dim=-1).to(x.dtype)         # (…, n), per token
        low = low * cfg.scaling
        mixed = (low.unflatten(-1, (cfg.experts, cfg.expert_rank)) * gate.unsqueeze(-1))
        return F.linear(mixed.flatten(-2), self.up)               # (…, d_out)


class HLoRALinear(nn.Module):
    """A frozen ``nn.Linear`` (kept as ``base``) plus named H-LoRA adapters, one active at most."""

    def __init__(self, base: nn.Linear) -> None:
        super().__init__()
        self.base = base
        self.adapters = nn.ModuleDict()
        self.active: str | None = None

    @property
    def in_features(self) -> int:
        return self.base.in_features

    @property
    def out_features(self) -> int:
        return self.base.out_features

    def add_adapter(self, name: str, config: HLoRAConfig) -> HLoRAAdapter:
        weight = self.base.weight
        adapter = HLoRAAdapter(self.in_features, self.out_features, config,
                               device=weight.device, dtype=weight.dtype)
        self.adapters[name] = adapter
        return adapter

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.base(x)
        if self.active is None:
            return out
        return out + self.adapters[self.active].delta(x)

    def extra_repr(self) -> str:
        return f"adapters={list(self.adapters)}, active={self.active!r}"


def wrap_linears(model: nn.Module, targets: Iterable[str]) -> dict[str, HLoRALinear]:
    """Replace every ``nn.Linear`` whose attribute name is in ``targets`` by an HLoRALinear.

    Returns the wrapped modules by their dotted path in ``model`` (e.g.
    ``model.layers.0.self_attn.qkv_proj``). ``lm_head`` is never wrapped, whatever ``targets``
    says. Wrapping the same model twice is an error (adapters are added, not re-wrapped).
    """
    wanted = set(targets) - {"lm_head"}
    found: list[tuple[str, nn.Module, str, nn.Linear]] = []
    for path, module in model.named_modules():
        for child_name, child in module.named_children():
            if child_name in wanted and isinstance(child, nn.Linear):
                full = f"{path}.{child_name}" if path else child_name
                found.append((full, module, child_name, child))
            elif child_name in wanted and isinstance(child, HLoRALinear):
                raise ValueError(f"{path}.{child_name} is already wrapped with H-LoRA")
    wrapped: dict[str, HLoRALinear] = {}
    for full, parent, child_name, child in found:
        layer = HLoRALinear(child)
        setattr(parent, child_name, layer)
        wrapped[full] = layer
    if not wrapped:
        raise ValueError(f"no linear layer named {sorted(wanted)} found to wrap with H-LoRA")
    return wrapped


def set_active(layers: Iterable[HLoRALinear], name: str | None) -> None:
    """Activate one named adapter (or none) on every layer."""
    for layer in layers:
        if name is not None and name not in layer.adapters:
            raise KeyError(f"no H-LoRA adapter {name!r} on this layer (has {list(layer.adapters)})")
        layer.active = name

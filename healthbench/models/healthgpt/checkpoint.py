"""Reading the released HealthGPT weight files strictly (upstream reads them with
``load_weights`` of DCDmllm/HealthGPT ``llava/demo/utils.py``, ``strict=False``).

The released ``.bin`` files are plain ``torch.save`` state dicts written from upstream's PEFT
wrapper, so their keys carry that nesting::

    base_model.model.model.layers.{i}.self_attn.qkv_proj.lora_A.weight    (R × d_in)
    base_model.model.model.layers.{i}.self_attn.qkv_proj.lora_B.weight    (d_out × R)
    base_model.model.model.layers.{i}.self_attn.qkv_proj.lora_route.weight (n × d_in)
    base_model.model.model.mm_projector.{0,2}.{weight,bias}
    base_model.model.model.embed_tokens.weight, base_model.model.lm_head.weight   (fusion)

Upstream loads them with ``strict=False`` and silently ignores missing keys, which leaves an
adapter at its zero init. Here every file is checked against the exact key set and shapes the
model expects, and any missing key, unexpected key or shape mismatch is one error that lists
them all. Files are read with ``torch.load(weights_only=True)`` (no arbitrary unpickling) or
as safetensors.
"""
from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

from healthbench.data.checkpoints import CheckpointRefusedError, load_weights

RELEASED_PREFIX = "base_model.model."
ADAPTER_TENSORS = ("lora_A", "lora_B", "lora_route")
EMBED_KEY = "base_model.model.model.embed_tokens.weight"
HEAD_KEY = "base_model.model.lm_head.weight"
#: How many offending keys an error message lists before summarising.
MAX_LISTED = 20


class CheckpointError(ValueError):
    """A weight file that does not match the model: names the file and the offending keys."""


#: Set to 1 to let a checkpoint that needs full unpickling load (it can run code): explicit trust.
TRUST_PICKLE_ENV = "HEALTHBENCH_TRUST_PICKLE"
log = logging.getLogger("healthbench.healthgpt")


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors from a ``.bin``/``.pt``/``.ckpt`` (weights-only pickle) or ``.safetensors``."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"weight file not found: {path}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return dict(load_file(str(path), device="cpu"))
    try:
        data = load_weights(path)
    except CheckpointRefusedError as exc:
        if os.environ.get(TRUST_PICKLE_ENV) != "1":
            raise CheckpointError(f"{exc} (or set {TRUST_PICKLE_ENV}=1 if you trust this file: "
                                  "a pickle can run code)") from exc
        log.warning("%s: loading a full pickle because %s=1", path, TRUST_PICKLE_ENV)
        data = torch.load(path, map_location="cpu", weights_only=False)
    if not isinstance(data, Mapping):
        raise CheckpointError(f"{path}: expected a state dict, got {type(data).__name__}")
    return dict(data)


@dataclass(frozen=True)
class Slot:
    """Where one released tensor goes: a kind ("adapter", "projector", "embed", "head"), the
    module path inside the LLM (adapters) or the projector parameter name, and the shape."""

    kind: str
    target: str
    tensor: str
    shape: tuple[int, ...]


def adapter_layout(modules: Mapping[str, tuple[int, int]], rank: int,
                   experts: int) -> dict[str, Slot]:
    """Released keys of the H-LoRA tensors for wrapped linears ``{path: (d_in, d_out)}``.

    ``path`` is relative to the causal-LM (``model.layers.0.self_attn.qkv_proj``), which is
    exactly what follows ``base_model.model.`` in the released keys.
    """
    slots: dict[str, Slot] = {}
    for path, (d_in, d_out) in modules.items():
        shapes = {"lora_A": (rank, d_in), "lora_B": (d_out, rank), "lora_route": (experts, d_in)}
        for tensor in ADAPTER_TENSORS:
            slots[f"{RELEASED_PREFIX}{path}.{tensor}.weight"] = Slot("adapter", path, tensor,
                                                                    shapes[tensor])
    return slots


def projector_layout(vision_hidden: int, hidden: int) -> dict[str, Slot]:
    """Released keys of the 2-layer MLP projector (``mlp2x_gelu``: Linear, GELU, Linear)."""
    shapes = {"0.weight": (hidden, vision_hidden), "0.bias": (hidden,),
              "2.weight": (hidden, hidden), "2.bias": (hidden,)}
    return {f"{RELEASED_PREFIX}model.mm_projector.{name}": Slot("projector", name, name, shape)
            for name, shape in shapes.items()}


def fusion_layout(vocab: int, hidden: int) -> dict[str, Slot]:
    """Released keys of the fusion embedding layer and head (stage-2 generation weights)."""
    return {EMBED_KEY: Slot("embed", "embed_tokens", "weight", (vocab, hidden)),
            HEAD_KEY: Slot("head", "lm_head", "weight", (vocab, hidden))}


def check_keys(path: str | Path, state: Mapping[str, torch.Tensor], required: Mapping[str, Slot],
               optional: Mapping[str, Slot] = {}) -> dict[str, tuple[Slot, torch.Tensor]]:
    """Match a state dict against the expected layout; raise one error naming every problem."""
    expected = {**required, **optional}
    missing = sorted(set(required) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(f"{k}: file {tuple(state[k].shape)}, model {expected[k].shape}"
                   for k in set(state) & set(expected)
                   if tuple(state[k].shape) != expected[k].shape)
    problems = []
    for label, keys in (("missing keys", missing), ("unexpected keys", unexpected),
                        ("shape mismatches", wrong)):
        if keys:
            listed = ", ".join(keys[:MAX_LISTED])
            more = f" … and {len(keys) - MAX_LISTED} more" if len(keys) > MAX_LISTED else ""
            problems.append(f"{len(keys)} {label}: {listed}{more}")
    if problems:
        raise CheckpointError(f"{path} does not match the model ({'; '.join(problems)})")
    return {key: (expected[key], state[key]) for key in state}

"""The VQGAN decoder's shape: from taming-transformers' ``model.yaml`` or from the checkpoint.

HealthGPT ships ``taming_transformers/ckpt/model.yaml`` (GumbelVQ, OpenImages f8-8192) next to
the ``last.ckpt`` the user downloads. The decoder is built from that file's
``model.params`` (``n_embed``, ``embed_dim``) and ``model.params.ddconfig`` (``z_channels``,
``resolution``, ``ch``, ``ch_mult``, ``num_res_blocks``, ``attn_resolutions``, ``out_ch``):
given as ``vqgan_config``, or found as ``model.yaml`` beside the checkpoint. Without either, the
shape is read from the checkpoint's tensors; the one field the weights cannot tell, the image
``resolution``, is then taming's 256 (every released taming VQGAN's). GroupNorm uses 32 groups,
fixed in taming's code.
"""
from __future__ import annotations

import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from healthbench.models.healthgpt.checkpoint import CheckpointError, read_state_dict
from healthbench.models.healthgpt.vqgan import VQGANConfig, VQGANDecoder

#: The taming model class whose decoding path VQGANDecoder implements.
GUMBEL_TARGET = "taming.models.vqgan.GumbelVQ"
#: The image side assumed when only the checkpoint is known (taming's configs all say 256).
DEFAULT_RESOLUTION = 256


def config_from_yaml(path: str | Path) -> VQGANConfig:
    """A taming ``model.yaml`` → the decoder shape; names the file and the missing field."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"VQGAN config not found: {path}")
    try:
        model = yaml.safe_load(path.read_text(encoding="utf-8"))["model"]
        params = model["params"]
        dd = params["ddconfig"]
        target = str(model.get("target", GUMBEL_TARGET))
        if target != GUMBEL_TARGET:
            raise CheckpointError(f"{path}: target {target!r}; only {GUMBEL_TARGET} (HealthGPT's "
                                  "VQGAN) is supported")
        return VQGANConfig(n_embed=int(params["n_embed"]), embed_dim=int(params["embed_dim"]),
                           z_channels=int(dd["z_channels"]), resolution=int(dd["resolution"]),
                           ch=int(dd["ch"]), ch_mult=tuple(int(m) for m in dd["ch_mult"]),
                           num_res_blocks=int(dd["num_res_blocks"]),
                           attn_resolutions=tuple(int(r) for r in dd["attn_resolutions"]),
                           out_ch=int(dd.get("out_ch", 3)))
    except CheckpointError:
        raise
    except (KeyError, TypeError, ValueError, yaml.YAMLError) as exc:
        raise CheckpointError(f"{path}: not a taming model.yaml with model.params.ddconfig "
                              f"({type(exc).__name__}: {exc})") from exc


def config_from_state(state: Mapping[str, torch.Tensor]) -> VQGANConfig:
    """The decoder shape read from a taming state dict's tensor shapes."""
    def shape(key: str) -> tuple[int, ...]:
        if key not in state:
            raise CheckpointError(f"VQGAN checkpoint has no {key} (is it a taming GumbelVQ?)")
        return tuple(state[key].shape)

    n_embed, embed_dim = shape("quantize.embed.weight")
    z_channels = shape("post_quant_conv.weight")[0]
    out_ch = shape("decoder.conv_out.weight")[0]
    levels = sorted({int(m.group(1)) for k in state
                     if (m := re.match(r"decoder\.up\.(\d+)\.block\.0\.conv2\.weight$", k))})
    if not levels or levels != list(range(len(levels))):
        raise CheckpointError("VQGAN checkpoint: decoder.up.<level> blocks not found in order")
    widths = [shape(f"decoder.up.{i}.block.0.conv2.weight")[0] for i in levels]
    ch = math.gcd(*widths)
    blocks = {int(m.group(1)) for k in state
              if (m := re.match(r"decoder\.up\.0\.block\.(\d+)\.conv1\.weight$", k))}
    attn = [DEFAULT_RESOLUTION // 2 ** i for i in levels
            if f"decoder.up.{i}.attn.0.q.weight" in state]
    return VQGANConfig(n_embed=n_embed, embed_dim=embed_dim, z_channels=z_channels,
                       resolution=DEFAULT_RESOLUTION, ch=ch,
                       ch_mult=tuple(w // ch for w in widths), num_res_blocks=len(blocks) - 1,
                       attn_resolutions=tuple(sorted(attn, reverse=True)), out_ch=out_ch)


def load_vqgan(checkpoint: str | Path, config: str | Path | None = None,
               known: VQGANConfig | None = None) -> tuple[VQGANDecoder, str]:
    """The decoder with its weights, and where its shape came from (recorded by the plugin).

    The shape comes from ``config``, else ``model.yaml`` beside the checkpoint, else ``known``
    (the tiny variant's own shape), else the checkpoint's tensors."""
    checkpoint = Path(checkpoint)
    beside = checkpoint.with_name("model.yaml")
    if config is None and beside.is_file():
        config = beside
    state: Any = read_state_dict(checkpoint)
    if "state_dict" in state and isinstance(state["state_dict"], Mapping):
        state = state["state_dict"]
    if config is not None:
        cfg, source = config_from_yaml(config), str(config)
    elif known is not None:
        cfg, source = known, "the variant's own shape"
    else:
        cfg, source = config_from_state(state), "inferred from the checkpoint"
    decoder = VQGANDecoder(cfg)
    decoder.load_state(checkpoint, state)
    return decoder, source

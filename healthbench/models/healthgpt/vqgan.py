"""The VQGAN decoder that turns 1024 codebook indices into a 256×256 image (DCDmllm/HealthGPT
``taming_transformers/idx2img.py``, ``ckpt/model.yaml``).

Architecture of taming-transformers' GumbelVQ decoding path, parameter names kept so that the
released checkpoint (``last.ckpt`` of "VQGAN OpenImages (f=8), 8192, GumbelQuantization", its
``state_dict``) loads as is: ``quantize.embed`` (codebook), ``post_quant_conv`` (1×1 conv), and
``decoder.*`` (conv_in, mid block/attention/block, up levels of ResNet blocks + attention at the
listed resolutions + nearest-×2 upsampling convs, GroupNorm, swish, conv_out). The encoder half
(``encoder.*``, ``quant_conv``, ``quantize.proj``) is not needed to decode; its keys are accepted
and skipped. Written from the architecture description, not copied.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from healthbench.models.healthgpt.checkpoint import (
    CheckpointError,
    Slot,
    check_keys,
    read_state_dict,
)


@dataclass(frozen=True)
class VQGANConfig:
    """``ddconfig`` + codebook of the f8-8192 Gumbel VQGAN (defaults = the released model)."""

    n_embed: int = 8192
    embed_dim: int = 256
    z_channels: int = 256
    resolution: int = 256
    ch: int = 128
    ch_mult: tuple[int, ...] = (1, 1, 2, 4)
    num_res_blocks: int = 2
    attn_resolutions: tuple[int, ...] = (32,)
    out_ch: int = 3
    #: GroupNorm groups; taming fixes 32. Smaller only for tiny test configurations.
    norm_groups: int = 32

    @property
    def latent_size(self) -> int:
        return self.resolution // 2 ** (len(self.ch_mult) - 1)

    @property
    def tokens(self) -> int:
        return self.latent_size ** 2


def _norm(channels: int, groups: int) -> nn.GroupNorm:
    return nn.GroupNorm(groups, channels, eps=1e-6, affine=True)


class ResnetBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, groups: int) -> None:
        super().__init__()
        self.norm1 = _norm(c_in, groups)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.norm2 = _norm(c_out, groups)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.nin_shortcut = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        skip = x if self.nin_shortcut is None else self.nin_shortcut(x)
        return skip + h


class AttnBlock(nn.Module):
    """Single-head self-attention over the h·w positions with 1×1-conv q, k, v, proj_out."""

    def __init__(self, channels: int, groups: int) -> None:
        super().__init__()
        self.norm = _norm(channels, groups)
        self.q = nn.Conv2d(channels, channels, 1)
        self.k = nn.Conv2d(channels, channels, 1)
        self.v = nn.Conv2d(channels, channels, 1)
        self.proj_out = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        normed = self.norm(x)
        q, k, v = (conv(normed).flatten(2).transpose(1, 2).unsqueeze(1)
                   for conv in (self.q, self.k, self.v))              # (b, 1, hw, c)
        out = F.scaled_dot_product_attention(q, k, v)                  # scale c^-1/2
        out = out.squeeze(1).transpose(1, 2).reshape(b, c, h, w)
        return x + self.proj_out(out)


class Upsample(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class Decoder(nn.Module):
    def __init__(self, cfg: VQGANConfig) -> None:
        super().__init__()
        groups, levels = cfg.norm_groups, len(cfg.ch_mult)
        block_in = cfg.ch * cfg.ch_mult[-1]
        res = cfg.latent_size
        self.conv_in = nn.Conv2d(cfg.z_channels, block_in, 3, padding=1)
        self.mid = nn.Module()
        self.mid.block_1 = ResnetBlock(block_in, block_in, groups)
        self.mid.attn_1 = AttnBlock(block_in, groups)
        self.mid.block_2 = ResnetBlock(block_in, block_in, groups)
        ups: list[nn.Module] = []
        for level in reversed(range(levels)):
            up = nn.Module()
            up.block = nn.ModuleList()
            up.attn = nn.ModuleList()
            block_out = cfg.ch * cfg.ch_mult[level]
            for _ in range(cfg.num_res_blocks + 1):
                up.block.append(ResnetBlock(block_in, block_out, groups))
                block_in = block_out
                if res in cfg.attn_resolutions:
                    up.attn.append(AttnBlock(block_in, groups))
            if level != 0:
                up.upsample = Upsample(block_in)
                res *= 2
            ups.insert(0, up)                 # up[level], lowest resolution last
        self.up = nn.ModuleList(ups)
        self.norm_out = _norm(block_in, groups)
        self.conv_out = nn.Conv2d(block_in, cfg.out_ch, 3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.conv_in(z)
        h = self.mid.block_2(self.mid.attn_1(self.mid.block_1(h)))
        for level in reversed(range(len(self.up))):
            up = self.up[level]
            for i, block in enumerate(up.block):
                h = block(h)
                if len(up.attn):
                    h = up.attn[i](h)
            if hasattr(up, "upsample"):
                h = up.upsample(h)
        return self.conv_out(F.silu(self.norm_out(h)))


class Quantize(nn.Module):
    """The codebook part of taming's GumbelQuantize (index → vector is a plain lookup)."""

    def __init__(self, cfg: VQGANConfig) -> None:
        super().__init__()
        self.embed = nn.Embedding(cfg.n_embed, cfg.embed_dim)


class VQGANDecoder(nn.Module):
    """Codebook indices (N, tokens) → images in [-1, 1], (N, 3, resolution, resolution)."""

    #: Keys of the released checkpoint that belong to the encoder side; accepted, not loaded.
    UNUSED_PREFIXES = ("encoder.", "quant_conv.", "quantize.proj.", "loss.")

    def __init__(self, cfg: VQGANConfig = VQGANConfig()) -> None:
        super().__init__()
        self.config = cfg
        self.quantize = Quantize(cfg)
        self.post_quant_conv = nn.Conv2d(cfg.embed_dim, cfg.z_channels, 1)
        self.decoder = Decoder(cfg)

    def forward(self, indices: torch.Tensor) -> torch.Tensor:
        cfg = self.config
        if indices.ndim != 2 or indices.shape[1] != cfg.tokens:
            raise ValueError(f"expected (N, {cfg.tokens}) codebook indices, got "
                             f"{tuple(indices.shape)}")
        side = cfg.latent_size
        z = self.quantize.embed(indices).view(-1, side, side, cfg.embed_dim).permute(0, 3, 1, 2)
        # contiguous, as upstream's get_codebook_entry returns it: a channels-last view takes
        # another CPU conv kernel and drifts ~5e-5 from upstream's decoded floats (not ~4e-6)
        return self.decoder(self.post_quant_conv(z.contiguous()))

    @torch.no_grad()
    def decode_to_uint8(self, indices: torch.Tensor) -> torch.Tensor:
        """Upstream's ``idx2img`` mapping: clamp to [-1, 1], scale to [0, 255] and truncate to
        uint8 (as taming's ``custom_to_pil``); (N, H, W, 3)."""
        images = self(indices).float().clamp(-1, 1)
        return ((images + 1) * 127.5).to(torch.uint8).permute(0, 2, 3, 1)

    def load_released(self, path: str | Path) -> None:
        """Load a taming-transformers checkpoint (Lightning ``{"state_dict": …}`` or bare)."""
        state: Mapping[str, torch.Tensor] = read_state_dict(path)
        if "state_dict" in state and isinstance(state["state_dict"], Mapping):
            state = state["state_dict"]
        self.load_state(path, state)

    def load_state(self, path: str | Path, state: Mapping[str, torch.Tensor]) -> None:
        """Load an already-read taming state dict strictly (``path`` names it in errors)."""
        state = {k: v for k, v in state.items() if isinstance(v, torch.Tensor)
                 and not k.startswith(self.UNUSED_PREFIXES)}
        own = self.state_dict()
        layout = {k: Slot("vqgan", k, k, tuple(v.shape)) for k, v in own.items()}
        check_keys(path, state, layout)
        try:
            self.load_state_dict(state, strict=True)
        except RuntimeError as exc:  # pragma: no cover - check_keys already covers this
            raise CheckpointError(f"{path}: {exc}") from exc


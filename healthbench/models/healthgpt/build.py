"""Assembling a HealthGPT from local files (released variants) or from a seed (tiny).

Nothing is downloaded: every path is a local directory or file. The released recipe
(DCDmllm/HealthGPT ``llava/demo/*.py``): base LLM → VQ tokens appended (M3, L14) → H-LoRA
wrapped on the LLM's linears → CLIP tower → per-task weights loaded strictly → eval, one dtype.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from healthbench.models.healthgpt import tiny
from healthbench.models.healthgpt.adapters import HLoRAArgs, config_from_state
from healthbench.models.healthgpt.checkpoint import read_state_dict
from healthbench.models.healthgpt.model import HealthGPT
from healthbench.models.healthgpt.templates import get_template
from healthbench.models.healthgpt.variants import COMPREHENSION, GENERATION, Variant
from healthbench.models.healthgpt.vision import clip_processor
from healthbench.models.healthgpt.vqgan import VQGANConfig, VQGANDecoder
from healthbench.models.healthgpt.vqgan_config import load_vqgan

DTYPES = {"float32": torch.float32, "fp32": torch.float32, "float16": torch.float16,
          "fp16": torch.float16, "half": torch.float16, "bfloat16": torch.bfloat16,
          "bf16": torch.bfloat16}
LLM_FAMILY = {"phi3": ("phi3", "llava_phi"), "qwen2": ("qwen2", "llava_qwen2")}


@dataclass
class Paths:
    llm: str | None = None
    vit: str | None = None
    com_hlora: str | None = None
    gen_hlora: str | None = None
    fusion: str | None = None
    vqgan: str | None = None
    vqgan_config: str | None = None

    def given(self) -> dict[str, str]:
        return {k: v for k, v in vars(self).items() if v}


@dataclass
class Built:
    net: HealthGPT
    vqgan: VQGANDecoder | None
    stop_ids: list[int]
    info: dict[str, Any] = field(default_factory=dict)


def resolve_device(device: str | None) -> torch.device:
    if device in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def resolve_dtype(dtype: str, device: torch.device) -> torch.dtype:
    if dtype in ("auto", "", None):
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    try:
        return DTYPES[str(dtype).lower()]
    except KeyError:
        raise ValueError(f"dtype {dtype!r}: expected auto, float32, float16 or bfloat16") from None


def _existing(path: str, what: str) -> str:
    if not Path(path).exists():
        raise FileNotFoundError(f"{what} not found: {path} (paths are local; nothing is "
                                "downloaded)")
    return path


def _stop_ids(tokenizer: Any, generation_config: Any, end_text: str) -> list[int]:
    ids: list[int] = []
    eos = getattr(generation_config, "eos_token_id", None)
    for value in ([eos] if isinstance(eos, int) else list(eos or [])) + [tokenizer.eos_token_id]:
        if value is not None and value not in ids:
            ids.append(int(value))
    end = tokenizer.convert_tokens_to_ids(end_text)
    if isinstance(end, int) and end != tokenizer.unk_token_id and end not in ids:
        ids.append(end)
    return ids


def _task_files(variant: Variant, paths: Paths, hlora: HLoRAArgs) -> dict[str, tuple]:
    """Per task given a file: (path, its tensors, the H-LoRA config its shapes say)."""
    out = {}
    for name, path in ((COMPREHENSION, paths.com_hlora), (GENERATION, paths.gen_hlora)):
        if path:
            what = "comprehension" if name == COMPREHENSION else "generation"
            state = read_state_dict(_existing(path, f"{what} H-LoRA file"))
            out[name] = (path, state, config_from_state(path, state, variant.hlora(name),
                                                        hlora.alpha(name), hlora.experts))
    return out


def _vqgan(paths: Paths, vq_tokens: int, device: torch.device, info: dict[str, Any],
           known: VQGANConfig | None = None) -> VQGANDecoder:
    """The decoder from the checkpoint (+ taming model.yaml), fp32 as upstream's idx2img."""
    decoder, source = load_vqgan(_existing(paths.vqgan or "", "VQGAN checkpoint"),
                                 paths.vqgan_config and _existing(paths.vqgan_config,
                                                                  "VQGAN model.yaml"), known)
    if decoder.config.n_embed != vq_tokens:
        raise ValueError(f"the VQGAN codebook has {decoder.config.n_embed} entries but the "
                         f"model's vocabulary has {vq_tokens} index tokens")
    info["vqgan"] = {"config": source, "n_embed": decoder.config.n_embed,
                     "tokens": decoder.config.tokens, "resolution": decoder.config.resolution}
    return decoder.to(device=device).eval()


def build_tiny(variant: Variant, paths: Paths, dtype: torch.dtype, device: torch.device,
               attn_implementation: str, seed: int, hlora: HLoRAArgs = HLoRAArgs()) -> Built:
    """Tiny random-weight model; every random tensor comes from ``seed`` in a fixed order."""
    unsupported = set(paths.given()) & {"llm", "vit"}
    if unsupported:
        raise ValueError(f"variant 'tiny' is built from configs; it takes no "
                         f"{', '.join(sorted(unsupported))} path")
    files = _task_files(variant, paths, hlora)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        tokenizer = tiny.build_tokenizer()
        llm = tiny.build_llm(len(tokenizer), tokenizer, attn_implementation)
        vision, processor = tiny.build_vision(attn_implementation)
        net = HealthGPT(llm, vision, tokenizer, processor, variant.family,
                        get_template(variant.template), variant.vq_tokens)
        for name in (COMPREHENSION, GENERATION):
            net.add_task(name, files[name][2] if name in files else variant.hlora(name))
            for layer in net.hlora_layers.values():   # non-zero B so the adapters matter
                torch.nn.init.normal_(layer.adapters[name].up, std=0.02)
        fusion = {"embed": torch.randn(net.vocab_size, net.hidden_size) * 0.02,
                  "head": torch.randn(net.vocab_size, net.hidden_size) * 0.02}
        vqgan = VQGANDecoder(tiny.TINY_VQGAN)
    net.to(device=device, dtype=dtype).eval()
    net.set_fusion(GENERATION, fusion["embed"], fusion["head"])
    vqgan = vqgan.to(device=device).eval()   # fp32, as upstream's idx2img
    if GENERATION not in files and paths.fusion:
        raise ValueError("fusion_path is loaded with gen_hlora_path; give both")
    for name, (path, state, _) in files.items():
        fusion_path = paths.fusion and _existing(paths.fusion, "fusion layer file")
        net.load_task(name, path, fusion_path if name == GENERATION else None, state)
    info: dict[str, Any] = {"tasks": [COMPREHENSION, GENERATION]}
    if paths.vqgan:
        vqgan = _vqgan(paths, variant.vq_tokens, device, info, tiny.TINY_VQGAN)
    stop = _stop_ids(tokenizer, None, net.template.stop_text)
    return Built(net, vqgan, stop, info)


def build_released(variant: Variant, paths: Paths, dtype: torch.dtype, device: torch.device,
                   attn_implementation: str, device_map: str | None,
                   hlora: HLoRAArgs = HLoRAArgs()) -> Built:
    """A released variant from local base weights and the released H-LoRA/fusion/VQGAN files."""
    from transformers import AutoModelForCausalLM, AutoTokenizer, CLIPVisionModel

    if not paths.llm or not paths.vit:
        raise ValueError(f"variant {variant.name!r} needs llm_path (the base LLM directory) and "
                         "vit_path (CLIP ViT-L/14-336 directory)")
    if not paths.com_hlora and not paths.gen_hlora:
        raise ValueError(f"variant {variant.name!r} needs com_hlora_path and/or gen_hlora_path")
    if paths.gen_hlora and variant.generation is None:
        raise ValueError(f"HealthGPT-{variant.name.upper()} has no released generation weights "
                         "(only M3 does); drop gen_hlora_path")
    if paths.gen_hlora and not (paths.fusion and paths.vqgan):
        raise ValueError("generation needs gen_hlora_path, fusion_path and vqgan_path together")
    tokenizer = AutoTokenizer.from_pretrained(_existing(paths.llm, "base LLM directory"))
    llm = AutoModelForCausalLM.from_pretrained(paths.llm, dtype=dtype,
                                               attn_implementation=attn_implementation,
                                               **({"device_map": device_map} if device_map
                                                  else {}))
    if llm.config.model_type not in LLM_FAMILY[variant.family]:
        raise ValueError(f"{paths.llm} holds a {llm.config.model_type!r} model; variant "
                         f"{variant.name!r} needs {LLM_FAMILY[variant.family][0]!r}")
    vision = CLIPVisionModel.from_pretrained(_existing(paths.vit, "CLIP directory"), dtype=dtype,
                                             attn_implementation=attn_implementation)
    processor = clip_processor(paths.vit)
    vision.requires_grad_(False)
    llm.requires_grad_(False)
    net = HealthGPT(llm, vision, tokenizer, processor, variant.family,
                    get_template(variant.template), variant.vq_tokens)
    if not device_map:
        net.to(device)
    else:
        vision.to(net.device)
    files = _task_files(variant, paths, hlora)
    vqgan, info = None, {"tasks": list(files)}
    generation = GENERATION in files
    for name in list(files):
        path, state, config = files.pop(name)     # one file's tensors in memory at a time
        net.add_task(name, config)
        net.load_task(name, path, _existing(paths.fusion or "", "fusion layer file")
                      if name == GENERATION else None, state)
    if generation:
        vqgan = _vqgan(paths, variant.vq_tokens, net.device, info)
    net.eval()
    net.requires_grad_(False)
    stop = _stop_ids(tokenizer, getattr(llm, "generation_config", None), net.template.stop_text)
    return Built(net, vqgan, stop, info)


def build_random(variant: Variant, dtype: torch.dtype, device: torch.device,
                 attn_implementation: str, seed: int, shape_name: str | None = None) -> Built:
    """A full-size M3/L14/XL32-shaped model with random weights (comprehension only).

    For speed and memory measurements (benchmarks/throughput.py): every tensor is created
    directly on ``device`` in ``dtype`` (no full-size float32 copy on the CPU first); shapes are
    the released ones (shapes.py), or ``shape_name`` (``mid``: the layout at CPU size), H-LoRA
    B is non-zero so the adapters do real work.
    """
    from transformers import AutoModelForCausalLM, CLIPVisionModel

    from healthbench.models.healthgpt import shapes

    shape_name = shape_name or variant.name
    shape = shapes.get_shape(shape_name)
    tokenizer = shapes.build_tokenizer(shape.tokenizer_size, shape.eos)
    processor = clip_processor()
    previous = torch.get_default_dtype()
    devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices), torch.device(device):
        torch.manual_seed(seed)
        torch.set_default_dtype(dtype)
        try:
            llm = AutoModelForCausalLM.from_config(
                shapes.llm_config(shape_name, tokenizer, attn_implementation), dtype=dtype)
            vision = CLIPVisionModel(shapes.vision_config(attn_implementation, shape_name))
            net = HealthGPT(llm, vision, tokenizer, processor, variant.family,
                            get_template(variant.template), variant.vq_tokens)
            net.add_task(COMPREHENSION, variant.hlora(COMPREHENSION))
            with torch.no_grad():
                for layer in net.hlora_layers.values():
                    torch.nn.init.normal_(layer.adapters[COMPREHENSION].up, std=0.02)
        finally:
            torch.set_default_dtype(previous)
    net.to(device=device, dtype=dtype).eval()
    net.requires_grad_(False)
    stop = _stop_ids(tokenizer, None, net.template.stop_text)
    return Built(net, None, stop, {"tasks": [COMPREHENSION], "random_weights": True})

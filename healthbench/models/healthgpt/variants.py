"""The released HealthGPT configurations (the ``llava/demo/*.sh`` scripts of DCDmllm/HealthGPT)
and the tiny test one.

Every released configuration has s = α/t = 8 (t = per-expert rank). M3 is the only variant with
released generation weights; L14 adds the VQ tokens to its vocabulary (like M3) but has no
generation adapter; XL32 (Qwen2.5-32B) adds no VQ tokens and is comprehension-only.
"""
from __future__ import annotations

from dataclasses import dataclass

from healthbench.models.healthgpt.hlora import HLoRAConfig

COMPREHENSION = "comprehension"
GENERATION = "generation"

#: CLIP hidden-state index each task reads (hierarchical visual perception).
VISION_LAYER = {COMPREHENSION: -2, GENERATION: 1}


@dataclass(frozen=True)
class Variant:
    name: str
    family: str                 # "phi3" (Phi-3-mini, Phi-4) or "qwen2"
    template: str
    comprehension: HLoRAConfig
    generation: HLoRAConfig | None
    #: Codebook size of the VQ tokens added to the vocabulary (0: none added).
    vq_tokens: int
    description: str

    def hlora(self, task: str) -> HLoRAConfig:
        config = self.comprehension if task == COMPREHENSION else self.generation
        if config is None:
            raise ValueError(f"HealthGPT-{self.name.upper()} has no {task} adapter")
        return config


VARIANTS: dict[str, Variant] = {
    "m3": Variant("m3", "phi3", "phi3_instruct", HLoRAConfig(64, 128), HLoRAConfig(256, 512),
                  8192, "HealthGPT-M3: Phi-3-mini-4k-instruct + CLIP ViT-L/14-336"),
    "l14": Variant("l14", "phi3", "phi4_instruct", HLoRAConfig(32, 64), None, 8192,
                   "HealthGPT-L14: Phi-4 + CLIP ViT-L/14-336 (comprehension only)"),
    "xl32": Variant("xl32", "qwen2", "qwen_2", HLoRAConfig(32, 64), None, 0,
                    "HealthGPT-XL32: Qwen2.5-32B-Instruct + CLIP ViT-L/14-336 "
                    "(comprehension only)"),
    "tiny": Variant("tiny", "phi3", "phi3_instruct", HLoRAConfig(16, 32), HLoRAConfig(32, 64),
                    8192, "tiny random-weight HealthGPT (Phi-3 layout), built offline from a seed"),
}

#: Special tokens appended after the base vocabulary, in this order, when vq_tokens > 0:
#: <start_index>, <idx_0> … <idx_{N-1}>, <end_index>, <pixel_newline>.
EXTRA_TOKENS_BEYOND_INDICES = 3


def get_variant(name: str) -> Variant:
    try:
        return VARIANTS[name.lower()]
    except KeyError:
        raise ValueError(f"unknown HealthGPT variant {name!r} (known: "
                         f"{', '.join(VARIANTS)})") from None

"""Image preprocessing, CLIP features at the task's layer, and the visual projector.

Hierarchical visual perception (HealthGPT paper §5.1; ``com_vision_args`` / ``gen_vision_args``
in DCDmllm/HealthGPT ``llava/demo/utils.py``): comprehension reads CLIP hidden state -2
(output of the penultimate encoder block, "abstract" features), generation reads hidden state 1
(output of the first block, "concrete" features). Only the blocks up to the needed layer are
run, so generation pays for one CLIP block instead of 24. The CLS token is dropped: 576 patch
features per 336-px image. Preprocessing is upstream's: pad to a square with the CLIP mean
colour, then the CLIP processor (resize shortest side, centre crop, normalise).

The processor is pinned to the PIL implementation (``clip_processor_class``): transformers 5
resolves ``CLIPImageProcessor`` to a torchvision-backed class when torchvision is installed and
to the PIL one otherwise, and their bicubic resizes differ, so answers would depend on an
unrelated install. The PIL class equals upstream's (transformers 4.x) ``CLIPImageProcessor``
bit for bit (tests/test_healthgpt_fidelity.py restates that path by hand).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn


def clip_processor_class() -> Any:
    """The PIL CLIP image processor whatever is installed: ``CLIPImageProcessorPil`` on
    transformers 5, ``CLIPImageProcessor`` (then PIL-based) on transformers 4."""
    try:
        from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil
    except ImportError:  # transformers 4: CLIPImageProcessor is the PIL/numpy implementation
        from transformers.models.clip.image_processing_clip import CLIPImageProcessor

        return CLIPImageProcessor
    return CLIPImageProcessorPil


def clip_processor(path: str | None = None) -> Any:
    """The pinned processor, from a CLIP directory's preprocessor_config.json or, without one,
    CLIP ViT-L/14-336's settings (shortest edge 336, centre crop 336, OpenAI mean/std)."""
    cls = clip_processor_class()
    if path is not None:
        return cls.from_pretrained(path)
    return cls(size={"shortest_edge": 336}, crop_size={"height": 336, "width": 336})


def expand_to_square(image: Any, background: tuple[int, int, int]) -> Any:
    """Pad a PIL image to a square, centred, with ``background`` (upstream ``expand2square``)."""
    from PIL import Image

    image = image.convert("RGB")
    width, height = image.size
    if width == height:
        return image
    side = max(width, height)
    canvas = Image.new("RGB", (side, side), background)
    canvas.paste(image, ((side - width) // 2, (side - height) // 2))
    return canvas


class ImagePreprocessor:
    """PIL images → normalised pixel tensor (N, 3, S, S) exactly as the released scripts do.

    Large batches are split into chunks processed by a small thread pool (PIL's resize and
    numpy's arithmetic release the GIL); each image is processed exactly as alone, so the
    result equals the one-call result. ``workers`` = 1 turns the pool off.
    """

    #: Fewest images per chunk (below this, one call on the calling thread).
    chunk = 8

    def __init__(self, processor: Any, workers: int | None = None) -> None:
        import os

        self.processor = processor
        self.background = tuple(int(m * 255) for m in processor.image_mean)
        self.workers = workers if workers is not None else min(8, os.cpu_count() or 1)
        self._pool: Any = None

    def _one_call(self, images: Sequence[Any]) -> torch.Tensor:
        squared = [expand_to_square(img, self.background)  # type: ignore[arg-type]
                   for img in images]
        return self.processor(images=squared, return_tensors="pt")["pixel_values"]

    def __call__(self, images: Sequence[Any]) -> torch.Tensor:
        if self.workers <= 1 or len(images) < 2 * self.chunk:
            return self._one_call(images)
        if self._pool is None:
            from concurrent.futures import ThreadPoolExecutor

            self._pool = ThreadPoolExecutor(max_workers=self.workers,
                                            thread_name_prefix="hb-preprocess")
        size = max(self.chunk, -(-len(images) // self.workers))
        parts = [images[i:i + size] for i in range(0, len(images), size)]
        return torch.cat(list(self._pool.map(self._one_call, parts)))


def hidden_state_count(select_layer: int, num_layers: int) -> int:
    """Encoder blocks to run for ``hidden_states[select_layer]`` (index 0 = the embeddings)."""
    index = select_layer if select_layer >= 0 else num_layers + 1 + select_layer
    if not 0 <= index <= num_layers:
        raise ValueError(f"vision layer {select_layer} out of range for {num_layers} blocks")
    return index


def clip_patch_features(vision: nn.Module, pixel_values: torch.Tensor,
                        select_layer: int) -> torch.Tensor:
    """``CLIPVisionModel`` hidden state ``select_layer`` without the CLS token: (N, P, D).

    Equals ``vision(pixel_values, output_hidden_states=True).hidden_states[select_layer][:, 1:]``
    but stops after the last block it needs.
    """
    tower = getattr(vision, "vision_model", vision)  # transformers 5 flattened the wrapper
    blocks = hidden_state_count(select_layer, len(tower.encoder.layers))
    hidden = tower.pre_layrnorm(tower.embeddings(pixel_values))
    for layer in tower.encoder.layers[:blocks]:
        hidden = layer(hidden, None)
    return hidden[:, 1:]


def build_projector(vision_hidden: int, hidden: int, dtype: torch.dtype | None = None,
                    device: torch.device | str | None = None) -> nn.Sequential:
    """LLaVA ``mlp2x_gelu``: Linear(D → H), GELU, Linear(H → H), with biases (indices 0, 2)."""
    return nn.Sequential(nn.Linear(vision_hidden, hidden), nn.GELU(),
                         nn.Linear(hidden, hidden)).to(device=device, dtype=dtype)

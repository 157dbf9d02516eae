"""From generated tokens to VQGAN indices (DCDmllm/HealthGPT ``llava/demo/gen_infer.py``).

The generation prompt ends with ``<start_index>``; the model is expected to emit exactly one
image's worth of ``<idx_k>`` tokens (1024 for a 32×32 latent) and then ``<end_index>``.
Upstream decodes the text, pulls out every number with a regex and lets the VQGAN assert on the
count; here the token ids are read directly and any other outcome (too few or too many indices,
a non-index token in between) is a per-sample error message, never a crash.

``ImageTokenConstraint`` optionally forces that grammar while decoding (only index tokens for
the first ``count`` steps, then ``<end_index>``), so every sample yields an image. Upstream does
not constrain; the plugin enables it by default only for the tiny random-weight variant.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch


def parse_image_tokens(tokens: Sequence[int], first_id: int, codebook_size: int, count: int,
                       stop_ids: Sequence[int]) -> list[int] | str:
    """The ``count`` codebook indices of one generated sequence, or an error message.

    ``tokens`` are the newly generated ids (generation stops at the first id in ``stop_ids``,
    padding after it is ignored). Indices are ``id - first_id`` for ids in
    ``[first_id, first_id + codebook_size)``.
    """
    stops = set(stop_ids)
    body: list[int] = []
    stopped = False
    for token in tokens:
        if token in stops:
            stopped = True
            break
        body.append(int(token))
    others = [t for t in body if not first_id <= t < first_id + codebook_size]
    indices = [t - first_id for t in body if first_id <= t < first_id + codebook_size]
    if others:
        return (f"image generation produced {len(others)} non-index token(s) among "
                f"{len(body)} (first: id {others[0]}); expected exactly {count} image indices")
    if len(indices) != count:
        how = "" if stopped else " before reaching the token limit"
        return (f"image generation produced {len(indices)} image indices{how}; expected exactly "
                f"{count}")
    return indices


class ImageTokenConstraint:
    """Logits processor: ``count`` steps of index tokens only, then ``<end_index>`` only.

    Used with ``generate(inputs_embeds=…)``, where ``input_ids`` holds only generated tokens,
    so the step number is its length.
    """

    def __init__(self, first_id: int, codebook_size: int, count: int, end_id: int,
                 vocab_size: int, device: torch.device) -> None:
        self.count = count
        self.index_mask = torch.ones(vocab_size, dtype=torch.bool, device=device)
        self.index_mask[first_id:first_id + codebook_size] = False   # True = forbidden
        self.end_mask = torch.ones(vocab_size, dtype=torch.bool, device=device)
        self.end_mask[end_id] = False

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        mask = self.index_mask if input_ids.shape[1] < self.count else self.end_mask
        return scores.masked_fill(mask[: scores.shape[-1]], float("-inf"))

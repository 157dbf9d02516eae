# ruff: noqa: C408  (config fields read best as keyword arguments)
"""Full-size HealthGPT shapes with random weights: for speed and memory measurements only.

``build.build_random`` uses these to make an M3-, L14- or XL32-shaped model without any
download: the base LLM and CLIP configs below are the published configs' shape fields
(Phi-3-mini-4k-instruct, Phi-4, Qwen2.5-32B-Instruct, CLIP ViT-L/14-336), and the tokenizer is a
synthetic word-level one whose length equals the real tokenizer's, so the VQ rows land at the
real ids and every matrix has its released shape (M3: vocabulary 40206, paper Table 6).

The tokenizer knows the chat tokens of all three templates and a small medical word list; any
other word is ``<unk>``. Token counts therefore differ from the real tokenizers (one token per
word or punctuation mark): workloads that need a prompt length should count tokens with it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: Chat and control tokens of the three templates (templates.py), as special tokens.
SPECIAL_TOKENS = ["<unk>", "<s>", "</s>", "<pad>", "<|endoftext|>", "<|system|>", "<|user|>",
                  "<|assistant|>", "<|end|>", "<|im_start|>", "<|im_sep|>", "<|im_end|>",
                  "<image>"]
_WORDS = ("you are a helpful ai assistant medieval knight and must provide explanations to "
          "modern people qwen created by alibaba cloud question options answer with the option "
          "letter from given choices directly which imaging modality was used acquire this image "
          "what part of body is shown in organ abnormality finding describe ct mri x ray "
          "ultrasound fundus photography microscopy dermoscopy oct chest head brain abdomen eye "
          "knee lung liver kidney heart spine pelvis bone fracture lesion mass nodule effusion "
          "normal abnormal left right upper lower benign malignant tumor cyst edema hemorrhage "
          "the an on of for is are no yes there any sign visible seen region scan slice view "
          "axial sagittal coronal contrast enhanced t1 t2 flair weighted tissue cell stain "
          "A B C D . , ? : ' s")
WORDS = tuple(_WORDS.split())


@dataclass(frozen=True)
class Shape:
    """Base-model shape of one released variant."""

    llm: dict[str, Any]            # config fields of the base LLM
    model_type: str                # phi3 | qwen2
    tokenizer_size: int            # len(tokenizer) of the real base tokenizer
    eos: str
    vision: dict[str, Any] | None = None  # CLIP config fields; None: CLIP ViT-L/14-336


CLIP_L14_336 = dict(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24,
                    num_attention_heads=16, image_size=336, patch_size=14, projection_dim=768,
                    hidden_act="quick_gelu", layer_norm_eps=1e-5)

SHAPES: dict[str, Shape] = {
    # microsoft/Phi-3-mini-4k-instruct config.json
    "m3": Shape(dict(vocab_size=32064, hidden_size=3072, intermediate_size=8192,
                     num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=32,
                     max_position_embeddings=4096, original_max_position_embeddings=4096,
                     rms_norm_eps=1e-5, rope_theta=10000.0, sliding_window=2047,
                     hidden_act="silu", tie_word_embeddings=False),
                "phi3", 32011, "<|endoftext|>"),
    # microsoft/phi-4 config.json (a Phi3ForCausalLM checkpoint)
    "l14": Shape(dict(vocab_size=100352, hidden_size=5120, intermediate_size=17920,
                      num_hidden_layers=40, num_attention_heads=40, num_key_value_heads=10,
                      max_position_embeddings=16384, original_max_position_embeddings=16384,
                      rms_norm_eps=1e-5, rope_theta=250000.0, sliding_window=None,
                      hidden_act="silu", tie_word_embeddings=False),
                 "phi3", 100352, "<|endoftext|>"),
    # Qwen/Qwen2.5-32B-Instruct config.json
    "xl32": Shape(dict(vocab_size=152064, hidden_size=5120, intermediate_size=27648,
                       num_hidden_layers=64, num_attention_heads=40, num_key_value_heads=8,
                       max_position_embeddings=32768, rms_norm_eps=1e-6, rope_theta=1000000.0,
                       hidden_act="silu", tie_word_embeddings=False, use_sliding_window=False),
                  "qwen2", 151665, "<|endoftext|>"),
    # Not a released shape: the M3 layout at CPU size (hidden 256, 4 layers, a 4-layer CLIP
    # of width 128 at 336/14, so 576 image tokens as in M3), for throughput.py --shape mid
    "mid": Shape(dict(vocab_size=2048, hidden_size=256, intermediate_size=768,
                      num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=4,
                      max_position_embeddings=4096, original_max_position_embeddings=4096,
                      rms_norm_eps=1e-5, rope_theta=10000.0, sliding_window=2047,
                      hidden_act="silu", tie_word_embeddings=False),
                 "phi3", 2048, "<|endoftext|>",
                 dict(hidden_size=128, intermediate_size=512, num_hidden_layers=4,
                      num_attention_heads=4, image_size=336, patch_size=14, projection_dim=128,
                      hidden_act="quick_gelu", layer_norm_eps=1e-5)),
}


def get_shape(name: str) -> Shape:
    try:
        return SHAPES[name]
    except KeyError:
        raise ValueError(f"no full-size shape for variant {name!r} (known: "
                         f"{', '.join(SHAPES)})") from None


def build_tokenizer(size: int, eos: str = "<|endoftext|>") -> Any:
    """A word-level tokenizer with exactly ``size`` tokens (specials, words, then fillers)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab: dict[str, int] = {}
    for token in [*SPECIAL_TOKENS, *WORDS]:
        vocab.setdefault(token, len(vocab))
    if size < len(vocab):
        raise ValueError(f"tokenizer size {size} is below the {len(vocab)} fixed tokens")
    for i in range(size - len(vocab)):
        vocab[f"<w{i}>"] = len(vocab)
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.add_special_tokens(SPECIAL_TOKENS)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", pad_token="<pad>",
                                   bos_token="<s>", eos_token=eos)
    assert len(fast) == size, (len(fast), size)
    return fast


def llm_config(name: str, tokenizer: Any, attn_implementation: str) -> Any:
    from transformers import Phi3Config, Qwen2Config

    shape = get_shape(name)
    cls = Phi3Config if shape.model_type == "phi3" else Qwen2Config
    config = cls(**shape.llm, pad_token_id=tokenizer.pad_token_id,
                 bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    config._attn_implementation = attn_implementation
    return config


def vision_config(attn_implementation: str, name: str | None = None) -> Any:
    """The CLIP config of shape ``name`` (default, and every released shape: ViT-L/14-336)."""
    from transformers import CLIPVisionConfig

    fields = (get_shape(name).vision if name else None) or CLIP_L14_336
    config = CLIPVisionConfig(**fields)
    config._attn_implementation = attn_implementation
    return config

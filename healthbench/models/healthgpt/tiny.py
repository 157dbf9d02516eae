"""The tiny configuration: the HealthGPT architecture at toy size, built offline from a seed.

Same layout as M3 (Phi-3 LLM with fused qkv/gate_up projections, CLIP 336/14 tower, mlp2x_gelu
projector, 8192 VQ tokens, f8 VQGAN giving 32×32 = 1024 indices and 256×256 images), with
widths small enough for CPU tests. The tokenizer is a byte-level BPE trained at start-up on a
fixed corpus, with the Phi-3 chat tokens as special tokens. The CLIP tower has 3 blocks so that
the comprehension layer (-2) and the generation layer (1) are different blocks.
"""
from __future__ import annotations

from typing import Any

from healthbench.models.healthgpt.vqgan import VQGANConfig

SPECIAL_TOKENS = ["<unk>", "<s>", "</s>", "<pad>", "<|endoftext|>", "<|system|>", "<|user|>",
                  "<|assistant|>", "<|end|>"]
CORPUS = [
    "You are a helpful AI assistant.",
    "Which imaging modality was used to acquire this image? CT MRI X-ray Ultrasound",
    "Which part of the body is shown in this image? Chest Head Brain Abdomen Eye Knee",
    "Answer with the option's letter from the given choices directly. A B C D",
    "Question: The answer is A. The answer is B. The answer is C. The answer is D.",
    "No acute cardiopulmonary process. Mild cardiomegaly. Small left pleural effusion.",
    "Reconstruct the image. Transform the MRI display into a CT image. yes no",
]
VISION_HIDDEN = 32
TINY_VQGAN = VQGANConfig(n_embed=8192, embed_dim=8, z_channels=16, resolution=256, ch=16,
                         ch_mult=(1, 1, 2, 4), num_res_blocks=1, attn_resolutions=(32,),
                         norm_groups=8)


def build_tokenizer() -> Any:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=420, special_tokens=SPECIAL_TOKENS,
                                  show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(CORPUS, trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", pad_token="<pad>",
                                   bos_token="<s>", eos_token="<|endoftext|>")


def build_llm(vocab_size: int, tokenizer: Any, attn_implementation: str) -> Any:
    from transformers import Phi3Config, Phi3ForCausalLM

    config = Phi3Config(vocab_size=vocab_size, hidden_size=64, intermediate_size=128,
                        num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                        max_position_embeddings=4096, tie_word_embeddings=False,
                        pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
                        eos_token_id=tokenizer.eos_token_id)
    config._attn_implementation = attn_implementation
    return Phi3ForCausalLM(config)


def build_vision(attn_implementation: str) -> tuple[Any, Any]:
    from transformers import CLIPVisionConfig, CLIPVisionModel

    from healthbench.models.healthgpt.vision import clip_processor

    config = CLIPVisionConfig(image_size=336, patch_size=14, hidden_size=VISION_HIDDEN,
                              intermediate_size=64, num_hidden_layers=3, num_attention_heads=2,
                              projection_dim=32)
    config._attn_implementation = attn_implementation
    return CLIPVisionModel(config), clip_processor()

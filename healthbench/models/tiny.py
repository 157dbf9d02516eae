"""``tiny``: a small transformers VLM (LLaVA layout: CLIP-ViT 336/14 + Phi-3) built offline.

It exists so that ``python run_eval.py`` with no arguments exercises the whole pipeline — image
processor, chat prompt, batched left-padded ``generate``, answer extraction — on CPU in about a
minute with nothing downloaded. Weights are random from a fixed seed and the tokenizer is a byte-
level BPE trained at start-up on a fixed medical corpus, so its answers are deterministic but
meaningless: accuracy is expected near chance and many answers unparsed.
"""
from __future__ import annotations

from typing import Any, Sequence

from healthbench.core.catalog import MODELS
from healthbench.models.base import Model, each_alone
from healthbench.core.types import Request, Response

SPECIALS = ["<unk>", "<pad>", "<s>", "</s>", "<image>", "<|user|>", "<|assistant|>", "<|end|>"]
CORPUS = [
    "Which imaging modality was used to acquire this image? CT MRI X-ray Ultrasound",
    "Which part of the body is shown in this image? Chest Head Brain Abdomen Eye",
    "Answer with the option's letter from the given choices directly. A B C D",
    "The answer is A. The answer is B. The answer is C. The answer is D.",
    "No acute cardiopulmonary process. Mild cardiomegaly. Small left pleural effusion.",
    "Fundus photography microscopy dermoscopy optical coherence tomography yes no",
]


def build_tokenizer(specials: Sequence[str] = tuple(SPECIALS), corpus: Sequence[str] = tuple(CORPUS),
                    eos: str = "<|end|>") -> Any:
    """A byte-level BPE tokenizer trained at start-up on a fixed corpus: deterministic, offline,
    left-padded. Tests build their tiny LLaVA/Qwen2-VL tokenizers with it too."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=list(specials),
                                  show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(list(corpus), trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", pad_token="<pad>",
                                   bos_token="<s>", eos_token=eos)
    fast.padding_side = "left"
    return fast


@MODELS.register("tiny")
class TinyVLM(Model):
    """Random-weight LLaVA(CLIP-336 + Phi-3) with ~0.3M parameters; deterministic per seed."""

    capabilities = frozenset({"text", "loglikelihood"})
    default_batch_size = 8

    def __init__(self, seed: int = 0, device: str = "cpu", hidden: int = 64,
                 batch_invariant: bool = True) -> None:
        import torch
        from transformers import (CLIPImageProcessor, CLIPVisionConfig, LlavaConfig,
                                  LlavaForConditionalGeneration, Phi3Config)

        self.device = device
        self.seed = seed
        self.batch_invariant = bool(batch_invariant)  # each request alone (base.each_alone)
        self.tokenizer = build_tokenizer()
        image_token = self.tokenizer.convert_tokens_to_ids("<image>")
        vision = CLIPVisionConfig(image_size=336, patch_size=14, hidden_size=32,
                                  intermediate_size=64, num_hidden_layers=2,
                                  num_attention_heads=2, projection_dim=32)
        text = Phi3Config(vocab_size=len(self.tokenizer), hidden_size=hidden,
                          intermediate_size=2 * hidden, num_hidden_layers=2,
                          num_attention_heads=4, num_key_value_heads=2,
                          max_position_embeddings=4096,
                          pad_token_id=self.tokenizer.pad_token_id,
                          bos_token_id=self.tokenizer.bos_token_id,
                          eos_token_id=self.tokenizer.eos_token_id)
        config = LlavaConfig(vision_config=vision, text_config=text,
                             image_token_index=image_token, vision_feature_layer=-2,
                             vision_feature_select_strategy="default")
        torch.manual_seed(seed)
        self.model = LlavaForConditionalGeneration(config).eval().to(device)
        self.processor = CLIPImageProcessor(size={"shortest_edge": 336},
                                            crop_size={"height": 336, "width": 336})
        self.image_tokens = (336 // 14) ** 2  # 576 patch features per image ("default" drops CLS)
        self.image_token = "<image>"

    def _prompt(self, request: Request) -> str:
        images = (self.image_token * self.image_tokens) * len(request.images)
        return f"<|user|>\n{images}{request.prompt}<|end|>\n<|assistant|>\n"

    def _inputs(self, requests: Sequence[Request], suffixes: Sequence[str] = ()) -> dict:
        texts = [self._prompt(r) + (suffixes[i] if suffixes else "")
                 for i, r in enumerate(requests)]
        batch = dict(self.tokenizer(texts, return_tensors="pt", padding=True))
        images = [img for r in requests for img in r.images]
        if images:
            batch["pixel_values"] = self.processor(images=images,
                                                   return_tensors="pt")["pixel_values"]
        return {k: v.to(self.device) for k, v in batch.items()}

    def generate(self, requests: Sequence[Request]) -> list[Response]:
        if self.batch_invariant and len(requests) > 1:
            return each_alone(self.generate, requests, self.seed)
        import torch

        max_new = max(r.generation.max_new_tokens for r in requests)
        inputs = self._inputs(requests)
        with torch.inference_mode():
            out = self.model.generate(**inputs, max_new_tokens=max_new, do_sample=False,
                                      pad_token_id=self.tokenizer.pad_token_id)
        new = out[:, inputs["input_ids"].shape[1]:]
        texts = self.tokenizer.batch_decode(new, skip_special_tokens=True)
        return [Response(text=t) for t in texts]

    def score_choices(self, requests: Sequence[Request]) -> list[Response]:
        """Mean log-probability of each choice's tokens after the prompt, all (request, choice)
        pairs of the batch in one forward pass (of one request's choices when
        ``batch_invariant``, so other requests never pad or reorder them)."""
        if self.batch_invariant and len(requests) > 1:
            return each_alone(self.score_choices, requests, self.seed)
        import torch

        flat = [r for r in requests for _ in r.choices]
        suffixes = [c for r in requests for c in r.choices]
        prompt_lens = [len(self.tokenizer(self._prompt(r))["input_ids"]) for r in flat]
        inputs = self._inputs(flat, suffixes=suffixes)
        with torch.inference_mode():
            logits = self.model(**inputs).logits.float()
        logp = torch.log_softmax(logits[:, :-1], dim=-1)
        ids = inputs["input_ids"][:, 1:]
        token_lp = logp.gather(-1, ids.unsqueeze(-1)).squeeze(-1)
        width = inputs["input_ids"].shape[1]
        scores = []
        for row, prompt_len in enumerate(prompt_lens):
            n_pad = int((inputs["attention_mask"][row] == 0).sum())
            start = n_pad + prompt_len - 1  # position predicting the first choice token
            lp = token_lp[row, start:width - 1]
            scores.append(float(lp.mean()) if lp.numel() else float("-inf"))
        out, at = [], 0
        for request in requests:
            out.append(Response(choice_scores=tuple(scores[at:at + len(request.choices)])))
            at += len(request.choices)
        return out

    def describe(self) -> dict[str, Any]:
        return {"kind": "tiny random-weight LLaVA (CLIP-336 + Phi-3)",
                "parameters": sum(p.numel() for p in self.model.parameters()),
                "batch_invariant": self.batch_invariant}

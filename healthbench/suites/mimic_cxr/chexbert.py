"""``chexbert``: the CheXbert report labeler (Smit et al. 2020) from a user-supplied checkpoint.

This is the labeler behind the published MIMIC-CXR 14-label F1 numbers (UniX, LLaVA-Rad: CheXbert
on both the generated and the reference findings). healthbench never downloads it. Supply:

* ``checkpoint``: ``chexbert.pth`` (e.g. ``StanfordAIMI/RRG_scorers/chexbert.pth``), a
  ``torch.save`` dict whose ``model_state_dict`` holds the weights of CheXbert's ``bert_labeler``
  wrapped in ``nn.DataParallel``: ``module.bert.*`` (a BERT encoder with pooler) and
  ``module.linear_heads.{0..13}.{weight,bias}`` (13 heads of 4 classes in
  ``CHEXBERT_HEAD_ORDER``, then "No Finding" with 2). Env: ``HEALTHBENCH_CHEXBERT``.
* ``tokenizer``: a folder holding the ``bert-base-uncased`` tokenizer (``vocab.txt``, as saved by
  ``save_pretrained``). Env: ``HEALTHBENCH_CHEXBERT_TOKENIZER``.

The BERT configuration is read from the checkpoint's tensor shapes (vocabulary, hidden size,
layers, intermediate size, positions); attention heads are ``hidden // 64`` (12 for BERT-base)
unless ``num_attention_heads`` is given. Text is cleaned as CheXbert does (strip, newlines to
spaces, runs of whitespace to one), tokenized with truncation to 512 tokens (``[:511] + [SEP]``),
and each head's arg-max class is the code: 0 blank, 1 positive, 2 negative, 3 uncertain ("No
Finding": 0 blank, 1 positive).
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Sequence

from healthbench.core.catalog import LABELERS
from healthbench.data.checkpoints import CheckpointRefusedError, load_weights
from healthbench.suites.mimic_cxr.labels import CHEXBERT_HEAD_ORDER, LabelerError

CHECKPOINT_ENV = "HEALTHBENCH_CHEXBERT"
TOKENIZER_ENV = "HEALTHBENCH_CHEXBERT_TOKENIZER"
MAX_TOKENS = 512
_IGNORED_KEYS = ("bert.embeddings.position_ids",)  # a buffer older transformers saved


def clean_report(text: str) -> str:
    """CheXbert's preprocessing: strip, newlines → spaces, whitespace runs → one space."""
    return re.sub(r"\s+", " ", text.strip().replace("\n", " ")).strip()


def _path(value: str | None, env: str, what: str) -> Path:
    raw = value or os.environ.get(env)
    if not raw:
        raise LabelerError(f"chexbert labeler: no {what} given; pass labeler_args "
                           f"{{{'checkpoint' if env == CHECKPOINT_ENV else 'tokenizer'}: PATH}} "
                           f"or set ${env}. healthbench never downloads it.")
    path = Path(raw).expanduser()
    if not path.exists():
        raise LabelerError(f"chexbert labeler: {what} not found at {path}")
    return path


def bert_config_from_state(state: dict[str, Any], num_attention_heads: int | None = None):
    """A ``BertConfig`` matching the shapes of a CheXbert state dict (``bert.*`` keys)."""
    from transformers import BertConfig

    try:
        vocab, hidden = state["bert.embeddings.word_embeddings.weight"].shape
        positions = state["bert.embeddings.position_embeddings.weight"].shape[0]
        type_vocab = state["bert.embeddings.token_type_embeddings.weight"].shape[0]
        intermediate = state["bert.encoder.layer.0.intermediate.dense.weight"].shape[0]
    except KeyError as exc:
        raise LabelerError(f"chexbert checkpoint lacks {exc.args[0]!r}: not a CheXbert "
                           "bert_labeler state dict") from None
    layers = len({k.split(".")[3] for k in state if k.startswith("bert.encoder.layer.")})
    heads = num_attention_heads or (hidden // 64 if hidden % 64 == 0 else 1)
    return BertConfig(vocab_size=vocab, hidden_size=hidden, num_hidden_layers=layers,
                      num_attention_heads=heads, intermediate_size=intermediate,
                      max_position_embeddings=positions, type_vocab_size=type_vocab)


def build_chexbert_module(config):
    """CheXbert's ``bert_labeler``: BERT, dropout, 13 four-class heads and one two-class head."""
    import torch.nn as nn
    from transformers import BertModel

    class BertLabeler(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bert = BertModel(config)
            self.dropout = nn.Dropout(0.1)
            hidden = config.hidden_size
            self.linear_heads = nn.ModuleList(
                [nn.Linear(hidden, 4) for _ in range(13)] + [nn.Linear(hidden, 2)])

        def forward(self, input_ids, attention_mask):
            cls = self.bert(input_ids, attention_mask=attention_mask)[0][:, 0, :]
            cls = self.dropout(cls)
            return [head(cls) for head in self.linear_heads]

    return BertLabeler()


class CheXbertLabeler:
    def __init__(self, checkpoint: str | None = None, tokenizer: str | None = None,
                 device: str | None = None, batch_size: int = 16,
                 num_attention_heads: int | None = None) -> None:
        import torch
        from transformers import BertTokenizer

        ckpt_path = _path(checkpoint, CHECKPOINT_ENV, "chexbert.pth checkpoint")
        tok_path = _path(tokenizer, TOKENIZER_ENV, "bert-base-uncased tokenizer folder")
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.batch_size = batch_size
        try:
            raw = load_weights(ckpt_path)
        except CheckpointRefusedError as exc:
            raise LabelerError(str(exc)) from exc
        state = raw.get("model_state_dict", raw) if isinstance(raw, dict) else None
        if not isinstance(state, dict):
            raise LabelerError(f"{ckpt_path}: expected a dict with 'model_state_dict'")
        state = {(k[len("module."):] if k.startswith("module.") else k): v
                 for k, v in state.items() if k.replace("module.", "", 1) not in _IGNORED_KEYS}
        self.model = build_chexbert_module(bert_config_from_state(state, num_attention_heads))
        missing, unexpected = self.model.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise LabelerError(f"{ckpt_path}: not a CheXbert checkpoint (missing keys: "
                               f"{missing[:5]}, unexpected keys: {unexpected[:5]})")
        self.model.to(self.device).eval()
        try:
            self.tokenizer = BertTokenizer.from_pretrained(str(tok_path), local_files_only=True)
        except Exception as exc:  # transformers raises OSError/ValueError variants
            raise LabelerError(f"{tok_path}: cannot load a BERT tokenizer ({exc})") from exc

    def head_codes(self, texts: Sequence[str]) -> list[list[int]]:
        """Arg-max class per head, in CHEXBERT_HEAD_ORDER, one list per text."""
        import torch

        out: list[list[int]] = []
        for start in range(0, len(texts), self.batch_size):
            chunk = [clean_report(t) for t in texts[start:start + self.batch_size]]
            enc = self.tokenizer(chunk, truncation=True, max_length=MAX_TOKENS, padding=True,
                                 return_tensors="pt")
            with torch.no_grad():
                logits = self.model(enc["input_ids"].to(self.device),
                                    enc["attention_mask"].to(self.device))
            codes = torch.stack([lg.argmax(dim=1) for lg in logits], dim=1).cpu().tolist()
            out.extend(codes)
        return out

    def label(self, texts: Sequence[str]) -> list[dict[str, int]]:
        from healthbench.suites.mimic_cxr.labels import CHEXPERT_LABELS

        rows = []
        for codes in self.head_codes(texts):
            by_name = dict(zip(CHEXBERT_HEAD_ORDER, (int(c) for c in codes)))
            rows.append({name: by_name[name] for name in CHEXPERT_LABELS})
        return rows


@LABELERS.register("chexbert")
def chexbert(**kwargs: Any) -> CheXbertLabeler:
    return CheXbertLabeler(**kwargs)

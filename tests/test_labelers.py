"""Labelers: the offline rule labeler on report sentences, and CheXbert's loading/label path."""
from __future__ import annotations

from pathlib import Path

import pytest

from healthbench.core import catalog
from healthbench.suites.mimic_cxr.labels import (BLANK, CHEXBERT_HEAD_ORDER, CHEXPERT_LABELS,
                                           NEGATIVE, POSITIVE, UNCERTAIN, LabelerError,
                                           get_labeler)
from healthbench.suites.mimic_cxr.rules_labeler import label_report

P, N, U = POSITIVE, NEGATIVE, UNCERTAIN

# (report text, the labels it must get; every other observation blank, No Finding included
#  unless listed)
KNOWN = [
    ("No pleural effusion or pneumothorax.",
     {"Pleural Effusion": N, "Pneumothorax": N, "No Finding": P}),
    ("Heart size is normal. The lungs are clear.", {"Cardiomegaly": N, "No Finding": P}),
    ("The cardiomediastinal silhouette is within normal limits.",
     {"Enlarged Cardiomediastinum": N, "No Finding": P}),
    ("There is no pneumothorax, but there is a small left pleural effusion.",
     {"Pneumothorax": N, "Pleural Effusion": P}),
    ("Moderate cardiomegaly with mild pulmonary edema.", {"Cardiomegaly": P, "Edema": P}),
    ("Possible small right pleural effusion.", {"Pleural Effusion": U}),
    ("Left basilar opacity may represent atelectasis or pneumonia.",
     {"Lung Opacity": U, "Atelectasis": U, "Pneumonia": U}),
    ("Pneumothorax cannot be excluded.", {"Pneumothorax": U}),
    ("Right lower lobe consolidation.", {"Consolidation": P}),
    ("A 2 cm nodule in the right upper lobe.", {"Lung Lesion": P}),
    ("Endotracheal tube terminates 4 cm above the carina.", {"Support Devices": P,
                                                              "No Finding": P}),
    ("The nasogastric tube has been removed.", {"Support Devices": N, "No Finding": P}),
    ("Acute fracture of the left seventh rib.", {"Fracture": P}),
    ("No change in the large right pleural effusion.", {"Pleural Effusion": P}),
    ("Pleural thickening at the left apex.", {"Pleural Other": P}),
    ("Widened mediastinum.", {"Enlarged Cardiomediastinum": P}),
    ("No evidence of pneumonia. Bibasilar atelectasis.",
     {"Pneumonia": N, "Atelectasis": P}),
    ("Pneumothorax is not seen.", {"Pneumothorax": N, "No Finding": P}),
    ("Interval resolution of the left pleural effusion.",
     {"Pleural Effusion": N, "No Finding": P}),
]


@pytest.mark.parametrize("text,expected", KNOWN, ids=[t for t, _ in KNOWN])
def test_rule_labeler_on_report_sentences_with_known_labels(text: str,
                                                            expected: dict[str, int]) -> None:
    labels = label_report(text)
    assert list(labels) == list(CHEXPERT_LABELS)
    assert {k: v for k, v in labels.items() if v != BLANK} == expected


def test_rule_labeler_aggregates_positive_over_uncertain_over_negative() -> None:
    labels = label_report("No effusion on the left. Possible small right effusion. "
                          "Small effusion at the base.")
    assert labels["Pleural Effusion"] == POSITIVE
    assert label_report("No effusion. Possible effusion.")["Pleural Effusion"] == UNCERTAIN


def test_empty_text_is_all_blank_not_no_finding() -> None:
    assert set(label_report("  ").values()) == {BLANK}


def test_rule_labeler_is_registered_and_batched() -> None:
    labeler = get_labeler("chexpert_rules")
    assert labeler is get_labeler("chexpert_rules")  # built once
    out = labeler.label(["Cardiomegaly.", ""])
    assert out[0]["Cardiomegaly"] == POSITIVE and set(out[1].values()) == {BLANK}
    assert {"chexpert_rules", "chexbert"} <= set(catalog.LABELERS.names())


# ------------------------------------------------------------------------------ CheXbert

WORDS = ["no", "pleural", "effusion", "pneumothorax", "heart", "size", "normal", "small",
         "left", "is", "the", "."]


def _tiny_chexbert(folder: Path):
    """A random BERT-tiny CheXbert saved like chexbert.pth, and a bert tokenizer folder.

    Head i (CheXbert order) is forced to class ``i % 4`` (No Finding head: class 1) through its
    bias, so the expected code of every observation is known whatever the text.
    """
    import torch
    from transformers import BertConfig, BertTokenizer

    from healthbench.suites.mimic_cxr.chexbert import build_chexbert_module

    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(WORDS) + 5, hidden_size=64, num_hidden_layers=2,
                        num_attention_heads=1, intermediate_size=128,
                        max_position_embeddings=512)
    module = build_chexbert_module(config)
    with torch.no_grad():
        for i, head in enumerate(module.linear_heads):
            head.weight.zero_()
            head.bias.zero_()
            head.bias[1 if i == 13 else i % 4] = 10.0
    state = {f"module.{k}": v for k, v in module.state_dict().items()}
    state["module.bert.embeddings.position_ids"] = torch.arange(512)[None]  # old-style buffer
    ckpt = folder / "chexbert.pth"
    torch.save({"model_state_dict": state, "epoch": 7}, ckpt)
    vocab = folder / "tokenizer"
    vocab.mkdir()
    (vocab / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
                                               + WORDS) + "\n")
    BertTokenizer(str(vocab / "vocab.txt")).save_pretrained(str(vocab))
    return ckpt, vocab, module


def test_chexbert_loads_a_checkpoint_and_maps_heads_to_labels_by_name(tmp_path: Path) -> None:
    ckpt, vocab, _ = _tiny_chexbert(tmp_path)
    labeler = get_labeler("chexbert", {"checkpoint": str(ckpt), "tokenizer": str(vocab),
                                       "device": "cpu"})
    rows = labeler.label(["No pleural effusion.", "", "the heart size is normal " * 200])
    expected_by_head = {name: (1 if name == "No Finding" else i % 4)
                        for i, name in enumerate(CHEXBERT_HEAD_ORDER)}
    for row in rows:  # long text truncated to 512 tokens, empty text still labelled
        assert list(row) == list(CHEXPERT_LABELS)
        assert row == {name: expected_by_head[name] for name in CHEXPERT_LABELS}
    assert rows[0]["Enlarged Cardiomediastinum"] == BLANK      # head 0 → class 0 (blank)
    assert rows[0]["Cardiomegaly"] == POSITIVE                 # head 1 → class 1
    assert rows[0]["Lung Opacity"] == NEGATIVE                 # head 2 → class 2
    assert rows[0]["Lung Lesion"] == UNCERTAIN                 # head 3 → class 3


def test_chexbert_codes_are_the_argmax_of_a_plain_forward_pass(tmp_path: Path) -> None:
    import torch
    from transformers import BertTokenizer

    ckpt, vocab, _ = _tiny_chexbert(tmp_path)
    # random heads this time: compare with the module's own forward pass
    torch.manual_seed(1)
    state = torch.load(ckpt, weights_only=True)["model_state_dict"]
    for key in list(state):
        if "linear_heads" in key:
            state[key] = torch.randn_like(state[key]) * 5
    torch.save({"model_state_dict": state}, ckpt)
    from healthbench.suites.mimic_cxr.chexbert import (CheXbertLabeler, bert_config_from_state,
                                               build_chexbert_module)

    labeler = CheXbertLabeler(checkpoint=str(ckpt), tokenizer=str(vocab), device="cpu")
    texts = ["No pleural effusion.", "Small left pneumothorax.\n\nHeart size is normal."]
    plain = {k[len("module."):]: v for k, v in state.items() if "position_ids" not in k}
    reference = build_chexbert_module(bert_config_from_state(plain, num_attention_heads=1))
    reference.load_state_dict(plain)
    reference.eval()
    tok = BertTokenizer.from_pretrained(str(vocab))
    for text, row in zip(texts, labeler.label(texts)):
        enc = tok(" ".join(text.split()), return_tensors="pt")
        with torch.no_grad():
            logits = reference(enc["input_ids"], enc["attention_mask"])
        expected = {name: int(lg.argmax()) for name, lg in zip(CHEXBERT_HEAD_ORDER, logits)}
        assert row == {name: expected[name] for name in CHEXPERT_LABELS}


def test_chexbert_without_a_checkpoint_says_what_to_supply(monkeypatch: pytest.MonkeyPatch,
                                                           tmp_path: Path) -> None:
    monkeypatch.delenv("HEALTHBENCH_CHEXBERT", raising=False)
    with pytest.raises(LabelerError, match="HEALTHBENCH_CHEXBERT"):
        catalog.LABELERS.get("chexbert")()
    with pytest.raises(LabelerError, match="not found"):
        catalog.LABELERS.get("chexbert")(checkpoint=str(tmp_path / "nope.pth"),
                                         tokenizer=str(tmp_path))


def test_chexbert_rejects_a_checkpoint_of_another_model(tmp_path: Path) -> None:
    import torch

    ckpt, vocab, _ = _tiny_chexbert(tmp_path)
    state = torch.load(ckpt, weights_only=True)["model_state_dict"]
    del state["module.linear_heads.13.bias"]
    torch.save({"model_state_dict": state}, ckpt)
    with pytest.raises(LabelerError, match="linear_heads.13.bias"):
        catalog.LABELERS.get("chexbert")(checkpoint=str(ckpt), tokenizer=str(vocab))

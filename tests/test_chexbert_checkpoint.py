"""chexbert.pth as released (StanfordAIMI/RRG_scorers): a torch 1.x zip archive (no byteorder,
format-version, alignment or serialization-id records), a ``model_state_dict`` saved from
``nn.DataParallel`` (``module.`` prefixes, an old ``position_ids`` buffer) beside ``epoch`` and
the optimizer's ``optimizer_state_dict``. It must load with ``weights_only=True`` (no arbitrary
unpickling) and label as the module it was saved from."""
from __future__ import annotations

import io
import zipfile
from pathlib import Path

from healthbench.suites.mimic_cxr.labels import CHEXBERT_HEAD_ORDER, CHEXPERT_LABELS

from test_labelers import _tiny_chexbert

NEW_RECORDS = (".format_version", ".storage_alignment", "byteorder", ".data/serialization_id")


def write_released_layout(path: Path, state: dict, module) -> None:
    """``torch.save`` of the released dict, rewritten as a torch 1.x zip archive."""
    import torch

    optimizer = torch.optim.Adam(module.parameters(), lr=2e-5)
    module(torch.tensor([[2, 5, 3]]), torch.ones(1, 3))[0].sum().backward()
    optimizer.step()
    optim_state = optimizer.state_dict()
    for slot in optim_state["state"].values():  # torch 1.x kept the step count as an int
        slot["step"] = int(slot["step"])
    buffer = io.BytesIO()
    torch.save({"epoch": 3, "model_state_dict": state, "optimizer_state_dict": optim_state},
               buffer, pickle_protocol=2)
    with zipfile.ZipFile(io.BytesIO(buffer.getvalue())) as new, \
            zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as old:
        for info in new.infolist():
            inner = info.filename.split("/", 1)[1]
            if inner not in NEW_RECORDS:
                old.writestr(f"chexbert/{inner}", new.read(info.filename))


def test_released_chexbert_checkpoint_loads_with_weights_only(tmp_path: Path) -> None:
    import torch

    from healthbench.suites.mimic_cxr.chexbert import CheXbertLabeler

    ckpt, vocab, module = _tiny_chexbert(tmp_path)
    state = torch.load(ckpt, weights_only=True)["model_state_dict"]
    assert all(key.startswith("module.") for key in state)
    released = tmp_path / "released" / "chexbert.pth"
    released.parent.mkdir()
    write_released_layout(released, state, module)
    with zipfile.ZipFile(released) as archive:
        names = archive.namelist()
    assert "chexbert/data.pkl" in names and "chexbert/version" in names
    assert not any(name.endswith(record) for name in names for record in NEW_RECORDS)

    raw = torch.load(released, map_location="cpu", weights_only=True)
    assert raw["epoch"] == 3 and raw["optimizer_state_dict"]["param_groups"][0]["lr"] == 2e-5
    labeler = CheXbertLabeler(checkpoint=str(released), tokenizer=str(vocab), device="cpu")
    expected_by_head = {name: (1 if name == "No Finding" else i % 4)
                        for i, name in enumerate(CHEXBERT_HEAD_ORDER)}
    assert labeler.label(["No pleural effusion."])[0] == {name: expected_by_head[name]
                                                          for name in CHEXPERT_LABELS}
    loaded = labeler.model.state_dict()
    for key, tensor in state.items():  # the weights saved, not the optimizer-stepped module's
        if "position_ids" not in key:
            assert torch.equal(loaded[key[len("module."):]], tensor), key

"""Small builders for tests: OmniMedVQA-format fixtures written in plain sight."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image


def write_png(path: Path, seed: int = 0, size: tuple[int, int] = (48, 40)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(path)


def omnimed_item(image: str, answer: str = "CT", modality: str = "CT(Computed Tomography)",
                 qtype: str = "Modality Recognition", options: tuple[str, ...] = ("CT", "MRI"),
                 question: str = "Which modality?") -> dict[str, Any]:
    item: dict[str, Any] = {"question": question, "gt_answer": answer, "image_path": image,
                            "modality_type": modality, "question_type": qtype}
    for letter, text in zip("ABCD", options):
        item[f"option_{letter}"] = text
    return item


def write_omnimed(root: Path, items: list[dict[str, Any]], name: str = "Toy",
                  images: bool = True) -> Path:
    """``root/OmniMedVQA`` with one QA file; each referenced image written unless ``images``
    is False."""
    base = root / "OmniMedVQA"
    qa = base / "QA_information" / "Open-access"
    qa.mkdir(parents=True, exist_ok=True)
    (qa / f"{name}.json").write_text(json.dumps(items))
    if images:
        for i, item in enumerate(items):
            write_png(base / item["image_path"], seed=i)
    return base


def task_yaml(name: str = "toy", path: str = "OmniMedVQA", extra: str = "") -> str:
    return f"""task: {name}
version: "1"
dataset: {{format: omnimedvqa, path: {path}, options: {{access: [Open-access]}}}}
output: text
prompt: "{{question}}\\n{{options}}"
extract: {{name: choice_letter}}
metrics: [{{name: accuracy}}, {{name: parse_failure}}]
group_by: [modality]
{extra}"""

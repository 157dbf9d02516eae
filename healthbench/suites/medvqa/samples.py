"""Bundled samples of VQA-RAD, SLAKE, PathVQA and PMC-VQA, written in each published layout.

The images are the real ones of ``data.bundled`` (shipped in PyPI packages); every question is
about what the image's own metadata or its package's documentation states — its modality, the
body part, the staining of the pathology slide — so its answer is known. Each builder writes into
the task's dataset folder (a staging copy, renamed into place by ``data.prepare``).
"""
from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from healthbench.core.catalog import SAMPLE_BUILDERS
from healthbench.suites.medvqa.loader import VQA_RAD_IMAGES, VQA_RAD_JSON

_MODALITY_WORD = {"CT": "ct", "MR": "mri", "X-Ray": "x-ray", "US": "ultrasound",
                  "Fundus": "fundus photography", "Microscopy": "microscopy"}
_RADIOLOGY = ("CT", "MR", "X-Ray", "US")


def _images() -> dict[str, Any]:
    from healthbench.data.bundled import BUNDLED_IMAGES

    return {image.key: image for image in BUNDLED_IMAGES}


def _write_json(path: Path, rows: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(rows, indent=1, ensure_ascii=False), encoding="utf-8")
    tmp.replace(path)


# --- VQA-RAD (OSF release layout) -----------------------------------------------------------------

_VQA_RAD_KEYS = ("ct_head", "ct_small", "mr_shoulder", "mr_brain_mni152", "cr_chest",
                 "cr_extremity", "us_lymph_node")
_ORGAN = {"Head": "HEAD", "Brain": "HEAD", "Chest": "CHEST", "Abdomen": "ABD"}


@SAMPLE_BUILDERS.register("vqa_rad_sample")
def build_vqa_rad_sample(root: Path) -> None:
    """``VQA_RAD Dataset Public.json`` + ``VQA_RAD Image Folder/``: per image a yes/no modality
    question (alternately true and false), an open modality question, and an open body-part
    question where the body part is known; two training rows show the split filter."""
    from healthbench.data.bundled import save_png

    images = _images()
    rows: list[dict[str, Any]] = []

    def add(key: str, question: str, answer: str, qtype: str, phrase: str = "test_freeform",
            answer_type: str = "CLOSED") -> None:
        image = images[key]
        rows.append({"qid": len(rows) + 1, "image_name": f"{key}.png",
                     "image_case_url": image.source, "answer": answer,
                     "answer_type": answer_type,
                     "image_organ": _ORGAN.get(image.body_part or "", "UNKNOWN"),
                     "question_type": qtype, "question": question, "phrase_type": phrase,
                     "evaluation": "given", "question_rephrase": "NULL", "qid_linked_id": ""})

    for n, key in enumerate(_VQA_RAD_KEYS):
        image = images[key]
        save_png(image, root / VQA_RAD_IMAGES / f"{key}.png")
        asked = image.modality if n % 2 == 0 else _RADIOLOGY[(_RADIOLOGY.index(image.modality)
                                                              + 1) % len(_RADIOLOGY)]
        add(key, f"Is this image taken with {_MODALITY_WORD[asked]}?",
            "yes" if asked == image.modality else "no", "MODALITY")
        add(key, "What imaging modality is used?", _MODALITY_WORD[image.modality], "MODALITY",
            answer_type="OPEN")
        if image.body_part:
            add(key, "What part of the body is imaged?", image.body_part.lower(), "ORGAN",
                phrase="test_para" if n % 2 else "test_freeform", answer_type="OPEN")
    add("cr_chest", "Is this a radiograph?", "yes", "MODALITY", phrase="freeform")
    add("ct_head", "Is this a CT scan?", "yes", "MODALITY", phrase="para")
    _write_json(root / VQA_RAD_JSON, rows)


# --- SLAKE (Slake1.0 layout) ----------------------------------------------------------------------

_SLAKE_KEYS = ("ct_head", "mr_shoulder", "mr_abdomen", "mr_brain_mni152", "cr_chest",
               "cr_extremity")
_SLAKE_MODALITY = {"CT": "CT", "MR": "MRI", "X-Ray": "X-Ray"}


@SAMPLE_BUILDERS.register("slake_sample")
def build_slake_sample(root: Path) -> None:
    """``Slake1.0/test.json`` + ``imgs/xmlab<N>/source.png``: per image an open modality
    question, a closed yes/no question and an open body-part question, and for every other image
    a closed two-way modality question (closed but not yes/no, as SLAKE has); plus two Chinese
    questions, which the default English-only selection leaves out."""
    from healthbench.data.bundled import save_png

    images = _images()
    rows: list[dict[str, Any]] = []

    def add(img_id: int, key: str, question: str, answer: str, answer_type: str,
            content: str, lang: str = "en") -> None:
        image = images[key]
        rows.append({"img_id": img_id, "img_name": f"xmlab{img_id}/source.png",
                     "question": question, "answer": answer, "q_lang": lang,
                     "location": image.body_part or "Unknown",
                     "modality": _SLAKE_MODALITY[image.modality], "answer_type": answer_type,
                     "base_type": "vqa", "content_type": content,
                     "triple": ["vhead", "_", "_"], "qid": 9000 + len(rows)})

    for n, key in enumerate(_SLAKE_KEYS):
        image, img_id = images[key], 900 + n
        save_png(image, root / "imgs" / f"xmlab{img_id}" / "source.png")
        modality = _SLAKE_MODALITY[image.modality]
        other = "MRI" if modality == "CT" else "CT"
        pair = (modality, other) if n % 4 == 0 else (other, modality)
        add(img_id, key, "What modality is used to take this image?", modality, "OPEN",
            "Modality")
        if n % 2 == 0:
            add(img_id, key, f"Is this image taken via {pair[0]} or {pair[1]}?", modality,
                "CLOSED", "Modality")
        asked = modality if n % 2 else other
        add(img_id, key, f"Is this a {asked} image?", "Yes" if asked == modality else "No",
            "CLOSED", "Modality")
        if image.body_part:
            add(img_id, key, "Which part of the body does this image belong to?",
                image.body_part, "OPEN", "Position")
    add(900, "ct_head", "这张图片的成像方式是什么?", "CT", "OPEN", "Modality", lang="zh")
    add(905, "cr_chest", "这是CT图像吗?", "否", "CLOSED", "Modality", lang="zh")
    _write_json(root / "test.json", rows)


# --- PathVQA (Hub parquet layout) ----------------------------------------------------------------

# What scikit-image documents for its ``immunohistochemistry`` image: colonic glands, FHL2
# protein revealed with DAB, hematoxylin counterstain.
_IHC = "microscopy_ihc"
_PATHVQA_ITEMS = (
    (_IHC, "is this a microscopy image?", "yes"),
    (_IHC, "does this image show colonic glands?", "yes"),
    (_IHC, "is this section counterstained with hematoxylin?", "yes"),
    (_IHC, "is this a radiograph?", "no"),
    (_IHC, "which stain is used as the counterstain?", "hematoxylin"),
    (_IHC, "what organ are the glands in this image from?", "colon"),
    (_IHC, "which chromogen reveals the protein in this image?", "dab"),
    ("ct_head", "is this a microscopy image?", "no"),
    ("cr_chest", "is this a microscopy image?", "no"),
    ("fundus_retina", "is this a microscopy image?", "no"),
    ("us_lymph_node", "is this a microscopy image?", "no"),
    ("ct_head", "what imaging modality is used?", "ct"),
)


@SAMPLE_BUILDERS.register("pathvqa_sample")
def build_pathvqa_sample(root: Path) -> None:
    """``data/test-00000-of-00001.parquet`` (image struct, question, answer), as the
    flaviagiammarino/path-vqa repo stores it: questions about scikit-image's documented
    immunohistochemistry slide, and yes/no controls on non-pathology images."""
    import pyarrow as pa

    from healthbench.data.hf_files import (
        bundled_png_bytes,
        image_struct_type,
        write_shard,
    )

    png = dict(bundled_png_bytes(sorted({key for key, _, _ in _PATHVQA_ITEMS})))
    rows = [{"image": {"bytes": png[key], "path": None}, "question": q, "answer": a}
            for key, q, a in _PATHVQA_ITEMS]
    schema = pa.schema([pa.field("image", image_struct_type()),
                        pa.field("question", pa.string()), pa.field("answer", pa.string())])
    write_shard(root / "data" / "test-00000-of-00001.parquet", rows, schema)


# --- PMC-VQA (test_2.csv layout) ----------------------------------------------------------------

_PMC_MODALITY = {"CT": "Computed tomography", "MR": "Magnetic resonance imaging",
                 "X-Ray": "Radiograph", "US": "Ultrasound", "Fundus": "Fundus photograph",
                 "Microscopy": "Immunohistochemistry micrograph"}
_PMC_BODY = ("Chest", "Head", "Shoulder", "Abdomen", "Lower limb", "Brain", "Eye", "Lymph node")
PMC_COLUMNS = ("index", "Figure_path", "Caption", "Question", "Choice A", "Choice B",
               "Choice C", "Choice D", "Answer", "split")


@SAMPLE_BUILDERS.register("pmc_vqa_sample")
def build_pmc_vqa_sample(root: Path) -> None:
    """``test_2.csv`` + ``figures/``: a modality question for every bundled image and a
    body-part question for five of them, four "X:text" choices each, the answer as a letter."""
    from healthbench.data.bundled import save_png
    from healthbench.suites.omnimedvqa.loader import rotate_options

    rows: list[dict[str, Any]] = []

    def add(name: str, caption: str, question: str, correct: str, pool: list[str]) -> None:
        options = rotate_options(correct, pool, 4, len(rows))
        row = {"index": len(rows), "Figure_path": name, "Caption": caption,
               "Question": question, "Answer": "ABCD"[options.index(correct)], "split": "test"}
        row.update({f"Choice {L}": f"{L}:{text}" for L, text in zip("ABCD", options)})
        rows.append(row)

    with_body = 0
    for image in _images().values():
        name = f"{image.key}.png"
        save_png(image, root / "figures" / name)
        caption = f"Image from {image.source}."
        add(name, caption, "What imaging technique was used to obtain this figure?",
            _PMC_MODALITY[image.modality], list(_PMC_MODALITY.values()))
        if image.body_part and with_body < 5:
            with_body += 1
            add(name, caption, "Which part of the body is shown in this figure?",
                image.body_part, list(_PMC_BODY))
    path = root / "test_2.csv"
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=PMC_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    tmp.replace(path)

"""MMMU, Health & Medicine discipline, from the Hub's parquet files (``MMMU/MMMU``).

Layout (the ``MMMU/MMMU`` dataset repo as downloaded, one folder per subject)::

    MMMU/
      Basic_Medical_Science/dev-00000-of-00001.parquet
      Basic_Medical_Science/validation-00000-of-00001.parquet
      Basic_Medical_Science/test-00000-of-00001.parquet
      Clinical_Medicine/…  Diagnostics_and_Laboratory_Medicine/…  Pharmacy/…  Public_Health/…

Columns: ``id`` (e.g. ``validation_Pharmacy_3``, kept as the sample id), ``question`` (with
``<image k>`` placeholders), ``options`` (a Python list *repr* in a string), ``answer`` (a letter
for multiple-choice questions, text for open ones, either possibly a list repr), ``image_1`` …
``image_7`` (``{bytes, path}`` structs or null), ``question_type`` (``multiple-choice`` | ``open``),
``subfield``, ``topic_difficulty``, ``img_type``, ``explanation``.

Every image a question or option refers to is passed to the model, in order of first mention
(the official LLaVA script passes only ``image_1``; multi-image models get them all). The test
split's answers are hidden (scored on the EvalAI server only), so it is refused here.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any, Iterable

from healthbench.core.catalog import LOADERS, PROMPT_BUILDERS, SAMPLE_BUILDERS
from healthbench.data.options import Option, declare_options
from healthbench.data.paths import (DatasetMissingError, LoadedDataset, declare_files,
                                    require_dir)
from healthbench.data.hf_files import (
    ParquetError,
    image_from_cell,
    read_rows,
    split_shards,
)
from healthbench.suites.mmmu.metrics import MULTIPLE_CHOICE, OPEN
from healthbench.core.types import ImageSource, Sample, SampleError

#: The Health & Medicine subjects, in the official ``CAT_SHORT2LONG`` order (also the order in
#: which the official scorer meets them, which its random fallback depends on).
HEALTH_SUBJECTS = ("Basic_Medical_Science", "Clinical_Medicine",
                   "Diagnostics_and_Laboratory_Medicine", "Pharmacy", "Public_Health")
SPLITS = ("dev", "validation")
MAX_IMAGES = 7
REQUIRED_COLUMNS = ("id", "question", "options", "answer", "question_type",
                    *(f"image_{k}" for k in range(1, MAX_IMAGES + 1)))
_IMAGE_REF = re.compile(r"<image (\d+)>")

MC_INSTRUCTION = "Answer with the option's letter from the given choices directly."
OPEN_INSTRUCTION = "Answer the question using a single word or phrase."


def _expected(subjects: Iterable[str], splits: Iterable[str]) -> str:
    return ("the MMMU/MMMU dataset repo files: " + ", ".join(
        f"MMMU/{s}/{sp}-*.parquet" for s in subjects for sp in splits))


def _mmmu_shards(root: Path, subjects: Iterable[str],
                 splits: Iterable[str]) -> list[tuple[str, str, list[Path]]]:
    """(split, subject, its shards) in the official evaluation order (split, then subject)."""
    subjects, splits = list(subjects), list(splits)
    if "test" in splits:
        raise ValueError("MMMU test answers are hidden: the test split is scored only by the "
                         "EvalAI server. Use 'validation' (or 'dev').")
    unknown = [s for s in splits if s not in SPLITS]
    if unknown:
        raise ValueError(f"MMMU: unknown split(s) {unknown}; available: {', '.join(SPLITS)}")
    require_dir(root, "MMMU", _expected(subjects, splits))
    found = []
    for split in splits:
        for subject in subjects:
            shards = split_shards(root / subject, split)
            if not shards:
                raise DatasetMissingError(
                    f"MMMU subject {subject!r}, split {split!r}: no {split}-*.parquet under "
                    f"{root / subject}. Expected {_expected(subjects, splits)}, as downloaded "
                    "from the MMMU/MMMU dataset repo; healthbench never downloads data.")
            found.append((split, subject, shards))
    return found


def list_mmmu(root: Path, subjects: Iterable[str] = HEALTH_SUBJECTS,
              splits: Iterable[str] = ("validation",)) -> list[Path]:
    """The shards ``load_mmmu`` reads (its ``files``), without reading them."""
    return [shard for _, _, shards in _mmmu_shards(root, subjects, splits) for shard in shards]


@LOADERS.register("mmmu")
@declare_options(subjects=Option((list,), items=(str,)),
                 splits=Option((list,), items=(str,), choices=SPLITS))
@declare_files(list_mmmu)
def load_mmmu(root: Path, subjects: Iterable[str] = HEALTH_SUBJECTS,
              splits: Iterable[str] = ("validation",)) -> LoadedDataset:
    """Every question of the given subjects and splits; malformed rows become SampleErrors.

    ``meta["order"]`` is the position in the official evaluation order (split, then subject in
    ``CAT_SHORT2LONG`` order, then row), the order the official scorer walks (kept for readers:
    healthbench's fallback letter depends on the sample alone, ``metrics.official_fallback``).
    """
    dataset = LoadedDataset()
    order = 0
    for split, subject, shards in _mmmu_shards(root, subjects, splits):
        row_index = 0
        for shard in shards:
            dataset.files.append(shard)
            try:
                rows = read_rows(shard, REQUIRED_COLUMNS)
            except ParquetError as exc:
                dataset.items.append(SampleError(f"{split}_{subject}/{shard.name}/*",
                                                 str(shard), str(exc)))
                continue
            for row in rows:
                dataset.items.append(_parse_row(row, shard, row_index, subject, split, order))
                row_index += 1
                order += 1
    return dataset


def _literal(text: str, what: str) -> Any:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError) as exc:
        raise ValueError(f"{what} {text!r} is not a Python literal ({type(exc).__name__})") \
            from None


def _parse_row(row: dict[str, Any], shard: Path, index: int, subject: str, split: str,
               order: int) -> Sample | SampleError:
    raw_id = row.get("id")
    sample_id = raw_id if isinstance(raw_id, str) and raw_id else f"{split}_{subject}_row{index}"
    where = f"{shard} row {index} (id {raw_id!r})"
    meta: dict[str, Any] = {"subject": subject, "split": split,
                            "question_type": row.get("question_type"),
                            "subfield": row.get("subfield"),
                            "topic_difficulty": row.get("topic_difficulty"),
                            "img_type": row.get("img_type"), "order": order}
    try:
        if sample_id != raw_id:
            raise ValueError("missing or empty 'id'")
        question, qtype = row.get("question"), row.get("question_type")
        if not isinstance(question, str) or not question.strip():
            raise ValueError("missing or empty 'question'")
        if qtype not in (MULTIPLE_CHOICE, OPEN):
            raise ValueError(f"question_type {qtype!r} is neither {MULTIPLE_CHOICE!r} nor "
                             f"{OPEN!r}")
        option_list = _literal(str(row.get("options")), "options")
        if not isinstance(option_list, list) or not all(isinstance(o, str) for o in option_list):
            raise ValueError(f"options {row.get('options')!r} is not a list of strings")
        options = {chr(ord("A") + i): text for i, text in enumerate(option_list)}
        target = _target(row.get("answer"), qtype, options)
        images = _images(row, question, option_list)
    except ValueError as exc:
        return SampleError(sample_id, where, str(exc), meta)
    return Sample(id=sample_id, question=question, images=images, options=options,
                  target=target, meta={**meta, "n_options": len(options),
                                       "n_images": len(images)})


def _target(answer: Any, qtype: str, options: dict[str, str]) -> str | list[str]:
    if not isinstance(answer, str) or not answer.strip():
        raise ValueError(f"missing or empty 'answer' ({answer!r})")
    value: Any = answer
    if answer.lstrip().startswith("["):
        value = _literal(answer, "answer")
        if not isinstance(value, list) or not value or \
                not all(isinstance(v, (str, int, float)) for v in value):
            raise ValueError(f"answer {answer!r} is not a list of answers")
        value = [str(v) for v in value]
    if qtype == OPEN:
        return value
    if not options:
        raise ValueError("a multiple-choice question without options")
    letters = value if isinstance(value, list) else [value]
    bad = [v for v in letters if v not in options]
    if bad:
        raise ValueError(f"answer {answer!r} is not an option letter (options: "
                         f"{', '.join(options)})")
    return value


def _images(row: dict[str, Any], question: str, options: list[str]) -> tuple[ImageSource, ...]:
    mentioned: list[int] = []
    for text in [question, *options]:
        for k in (int(m) for m in _IMAGE_REF.findall(text)):
            if k not in mentioned:
                mentioned.append(k)
    for k in mentioned:
        if not 1 <= k <= MAX_IMAGES or row.get(f"image_{k}") is None:
            raise ValueError(f"the question refers to <image {k}> but image_{k} is empty")
    unmentioned = [k for k in range(1, MAX_IMAGES + 1)
                   if k not in mentioned and row.get(f"image_{k}") is not None]
    out = []
    for k in mentioned + unmentioned:
        try:
            out.append(image_from_cell(row[f"image_{k}"], label=f"<image {k}>"))
        except ValueError as exc:
            raise ValueError(f"image_{k}: {exc}") from None
    return tuple(out)


@PROMPT_BUILDERS.register("mmmu")
def mmmu_prompt(sample: Sample) -> str:
    """The official prompt (``configs/llava1.5.yaml`` + ``construct_prompt``), ``<image k>``
    placeholders left in the text as the official script leaves them."""
    if sample.meta.get("question_type") == OPEN:
        return f"{sample.question}\n{OPEN_INSTRUCTION}"
    lines = "".join(f"({letter}) {text}\n" for letter, text in sample.options.items())
    return f"{sample.question}\n{lines}\n{MC_INSTRUCTION}"


# ---------------------------------------------------------------------------------------------
# The bundled sample: real images from PyPI packages, written as the Hub's parquet files.

_MODALITY_TEXT = {"CT": "Computed tomography", "MR": "Magnetic resonance imaging",
                  "X-Ray": "Plain radiography", "US": "Ultrasonography",
                  "Fundus": "Fundus photography", "Microscopy": "Light microscopy"}
_MODALITY_SHORT = {"CT": "CT", "MR": "MRI", "X-Ray": "X-ray", "US": "Ultrasound",
                   "Fundus": "Fundus photography", "Microscopy": "Microscopy"}
_BODY_PARTS = ("Chest", "Head", "Shoulder", "Abdomen", "Lower limb", "Brain", "Eye",
               "Lymph node")
_MC_MODALITY = ("ct_head", "mr_shoulder", "cr_chest", "us_lymph_node", "fundus_retina",
                "microscopy_ihc", "mr_brain_mni152")
_MC_ANATOMY = ("mr_abdomen", "cr_extremity", "ct_head", "fundus_microaneurysms")
_OPEN_MODALITY = ("ct_small", "mr_small", "us_unc")


def _sample_questions() -> list[dict[str, Any]]:
    """(question, options, answer, image keys, question_type) for each sample item."""
    from healthbench.data.bundled import BUNDLED_IMAGES
    from healthbench.suites.omnimedvqa.loader import rotate_options

    info = {image.key: image for image in BUNDLED_IMAGES}
    pool = list(_MODALITY_TEXT.values())
    items: list[dict[str, Any]] = []
    for n, key in enumerate(_MC_MODALITY):
        correct = _MODALITY_TEXT[info[key].modality]
        options = rotate_options(correct, pool, 4, n)
        items.append({"question": "<image 1> Which imaging technique produced this image?",
                      "options": options, "answer": "ABCD"[options.index(correct)],
                      "images": [key], "type": MULTIPLE_CHOICE, "subfield": "Medical imaging"})
    for n, key in enumerate(_MC_ANATOMY):
        correct = info[key].body_part
        assert correct is not None
        options = rotate_options(correct, list(_BODY_PARTS), 4, n + 2)
        items.append({"question": "Which part of the body is shown in <image 1>?",
                      "options": options, "answer": "ABCD"[options.index(correct)],
                      "images": [key], "type": MULTIPLE_CHOICE, "subfield": "Anatomy"})
    for key in _OPEN_MODALITY:
        items.append({"question": "<image 1> Name the imaging modality of this image.",
                      "options": [], "answer": _MODALITY_SHORT[info[key].modality],
                      "images": [key], "type": OPEN, "subfield": "Medical imaging"})
    items.append({"question": "Which of the following images was acquired with magnetic "
                              "resonance imaging?",
                  "options": ["<image 1>", "<image 2>", "<image 3>"], "answer": "B",
                  "images": ["cr_chest", "mr_abdomen", "ct_small"], "type": MULTIPLE_CHOICE,
                  "subfield": "Medical imaging"})
    items.append({"question": "<image 1> and <image 2> were taken with the same technique. "
                              "Which one?",
                  "options": ["Ultrasonography", "Fundus photography", "Plain radiography",
                              "Light microscopy"], "answer": "B",
                  "images": ["fundus_retina", "fundus_microaneurysms"],
                  "type": MULTIPLE_CHOICE, "subfield": "Ophthalmology"})
    return items


def _sample_schema() -> Any:
    import pyarrow as pa

    from healthbench.data.hf_files import image_struct_type

    fields = [pa.field(name, pa.string()) for name in ("id", "question", "options",
                                                       "explanation")]
    fields += [pa.field(f"image_{k}", image_struct_type()) for k in range(1, MAX_IMAGES + 1)]
    fields += [pa.field(name, pa.string()) for name in ("img_type", "answer", "topic_difficulty",
                                                        "question_type", "subfield")]
    return pa.schema(fields)


@SAMPLE_BUILDERS.register("mmmu_med_sample")
def build_mmmu_med_sample(root: Path) -> None:
    """Write a 16-question MMMU-format validation split over the five Health & Medicine
    subjects: modality and anatomy questions (multiple choice and open) about real images whose
    answers their metadata gives, two of them with several images."""
    from healthbench.data.hf_files import bundled_png_bytes, write_shard

    items = _sample_questions()
    keys = sorted({k for item in items for k in item["images"]})
    png = dict(bundled_png_bytes(keys))
    per_subject: dict[str, list[dict[str, Any]]] = {s: [] for s in HEALTH_SUBJECTS}
    for n, item in enumerate(items):
        subject = HEALTH_SUBJECTS[n % len(HEALTH_SUBJECTS)]
        rows = per_subject[subject]
        row: dict[str, Any] = {
            "id": f"validation_{subject}_{len(rows) + 1}", "question": item["question"],
            "options": repr(item["options"]), "explanation": "",
            "img_type": "['Medical Images']", "answer": item["answer"],
            "topic_difficulty": "Easy", "question_type": item["type"],
            "subfield": item["subfield"]}
        for k in range(1, MAX_IMAGES + 1):
            key = item["images"][k - 1] if k <= len(item["images"]) else None
            row[f"image_{k}"] = None if key is None else {"bytes": png[key],
                                                          "path": f"{key}.png"}
        rows.append(row)
    schema = _sample_schema()
    for subject, rows in per_subject.items():
        write_shard(root / subject / "validation-00000-of-00001.parquet", rows, schema)

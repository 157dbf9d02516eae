"""OmniMedVQA (arXiv 2402.09181) in its official layout, and the bundled sample built in it.

Layout (as unzipped)::

    OmniMedVQA/
      Images/<source dataset>/...                 # image_path is relative to OmniMedVQA/
      QA_information/Open-access/<dataset>.json   # a JSON list of QA items
      QA_information/Restricted-access/<dataset>.json

Item fields: ``question``, ``gt_answer`` (the option *text*), ``image_path``, ``option_A`` …
``option_D`` (2–4 options), ``modality_type`` (one file uses ``modality`` instead),
``question_type``. There are no ids: a sample's id is ``<access>/<file stem>/<position>``.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable

from healthbench.core.catalog import LOADERS, SAMPLE_BUILDERS
from healthbench.data.options import Option, declare_options
from healthbench.data.paths import (
    LoadedDataset,
    UnsafePathError,
    declare_files,
    loads_json,
    require_dir,
    resolve_inside,
)
from healthbench.core.types import ImageSource, Sample, SampleError

LETTERS = ("A", "B", "C", "D")
ACCESS_LEVELS = ("Open-access", "Restricted-access")

#: Raw ``modality_type`` strings → canonical names: the 8 of the published per-modality tables
#: (all Open-access) plus the 4 other modalities of the benchmark (Restricted-access only).
#: A mapping table, not string matching: an unknown string is an error row, never a guess.
MODALITY_NAMES: dict[str, str] = {
    "CT(Computed Tomography)": "CT",
    "CT (Computed Tomography)": "CT",
    "CT": "CT",
    "MR (Mag-netic Resonance Imaging)": "MR",
    "MR (Magnetic Resonance Imaging)": "MR",
    "MRI": "MR",
    "MR": "MR",
    "X-Ray": "X-Ray",
    "X-ray": "X-Ray",
    "ultrasound": "US",
    "Ultrasound": "US",
    "US": "US",
    "Dermoscopy": "Dermoscopy",
    "Fundus Photography": "Fundus",
    "Fundus": "Fundus",
    "OCT (Optical Coherence Tomography": "OCT",
    "OCT (Optical Coherence Tomography)": "OCT",
    "OCT": "OCT",
    "Microscopy Images": "Microscopy",
    "Microscopy": "Microscopy",
    "Endoscopy": "Endoscopy",
    "Digital Photography": "Digital Photography",
    "Infrared Reflectance Imaging": "Infrared Reflectance Imaging",
    "Colposcopy": "Colposcopy",
}
CANONICAL_MODALITIES = ("CT", "MR", "X-Ray", "US", "Dermoscopy", "Fundus", "OCT", "Microscopy")
#: The other four of the benchmark's 12 modalities (OmniMedVQA paper), kept under their own names.
OTHER_MODALITIES = ("Endoscopy", "Digital Photography", "Infrared Reflectance Imaging",
                    "Colposcopy")

EXPECTED = ("OmniMedVQA/QA_information/Open-access/*.json (and Restricted-access/ when you have "
            "it) plus OmniMedVQA/Images/, as unzipped from OmniMedVQA.zip")


def _qa_files(root: Path, access: Iterable[str]) -> list[tuple[str, Path]]:
    """(access level, QA file) in loading order."""
    out = []
    for level in access:
        folder = root / "QA_information" / level
        if folder.is_dir():  # Restricted-access is often absent; Open-access is checked below
            out.extend((level, path) for path in sorted(folder.glob("*.json")))
    return out


def list_omnimedvqa(root: Path, access: Iterable[str] = ACCESS_LEVELS) -> list[Path]:
    """The QA files ``load_omnimedvqa`` reads (its ``files``), without reading them."""
    return [path for _, path in _qa_files(root, access)]


@LOADERS.register("omnimedvqa")
@declare_options(access=Option((list,), items=(str,), choices=ACCESS_LEVELS))
@declare_files(list_omnimedvqa)
def load_omnimedvqa(root: Path, access: Iterable[str] = ACCESS_LEVELS) -> LoadedDataset:
    """Every QA item of the requested access levels; bad rows become SampleErrors."""
    require_dir(root / "QA_information", "OmniMedVQA", EXPECTED)
    dataset = LoadedDataset()
    for level, path in _qa_files(root, access):
        dataset.files.append(path)
        dataset.items.extend(_read_file(root, path, level))
    if not dataset.files:
        require_dir(root / "QA_information" / "Open-access", "OmniMedVQA", EXPECTED)
        raise FileNotFoundError(f"no QA JSON files under {root / 'QA_information'}; "
                                f"expected {EXPECTED}")
    return dataset


def _read_file(root: Path, path: Path, level: str) -> list[Sample | SampleError]:
    stem = f"{level}/{path.stem}"
    try:
        rows = loads_json(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        return [SampleError(f"{stem}/*", str(path), f"unreadable QA file: {exc}")]
    if not isinstance(rows, list):
        return [SampleError(f"{stem}/*", str(path), "expected a JSON list of QA items")]
    return [_parse_item(root, path, stem, i, row) for i, row in enumerate(rows)]


def _parse_item(root: Path, path: Path, stem: str, index: int,
                row: Any) -> Sample | SampleError:
    sample_id = f"{stem}/{index}"
    where = f"{path} item {index}"
    if not isinstance(row, dict):
        return SampleError(sample_id, where, "QA item is not a JSON object")
    raw_modality = row.get("modality_type", row.get("modality"))
    modality = MODALITY_NAMES.get(str(raw_modality).strip()) if raw_modality else None
    # A bad row keeps its canonical modality where known, so it is counted in that group.
    meta = {"modality_raw": raw_modality, "question_type": row.get("question_type"),
            "source_file": path.name, "access": stem.split("/")[0],
            **({"modality": modality} if modality else {})}
    for key in ("question", "gt_answer", "image_path", "option_A", "option_B"):
        if not isinstance(row.get(key), str) or not row[key].strip():
            return SampleError(sample_id, where, f"missing or empty field {key!r}", meta)
    options: dict[str, str] = {}
    for letter in LETTERS:
        value = row.get(f"option_{letter}")
        if value is None:
            break
        options[letter] = str(value)
    extra = [k for k in LETTERS[len(options):] if row.get(f"option_{k}") is not None]
    if extra:
        return SampleError(sample_id, where, f"option(s) {', '.join(extra)} given after a "
                           "missing option", meta)
    matches = [k for k, v in options.items() if v == row["gt_answer"]]
    if not matches:
        return SampleError(sample_id, where, f"gt_answer {row['gt_answer']!r} is not among the "
                           f"options {list(options.values())}", meta)
    if modality is None:
        return SampleError(sample_id, where, f"unknown modality string {raw_modality!r} (known: "
                           f"{', '.join(sorted(MODALITY_NAMES))})", meta)
    try:
        image = resolve_inside(root, row["image_path"], where)
    except UnsafePathError as exc:
        return SampleError(sample_id, where, str(exc), meta)
    return Sample(
        id=sample_id, question=row["question"], images=(ImageSource(path=image),),
        options=options, target=matches[0],
        meta={**meta, "answer_text": row["gt_answer"]},
    )


# ---------------------------------------------------------------------------------------------
# The bundled sample suite: real images from PyPI packages, written in the official layout.

_RAW_MODALITY = {"CT": "CT(Computed Tomography)", "MR": "MR (Mag-netic Resonance Imaging)",
                 "X-Ray": "X-Ray", "US": "ultrasound", "Fundus": "Fundus Photography",
                 "Microscopy": "Microscopy Images"}
_MODALITY_OPTIONS = {"CT": "CT", "MR": "MRI", "X-Ray": "X-ray", "US": "Ultrasound",
                     "Fundus": "Fundus photography", "Microscopy": "Microscopy"}
_BODY_PARTS = ("Chest", "Head", "Shoulder", "Abdomen", "Lower limb", "Brain", "Eye",
               "Lymph node")


def rotate_options(correct: str, pool: list[str], k: int, offset: int) -> list[str]:
    """k options including ``correct``, deterministic, with the answer's position varying."""
    others = [p for p in pool if p != correct]
    picked = [others[(offset + i) % len(others)] for i in range(k - 1)]
    position = offset % k
    return picked[:position] + [correct] + picked[position:]


@SAMPLE_BUILDERS.register("omnimedvqa_sample")
def build_omnimedvqa_sample(root: Path) -> None:
    """Write a small OmniMedVQA-format suite under ``root`` (the task's dataset folder).

    Two question types whose answers the images' own metadata give: Modality Recognition for
    every image and Anatomy Identification where the body part is recorded. One file uses the
    ``modality`` key instead of ``modality_type``, as ``Chest CT Scan.json`` does upstream.
    """
    from healthbench.data.bundled import BUNDLED_IMAGES, save_png

    files: dict[str, list[dict[str, Any]]] = {}
    modality_pool = list(_MODALITY_OPTIONS.values())
    for n, image in enumerate(BUNDLED_IMAGES):
        rel = f"Images/healthbench-sample/{image.key}.png"
        save_png(image, root / rel)
        source = image.source.split(":")[0]
        items = files.setdefault(source, [])
        modality_key = "modality" if source == "scikit-image" else "modality_type"
        options = rotate_options(_MODALITY_OPTIONS[image.modality], modality_pool, 4, n)
        items.append({"question": "Which imaging modality was used to acquire this image?",
                      "gt_answer": _MODALITY_OPTIONS[image.modality], "image_path": rel,
                      **{f"option_{L}": o for L, o in zip(LETTERS, options)},
                      modality_key: _RAW_MODALITY[image.modality],
                      "question_type": "Modality Recognition", "source": image.source})
        if image.body_part:
            options = rotate_options(image.body_part, list(_BODY_PARTS), 4, n + 1)
            items.append({"question": "Which part of the body is shown in this image?",
                          "gt_answer": image.body_part, "image_path": rel,
                          **{f"option_{L}": o for L, o in zip(LETTERS, options)},
                          modality_key: _RAW_MODALITY[image.modality],
                          "question_type": "Anatomy Identification", "source": image.source})
    qa_dir = root / "QA_information" / "Open-access"
    qa_dir.mkdir(parents=True, exist_ok=True)
    for source, items in files.items():
        target = qa_dir / f"{source}.json"
        tmp = target.with_suffix(".tmp")
        tmp.write_text(json.dumps(items, indent=1), encoding="utf-8")
        tmp.replace(target)

"""PMC-MI-Bench (M3LLM, arXiv 2511.22232) in its official layout (franciszchen/M3LLM).

Layout (the repo's ``benchmark/benchmark_data`` plus the released images)::

    PMC-MI-Bench/
      benchmark_data/puretextQA_benchmark.json           text-only QA
      benchmark_data/multiplechoiceVQA_benchmark.json    multiple choice (options inside question)
      benchmark_data/compound-imageVQA_benchmark.json    compound-figure VQA
      benchmark_data/single_subimageVQA_benchmark.json   compound + one sub-figure
      benchmark_data/multiplesubimageVQA_benchmark.json  compound + several sub-figures
      benchmark_data/spatial_relation_benchmark.json     compound + two sub-figures, spatial
      benchmark_images/<compound>.jpg, <compound>.jpg_<k>.jpg

Each file is a JSON list of ``{"question", "gt", "images", "image_indices"}`` (``puretext``
stores ``images_puretext``, which the official loader never shows the model: no image input).
``image_indices`` are the labels shown with each image ("Fig-0" the compound figure, "Fig-k" a
sub-figure), kept exactly as given, in order, even where they do not match the ``_k`` file
suffix. Ids: ``<subtask>/<item id>``, the item's ``id`` where present, else its position (the
official ``str(sample.get("id", idx))``).

Multiple-choice items hold their options inside ``question`` ("The question is … The candidate
options are: A. …\\nB. …"); ``options`` are parsed from it for letter extraction, ``gt`` is the
letter.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from healthbench.core.catalog import LOADERS, PROMPT_BUILDERS, SAMPLE_BUILDERS
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

#: sub-task key (the official ``task_config.TASKS`` keys) → annotation file.
SUBTASK_FILES: dict[str, str] = {
    "puretext": "puretextQA_benchmark.json",
    "multi-choice": "multiplechoiceVQA_benchmark.json",
    "compoundVQA": "compound-imageVQA_benchmark.json",
    "single-subimageVQA": "single_subimageVQA_benchmark.json",
    "multisubimageVQA": "multiplesubimageVQA_benchmark.json",
    "bboxVQA": "spatial_relation_benchmark.json",
}
#: The official v1 system prompts (``task_config.py``), verbatim.
SYSTEM_PROMPTS: dict[str, str] = {
    "puretext": "You are a medical expert who is good at pure-text QA task. Please answer the "
                "following question carefully. Please do not answer with a single word. Do not "
                "overstate. Make the answer concise and precise. Answer with complete sentences.",
    "multi-choice": "You are a medical expert who is good at solving medical multiple-choice "
                    "task. Please answer with option letter only.",
    "single-subimageVQA": "You are a medical expert who is good at single subimage VQA task. "
                          "Please answer the question regarding a single sub-image. Please do "
                          "not answer with a single word.",
    "bboxVQA": "You are a medical expert who is good at analyzing subimage spatial relationship. "
               "Use the compound image and sub-images to answer the question regarding the "
               "spatial relation of two sub-images.",
    "compoundVQA": "You are a medical expert who is good at analyzing compound medical image. "
                   "Please answer the question regarding the given compound image.",
    "multisubimageVQA": "You are a medical expert who is good at multiple subimage VQA task. "
                        "Please answer the question regarding the given multiple sub-images. "
                        "Please do not answer with a single word.",
}
EXPECTED = ("PMC-MI-Bench/benchmark_data/<sub-task file>.json (" + ", ".join(SUBTASK_FILES.values())
            + ") and PMC-MI-Bench/benchmark_images/ holding the files the items name")
_LETTERS = "ABCDEF"
_OPTION_LINE = re.compile(r"^\s*([A-F])\s*[.):\-]\s*(.*)$")


def parse_choice_options(question: str) -> dict[str, str]:
    """Letter → option text of a multiple-choice question (both official question formats).

    Options start a line, or follow "The candidate options are:"; letters must run A, B, C… in
    order (a stray "B." inside an option does not start a new one). Texts are stripped.
    """
    text = re.sub(r"(candidate options are:)\s*", "\\1\n", question, flags=re.I)
    options: dict[str, str] = {}
    for line in text.split("\n"):
        match = _OPTION_LINE.match(line)
        expected = _LETTERS[len(options)] if len(options) < len(_LETTERS) else None
        if match and match.group(1) == expected:
            options[expected] = match.group(2).strip()
        elif options and line.strip():
            last = list(options)[-1]
            options[last] = f"{options[last]} {line.strip()}".strip()
    return options


def _subtask_file(root: Path, subtask: str) -> Path:
    if subtask not in SUBTASK_FILES:
        raise ValueError(f"pmc_mi_bench: unknown subtask {subtask!r}; known: "
                         f"{', '.join(SUBTASK_FILES)}")
    data_dir = require_dir(root / "benchmark_data", "PMC-MI-Bench", EXPECTED)
    path = data_dir / SUBTASK_FILES[subtask]
    if not path.is_file():
        require_dir(path, "PMC-MI-Bench", EXPECTED)  # raises DatasetMissingError with the layout
    return path


def list_pmc_mi_bench(root: Path, subtask: str) -> list[Path]:
    """The file ``load_pmc_mi_bench`` reads (its ``files``), without reading it."""
    return [_subtask_file(root, subtask)]


@LOADERS.register("pmc_mi_bench")
@declare_options(subtask=Option((str,), choices=tuple(SUBTASK_FILES), required=True))
@declare_files(list_pmc_mi_bench)
def load_pmc_mi_bench(root: Path, subtask: str) -> LoadedDataset:
    """The items of one sub-task (``subtask``: a key of SUBTASK_FILES)."""
    path = _subtask_file(root, subtask)
    dataset = LoadedDataset(files=[path])
    try:
        rows = loads_json(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        dataset.items.append(SampleError(f"{subtask}/*", str(path), f"unreadable file: {exc}"))
        return dataset
    if isinstance(rows, dict):  # the official loader also accepts {"data": [...]}
        rows = rows.get("data") or rows.get("samples") or [rows]
    if not isinstance(rows, list):
        dataset.items.append(SampleError(f"{subtask}/*", str(path), "expected a JSON list"))
        return dataset
    dataset.items = [_parse_item(root, path, subtask, i, row) for i, row in enumerate(rows)]
    return dataset


def _string_list(row: dict[str, Any], key: str) -> list[str] | None:
    value = row.get(key)
    if isinstance(value, list) and all(isinstance(v, str) and v.strip() for v in value):
        return list(value)
    return None


def _parse_item(root: Path, path: Path, subtask: str, index: int,
                row: Any) -> Sample | SampleError:
    raw_id = row.get("id") if isinstance(row, dict) else None
    sample_id = f"{subtask}/{raw_id if raw_id not in (None, '') else index}"
    where = f"{path} item {index}"
    meta: dict[str, Any] = {"subtask": subtask}
    if not isinstance(row, dict):
        return SampleError(sample_id, where, "item is not a JSON object", meta)
    for key in ("question", "gt"):
        if not isinstance(row.get(key), str) or not row[key].strip():
            return SampleError(sample_id, where, f"missing or empty field {key!r}", meta)
    image_key = "images_puretext" if subtask == "puretext" else "images"
    files = _string_list(row, image_key)
    labels = _string_list(row, "image_indices")
    if files is None or not files:
        return SampleError(sample_id, where, f"{image_key!r} must be a non-empty list of file "
                           "names", meta)
    if labels is None or len(labels) != len(files):
        return SampleError(sample_id, where, f"'image_indices' must list one label per image "
                           f"({len(files)}), got {row.get('image_indices')!r}", meta)
    meta.update({"image_labels": labels, "n_images": len(files) if subtask != "puretext" else 0})
    options: dict[str, str] = {}
    target = row["gt"]
    if subtask == "multi-choice":
        options = parse_choice_options(row["question"])
        target = row["gt"].strip().upper()
        if len(options) < 2:
            return SampleError(sample_id, where, "no lettered options (A., B., …) found in "
                               "the question", meta)
        if target not in options:
            return SampleError(sample_id, where, f"gt {row['gt']!r} is not one of the option "
                               f"letters {', '.join(options)}", meta)
    images: tuple[ImageSource, ...] = ()
    if subtask == "puretext":
        meta["source_images"] = files  # stored by the benchmark, never shown to the model
    else:
        try:
            images = tuple(ImageSource(path=resolve_inside(root / "benchmark_images", f, where),
                                       label=label) for f, label in zip(files, labels))
        except UnsafePathError as exc:
            return SampleError(sample_id, where, str(exc), meta)
    return Sample(id=sample_id, question=row["question"], images=images, options=options,
                  target=target, meta=meta)


@PROMPT_BUILDERS.register("pmc_mi_bench")
def pmc_mi_bench_prompt(sample: Sample) -> tuple[str | None, str]:
    """``(official system prompt, text)``: the text is one ``Fig-k: <image n>`` line per image,
    then the question.

    The official wrappers pass the system prompt as a system turn and emit one "Fig-k: <image>"
    line per image (HealthGPT); ``<image n>`` marks where image n (in ``Request.images`` order)
    belongs. The system prompt reaches models with a system turn through ``Request.system``.
    """
    lines = [f"{img.label or f'Image {n}'}: <image {n}>"
             for n, img in enumerate(sample.images, start=1)]
    lines.append(sample.question)
    system = SYSTEM_PROMPTS.get(str(sample.meta.get("subtask"))) or None
    return system, "\n".join(line for line in lines if line)


# ---------------------------------------------------------------------------------------------
# The bundled sample suite: compound figures tiled from real images in PyPI packages.

#: Two compound figures, each a 2×2 grid (Fig-1 top left, Fig-2 top right, Fig-3 bottom left,
#: Fig-4 bottom right) of bundled images; what each panel shows comes from the image's own
#: metadata (DICOM Modality / BodyPartExamined / ViewPosition, package documentation).
SAMPLE_FIGURES: dict[str, tuple[str, ...]] = {
    "HBSAMPLE1_healthbench-compound-1.jpg": ("ct_head", "mr_brain_mni152", "cr_chest",
                                             "us_lymph_node"),
    "HBSAMPLE2_healthbench-compound-2.jpg": ("fundus_retina", "microscopy_ihc", "mr_shoulder",
                                             "cr_extremity"),
}
#: Sub-figure file suffix of each panel. Like the upstream data, the ``_k`` suffix does not
#: follow the Fig-k numbering.
SAMPLE_SUFFIX = {1: 2, 2: 0, 3: 3, 4: 1}
_PANEL = 256
_DESCRIBE = {
    "ct_head": "a computed tomography (CT) image of the head",
    "mr_brain_mni152": "a T1-weighted magnetic resonance (MR) template image of the brain "
                       "(the MNI152 template)",
    "cr_chest": "a posteroanterior (PA) chest radiograph",
    "us_lymph_node": "an ultrasound image of a lymph node",
    "fundus_retina": "a colour fundus photograph of the retina",
    "microscopy_ihc": "an immunohistochemistry microscopy image",
    "mr_shoulder": "a magnetic resonance (MR) image of the shoulder",
    "cr_extremity": "a radiograph of the lower limb",
}
_MODALITY = {"ct_head": "Computed tomography", "mr_brain_mni152": "Magnetic resonance imaging",
             "cr_chest": "Radiography (X-ray)", "us_lymph_node": "Ultrasound",
             "fundus_retina": "Fundus photography", "microscopy_ihc": "Light microscopy",
             "mr_shoulder": "Magnetic resonance imaging", "cr_extremity": "Radiography (X-ray)"}
_POSITION = {1: "top left", 2: "top right", 3: "bottom left", 4: "bottom right"}


def _sample_items(figures: dict[str, tuple[str, ...]]) -> dict[str, list[dict[str, Any]]]:
    """The sub-task files' items, written with answers known from how the figures were built."""
    (c1, keys1), (c2, keys2) = figures.items()

    def sub(compound: str, fig: int) -> str:
        return f"{compound}_{SAMPLE_SUFFIX[fig]}.jpg"

    def item(question: str, gt: str, compound: str, figs: tuple[int, ...]) -> dict[str, Any]:
        return {"question": question, "gt": gt,
                "images": [compound] + [sub(compound, f) for f in figs],
                "image_indices": ["Fig-0"] + [f"Fig-{f}" for f in figs]}

    def mc(compound: str, keys: tuple[str, ...], fig: int, options: list[str]) -> dict[str, Any]:
        answer = _MODALITY[keys[fig - 1]]
        body = "\n".join(f"{_LETTERS[i]}. {o}" for i, o in enumerate(options))
        return item(f"The question is Based on Fig-{fig}, which imaging technique produced this "
                    f"panel? The candidate options are: {body}",
                    _LETTERS[options.index(answer)], compound, (fig,))

    def panels(keys: tuple[str, ...]) -> str:
        return "; ".join(f"Fig-{i} ({_POSITION[i]}) is {_DESCRIBE[k]}"
                         for i, k in enumerate(keys, start=1))

    return {
        "puretext": [
            {"question": "What does the Hounsfield unit scale used in computed tomography "
                         "express, and what values do water and air have on it?",
             "gt": "The Hounsfield unit scale expresses X-ray attenuation relative to water. "
                   "Water is defined as 0 HU and air as -1000 HU.",
             "images_puretext": [c1], "image_indices": ["Fig-0"]},
            {"question": "How does water appear on T1-weighted compared with T2-weighted "
                         "magnetic resonance images?",
             "gt": "Water, such as cerebrospinal fluid, appears dark on T1-weighted images and "
                   "bright on T2-weighted images.",
             "images_puretext": [c2], "image_indices": ["Fig-0"]},
        ],
        "multi-choice": [
            mc(c1, keys1, 2, ["Ultrasound", "Magnetic resonance imaging", "Computed tomography",
                              "Fundus photography"]),
            mc(c1, keys1, 4, ["Computed tomography", "Light microscopy", "Ultrasound",
                              "Radiography (X-ray)"]),
            mc(c2, keys2, 1, ["Fundus photography", "Ultrasound", "Computed tomography",
                              "Magnetic resonance imaging"]),
        ],
        "compoundVQA": [
            {"question": "How many panels does this compound figure contain, and what does each "
                         "panel show?",
             "gt": f"The compound figure contains four panels in a two by two grid. "
                   f"{panels(keys1)}.", "images": [c1], "image_indices": ["Fig-0"]},
            {"question": "How many panels does this compound figure contain, and what does each "
                         "panel show?",
             "gt": f"The compound figure contains four panels in a two by two grid. "
                   f"{panels(keys2)}.", "images": [c2], "image_indices": ["Fig-0"]},
        ],
        "single-subimageVQA": [
            item("What does Fig-3 show?", f"Fig-3 is {_DESCRIBE[keys1[2]]}.", c1, (3,)),
            item("What does Fig-1 show?", f"Fig-1 is {_DESCRIBE[keys1[0]]}.", c1, (1,)),
            item("What does Fig-2 show?", f"Fig-2 is {_DESCRIBE[keys2[1]]}.", c2, (2,)),
        ],
        "multisubimageVQA": [
            item("Which of Fig-1 and Fig-4 was acquired with ionising radiation?",
                 "Fig-1 is a CT image, which is acquired with ionising X-rays, whereas Fig-4 is "
                 "an ultrasound image, which uses sound waves and no ionising radiation.",
                 c1, (1, 4)),
            item("Which imaging modalities are shown in Fig-3 and Fig-4?",
                 f"Fig-3 is {_DESCRIBE[keys2[2]]} and Fig-4 is {_DESCRIBE[keys2[3]]}.",
                 c2, (3, 4)),
        ],
        "bboxVQA": [
            item("Where is Fig-2 located relative to Fig-1 in the compound figure?",
                 "Fig-2 is directly to the right of Fig-1, in the top row of the compound "
                 "figure.", c1, (1, 2)),
            item("Where is Fig-4 located relative to Fig-2 in the compound figure?",
                 "Fig-4 is directly below Fig-2, in the right column of the compound figure.",
                 c2, (2, 4)),
        ],
    }


def _compound(keys: tuple[str, ...]):  # -> tuple[PIL.Image, list[PIL.Image]]
    from PIL import Image, ImageDraw

    from healthbench.data.bundled import BUNDLED_IMAGES

    by_key = {b.key: b for b in BUNDLED_IMAGES}
    panels = []
    for key in keys:
        panel = Image.fromarray(by_key[key].read()).convert("RGB")
        panel.thumbnail((_PANEL, _PANEL), Image.Resampling.LANCZOS)
        canvas = Image.new("RGB", (_PANEL, _PANEL), "white")
        canvas.paste(panel, ((_PANEL - panel.width) // 2, (_PANEL - panel.height) // 2))
        panels.append(canvas)
    gap = 8
    figure = Image.new("RGB", (2 * _PANEL + 3 * gap, 2 * _PANEL + 3 * gap), "white")
    draw = ImageDraw.Draw(figure)
    for i, panel in enumerate(panels):
        x, y = gap + (i % 2) * (_PANEL + gap), gap + (i // 2) * (_PANEL + gap)
        figure.paste(panel, (x, y))
        draw.rectangle([x + 2, y + 2, x + 16, y + 16], fill="white")
        draw.text((x + 5, y + 4), str(i + 1), fill="black")  # the panel number, as in papers
    return figure, panels


@SAMPLE_BUILDERS.register("pmc_mi_bench_sample")
def build_pmc_mi_bench_sample(root: Path) -> None:
    """Write the six sub-task files and their figures under ``root`` (the official layout)."""
    image_dir = root / "benchmark_images"
    data_dir = root / "benchmark_data"
    image_dir.mkdir(parents=True, exist_ok=True)
    data_dir.mkdir(parents=True, exist_ok=True)
    for name, keys in SAMPLE_FIGURES.items():
        figure, panels = _compound(keys)
        figure.save(image_dir / name, quality=92)
        for fig, panel in enumerate(panels, start=1):
            panel.save(image_dir / f"{name}_{SAMPLE_SUFFIX[fig]}.jpg", quality=92)
    for subtask, items in _sample_items(SAMPLE_FIGURES).items():
        target = data_dir / SUBTASK_FILES[subtask]
        target.write_text(json.dumps(items, indent=2, ensure_ascii=False), encoding="utf-8")

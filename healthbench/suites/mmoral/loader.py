"""MMOral-OPG (MMOral-Bench) and MMOral-Uni (MMOral-Omni-Bench) in their released TSV layouts.

Both are VLMEvalKit TSVs (isbrycee/OralGPT ``MMOral-Bench-EvalKit/vlmeval/dataset/mmoral.py``
and ``image_base.py``), read the way the
official loader reads them: ``pandas.read_csv(sep="\\t")`` with pandas' default missing-value
markers (an empty cell, ``NA``, ``None``, ``nan``… is missing), except that cells are kept as
text (no number parsing). Image cells follow VLMEvalKit's rules:

* a base64 JPEG string → one image (kept as encoded bytes, decoded lazily by the runner);
* a cell that starts with ``[`` and ends with ``]`` → a Python/JSON list of base64 images
  (MMOral-Uni's treatment-planning and video items); read with ``ast.literal_eval``, never eval;
* a cell of at most 64 characters → the ``index`` of another row whose image is reused;
* a missing cell (or the text ``nan``) → a text-only item (the official MMOral-Uni loader's rule).

Layouts (under the data root)::

    MMOral-OPG-Bench/MMOral-OPG-Bench-Closed-Ended.tsv   # index, image, question,
    MMOral-OPG-Bench/MMOral-OPG-Bench-Open-Ended.tsv     #   option1..4 (closed), answer, category
    MMOral-Omni-Bench/MMOral-Omni-Bench.tsv              # index, image, question, answer, category

MMOral-OPG: sample ids ``closed/<index>`` and ``open/<index>``. ``category`` is a comma-separated
tag string; ``meta.dimension`` lists the dimensions an item is counted in, by the official rule
(dimension D counts iff the string contains "D": Teeth, Patho, HisT, Jaw, SumRec, Report).
Closed answers are letters A–D for ``option1``–``option4``. A missing option cell is a *blank
option*: its text is "" in ``Sample.options``, its letter in ``meta.blank_options``; the prompt
shows it as ``nan``, as the official prompt does (``str()`` of pandas' NaN). Items with a blank
option are counted in the group ``blank_option`` (yes / no; n/a for open items).

MMOral-Uni: sample ids ``<index>``. ``category`` is ``<task code>[,<finding>…]``;
``meta.task`` is the task code (``II_Loc``, ``II_Dx-I``, ``II_Dx-R``, ``PA``, ``CE``, ``PI``,
``TP``, ``IV``), ``meta.modality`` its imaging modality, ``meta.tag`` every tag of the official
tag list that the category string contains (substring, as ``MMOral_Omni_acc``).

No bundled sample suite: no dental images ship in PyPI packages (docs/datasets.md).
"""
from __future__ import annotations

import ast
import base64
import binascii
import math
from pathlib import Path
from typing import Any, Iterable

from healthbench.core.catalog import LOADERS, PROMPT_BUILDERS
from healthbench.data.options import Option, declare_options
from healthbench.data.paths import LoadedDataset, declare_files, require_dir, resolve_inside
from healthbench.core.types import ImageSource, Sample, SampleError

OPG_FILES = {"closed": "MMOral-OPG-Bench-Closed-Ended.tsv",
             "open": "MMOral-OPG-Bench-Open-Ended.tsv"}
OPG_EXPECTED = ("MMOral-OPG-Bench/MMOral-OPG-Bench-Closed-Ended.tsv and "
                "MMOral-OPG-Bench-Open-Ended.tsv, the two TSVs of the Hugging Face dataset "
                "OralGPT/MMOral-OPG-Bench")
UNI_FILE = "MMOral-Omni-Bench.tsv"
UNI_EXPECTED = ("MMOral-Omni-Bench/MMOral-Omni-Bench.tsv, the TSV of the Hugging Face dataset "
                "OralGPT/MMOral-Omni-Bench")
LETTERS = ("A", "B", "C", "D")
#: The official dimension lists (closed: ``MMOral_OPG_CLOSED.evaluate``; open: ``MMOral_opg_acc``).
OPG_DIMENSIONS = ("Teeth", "Patho", "HisT", "Jaw", "SumRec", "Report")
#: ``MMOral_Omni_acc``'s tag list, in its order.
UNI_TAGS = (
    "TP", "Endodontics", "Implant Dentistry", "Periodontics",
    "II_Loc",
    "II_Dx-I", "Orthodontics", "Cancer", "Gingivitis", "Defective Dentition", "Normality",
    "Tooth Discoloration", "Ulcer", "Caries", "Calculus",
    "II_Dx-R", "Fenestration and Dehiscence", "Malocclusion Issues Assessment",
    "PA", "Impacted Tooth", "Pulpitis", "Periodontitis", "Apical Periodontitis",
    "Mixed Dentition", "Bone Loss", "Root Canal Treatment", "Crown", "Restoration",
    "CE",
    "PI", "Leukoplakia with Dysplasia", "Leukoplakia without Dysplasia",
    "Oral Squamous Cell Carcinoma", "Oral Submucous Fibrosis",
    "IV",
)
#: Task code → modality (the paper's five imaging modalities plus interleaved image-text).
UNI_MODALITIES = {
    "II_Loc": "Intraoral image", "II_Dx-I": "Intraoral image", "II_Dx-R": "Intraoral image",
    "PA": "Periapical radiograph", "CE": "Cephalometric radiograph",
    "PI": "Histopathology", "IV": "Intraoral video", "TP": "Interleaved image-text",
    "TE": "Text only",
}
UNI_TASKS = ("II_Loc", "II_Dx-I", "II_Dx-R", "PA", "CE", "PI", "TP", "IV")
MAX_REFERENCE_CHARS = 64  # VLMEvalKit: an image cell this short names another row


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def read_tsv(path: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """Rows (None for missing cells) and column names, as VLMEvalKit's ``load`` sees them."""
    import pandas as pd

    frame = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=True)
    frame = frame.astype(object).where(frame.notna(), None)
    return frame.to_dict("records"), [str(c) for c in frame.columns]


class ImageCells:
    """Resolves image cells to ImageSources with VLMEvalKit's rules; identical cells share
    their decoded bytes (the OPG TSVs repeat each radiograph for every question)."""

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.by_index = {str(r.get("index")): r.get("image") for r in rows}
        self._decoded: dict[str, bytes] = {}

    def sources(self, cell: Any) -> tuple[ImageSource, ...]:
        if _missing(cell) or str(cell).strip() in ("", "nan"):
            return ()
        text = str(cell).strip()
        if len(text) <= MAX_REFERENCE_CHARS:
            target = self.by_index.get(text)
            if _missing(target) or len(str(target).strip()) <= MAX_REFERENCE_CHARS:
                raise ValueError(f"image cell {text!r} names no row with an image of its own")
            text = str(target).strip()
        if text.startswith("[") and text.endswith("]"):
            try:
                items = ast.literal_eval(text)
            except (ValueError, SyntaxError) as exc:
                raise ValueError(f"image list is not a valid list literal ({exc})") from None
            if not isinstance(items, (list, tuple)) or not items:
                raise ValueError("image list is empty or not a list")
            return tuple(ImageSource(data=self._decode(str(x)), label=f"image {k}")
                         for k, x in enumerate(items, 1))
        return (ImageSource(data=self._decode(text)),)

    def _decode(self, text: str) -> bytes:
        if text not in self._decoded:
            try:
                self._decoded[text] = base64.b64decode("".join(text.split()), validate=True)
            except (binascii.Error, ValueError) as exc:
                raise ValueError(f"image cell is not valid base64 ({exc})") from None
        return self._decoded[text]


def _missing_fields(row: dict[str, Any], index: Any) -> str | None:
    """Why a row cannot be a sample (no index, question or answer), or None."""
    if index is None:
        return "missing index"
    for key in ("question", "answer"):
        if not _text(row, key):
            return f"missing {key}"
    return None


def _text(row: dict[str, Any], key: str) -> str | None:
    value = row.get(key)
    return None if _missing(value) else str(value)


def opg_dimensions(category: str) -> list[str]:
    """Dimensions an item counts in: the official substring rule."""
    return [d for d in OPG_DIMENSIONS if d in category]


def uni_tags(category: str) -> list[str]:
    return [t for t in UNI_TAGS if t in category]


def _need_columns(path: Path, columns: list[str], needed: Iterable[str]) -> None:
    missing = [c for c in needed if c not in columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {', '.join(missing)} (found: "
                         f"{', '.join(columns)})")


# ---------------------------------------------------------------------------- MMOral-OPG


def _opg_files(root: Path, splits: Iterable[str]) -> list[tuple[str, Path]]:
    """(split, its TSV) in the order the splits are named."""
    require_dir(root, "MMOral-OPG", OPG_EXPECTED)
    found = []
    for split in splits:
        if split not in OPG_FILES:
            raise ValueError(f"mmoral_opg: unknown split {split!r} (known: closed, open)")
        path = root / OPG_FILES[split]
        if not path.is_file():
            raise FileNotFoundError(f"MMOral-OPG {split}-ended file not found at {path}. "
                                    f"Expected {OPG_EXPECTED}; healthbench never downloads data.")
        found.append((split, path))
    return found


def list_mmoral_opg(root: Path, splits: Iterable[str] = ("closed", "open")) -> list[Path]:
    """The TSVs ``load_mmoral_opg`` reads (its ``files``), without reading them."""
    return [path for _, path in _opg_files(root, splits)]


@LOADERS.register("mmoral_opg")
@declare_options(splits=Option((list,), items=(str,), choices=tuple(OPG_FILES)))
@declare_files(list_mmoral_opg)
def load_mmoral_opg(root: Path, splits: Iterable[str] = ("closed", "open")) -> LoadedDataset:
    """Both halves of MMOral-OPG (or the ``splits`` named); bad rows become SampleErrors."""
    dataset = LoadedDataset()
    for split, path in _opg_files(root, splits):
        needed = ["index", "image", "question", "answer", "category"]
        dataset.files.append(path)
        try:  # pandas' parse errors and UnicodeDecodeError are ValueErrors too
            rows, columns = read_tsv(path)
            _need_columns(path, columns, needed + ([f"option{i}" for i in range(1, 5)]
                                                   if split == "closed" else []))
        except ValueError as exc:
            dataset.items.append(SampleError(f"{split}/*", str(path), f"unreadable TSV: {exc}"))
            continue
        images = ImageCells(rows)
        dataset.items.extend(_opg_item(path, split, i, row, images) for i, row in enumerate(rows))
    return dataset


def _opg_item(path: Path, split: str, position: int, row: dict[str, Any],
              images: ImageCells) -> Sample | SampleError:
    index = _text(row, "index")
    sample_id = f"{split}/{index if index is not None else f'row{position}'}"
    where = f"{path} row {position + 2} (index {index})"
    category = _text(row, "category") or ""
    meta: dict[str, Any] = {"split": split, "answer_type": split, "category": category,
                            "dimension": opg_dimensions(category), "blank_option": "n/a"}
    name = _text(row, "file_name") or _text(row, "image_name")
    if name:
        meta["image_name"] = name
    missing = _missing_fields(row, index)
    if missing:
        return SampleError(sample_id, where, missing, meta)
    question, answer = _text(row, "question"), _text(row, "answer")
    options: dict[str, str] = {}
    if split == "closed":
        blanks = [L for i, L in enumerate(LETTERS, 1) if _text(row, f"option{i}") is None]
        options = {L: _text(row, f"option{i}") or "" for i, L in enumerate(LETTERS, 1)}
        meta.update(blank_options=blanks, blank_option="yes" if blanks else "no")
        if answer not in LETTERS:
            return SampleError(sample_id, where, f"answer {answer!r} is not one of A, B, C, D",
                               meta)
    try:
        sources = images.sources(row.get("image"))
    except ValueError as exc:
        return SampleError(sample_id, where, str(exc), meta)
    if not sources:
        return SampleError(sample_id, where, "missing image", meta)
    return Sample(id=sample_id, question=question, images=sources, options=options,
                  target=answer, meta=meta)


CLOSED_INSTRUCTION = (
    "Please answer the above multiple-choice question by selecting the single correct option "
    "(A, B, C, or D). If the provided information is insufficient to determine a clear answer, "
    "please choose the most likely correct option based on the available data and your "
    "judgment.")


@PROMPT_BUILDERS.register("mmoral_opg")
def mmoral_opg_prompt(sample: Sample) -> str:
    """The official VLMEvalKit prompts (image(s) first, no system prompt); a blank option is
    printed ``nan`` as ``str()`` of pandas' NaN prints it."""
    if not sample.options:
        return (f"Question: {sample.question}\n"
                "Please provide a detailed and accurate answer to the question.")
    blanks = set(sample.meta.get("blank_options") or ())
    lines = "".join(f"{L}. {'nan' if L in blanks else text}\n"
                    for L, text in sample.options.items())
    return f"Question: {sample.question}\nOptions:\n{lines}{CLOSED_INSTRUCTION}"


# ---------------------------------------------------------------------------- MMOral-Uni


def _uni_file(root: Path, file: str) -> Path:
    require_dir(root, "MMOral-Uni", UNI_EXPECTED)
    path = resolve_inside(root, file, "mmoral_uni: file")
    if not path.is_file():
        raise FileNotFoundError(f"MMOral-Uni file not found at {path}. Expected {UNI_EXPECTED}; "
                                "healthbench never downloads data.")
    return path


def list_mmoral_uni(root: Path, file: str = UNI_FILE) -> list[Path]:
    """The TSV ``load_mmoral_uni`` reads (its ``files``), without reading it."""
    return [_uni_file(root, file)]


@LOADERS.register("mmoral_uni")
@declare_options(file=Option((str,)))
@declare_files(list_mmoral_uni)
def load_mmoral_uni(root: Path, file: str = UNI_FILE) -> LoadedDataset:
    """Every row of the MMOral-Omni-Bench TSV; bad rows become SampleErrors."""
    path = _uni_file(root, file)
    try:  # pandas' parse errors and UnicodeDecodeError are ValueErrors too
        rows, columns = read_tsv(path)
        _need_columns(path, columns, ["index", "image", "question", "answer", "category"])
    except ValueError as exc:
        return LoadedDataset(items=[SampleError("*", str(path), f"unreadable TSV: {exc}")],
                             files=[path])
    images = ImageCells(rows)
    return LoadedDataset(items=[_uni_item(path, i, row, images) for i, row in enumerate(rows)],
                         files=[path])


def _uni_item(path: Path, position: int, row: dict[str, Any],
              images: ImageCells) -> Sample | SampleError:
    index = _text(row, "index")
    sample_id = index if index is not None else f"row{position}"
    where = f"{path} row {position + 2} (index {index})"
    category = _text(row, "category") or ""
    parts = [p.strip() for p in category.split(",") if p.strip()]
    task = parts[0] if parts else None
    meta: dict[str, Any] = {"answer_type": "open", "category": category, "task": task,
                            "findings": parts[1:], "tag": uni_tags(category)}
    if task in UNI_MODALITIES:
        meta["modality"] = UNI_MODALITIES[task]
    missing = _missing_fields(row, index)
    if missing:
        return SampleError(sample_id, where, missing, meta)
    question, answer = _text(row, "question"), _text(row, "answer")
    try:
        sources = images.sources(row.get("image"))
    except ValueError as exc:
        return SampleError(sample_id, where, str(exc), meta)
    meta["n_images"] = len(sources)
    return Sample(id=sample_id, question=question, images=sources, target=answer, meta=meta)


@PROMPT_BUILDERS.register("mmoral_uni")
def mmoral_uni_prompt(sample: Sample) -> str:
    """The raw question after the image(s); the questions carry their own format instructions."""
    return sample.question

"""VQA-RAD, SLAKE, PathVQA and PMC-VQA in their published layouts.

Each loader reads the files as the dataset's publishers distribute them (docs/datasets.md has the
trees); nothing is converted beforehand. Closed vs open (``meta["answer_type"]``) follows what
the standard harnesses use per dataset: SLAKE's own ``answer_type`` field; for VQA-RAD and
PathVQA, "closed" iff the answer is yes/no (the Hub copies have no such field; the OSF original's
own field is kept as ``answer_type_raw``). PMC-VQA is four-way multiple choice.
"""
from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Any, Iterable

from healthbench.core.catalog import LOADERS, PROMPT_BUILDERS
from healthbench.data.options import Option, declare_options
from healthbench.data.paths import (
    DatasetMissingError,
    LoadedDataset,
    UnsafePathError,
    declare_files,
    loads_json,
    require_dir,
    resolve_inside,
)
from healthbench.data.hf_files import (
    ParquetError,
    image_from_cell,
    read_rows,
    split_shards,
)
from healthbench.suites.medvqa.metrics import CLOSED, OPEN, YES_NO, normalize
from healthbench.core.types import ImageSource, Sample, SampleError

VQA_RAD_JSON = "VQA_RAD Dataset Public.json"
VQA_RAD_IMAGES = "VQA_RAD Image Folder"


def _missing(benchmark: str, root: Path, expected: str) -> DatasetMissingError:
    return DatasetMissingError(f"{benchmark} not found at {root}. Expected {expected}. Point "
                               "--data-root at the folder that holds it; healthbench never "
                               "downloads data.")


def _text(row: dict[str, Any], key: str) -> str:
    """A required non-empty field as text (numbers, as some answers are, become text)."""
    value = row.get(key)
    if isinstance(value, bool) or not isinstance(value, (str, int, float)) \
            or not str(value).strip():
        raise ValueError(f"missing or empty field {key!r}")
    return str(value).strip()


def _yes_no_type(answer: str) -> str:
    return CLOSED if normalize(answer) in YES_NO else OPEN


def _image_path(root: Path, folder: str, name: str, where: str) -> ImageSource:
    try:
        return ImageSource(path=resolve_inside(root, Path(folder) / name, where))
    except UnsafePathError as exc:
        raise ValueError(str(exc)) from None


# --- Hub parquet copies (VQA-RAD, PathVQA) -------------------------------------------------------

def _hub_shards(root: Path, split: str, dataset: str, prefix: str) -> list[Path]:
    """``root/data/<split>-*.parquet`` in name order."""
    shards = split_shards(root / "data", split)
    if not shards:
        raise _missing(dataset, root, f"data/{split}-*.parquet (the {prefix} dataset repo)")
    return shards


def _load_hub_parquet(root: Path, split: str, dataset: str, prefix: str) -> LoadedDataset:
    """``root/data/<split>-*.parquet`` with columns image, question, answer; ids ``split/row``."""
    loaded = LoadedDataset()
    index = 0
    for shard in _hub_shards(root, split, dataset, prefix):
        loaded.files.append(shard)
        try:
            rows = read_rows(shard, ("image", "question", "answer"))
        except ParquetError as exc:
            loaded.items.append(SampleError(f"{split}/{shard.name}/*", str(shard), str(exc)))
            continue
        for row in rows:
            sample_id, where = f"{split}/{index}", f"{shard} row {index}"
            meta: dict[str, Any] = {"split": split}
            try:
                question, answer = _text(row, "question"), _text(row, "answer")
                image = image_from_cell(row.get("image"))
                meta["answer_type"] = _yes_no_type(answer)
                loaded.items.append(Sample(id=sample_id, question=question, images=(image,),
                                           target=answer, meta=meta))
            except ValueError as exc:
                loaded.items.append(SampleError(sample_id, where, str(exc), meta))
            index += 1
    return loaded


# --- VQA-RAD ------------------------------------------------------------------------------------

VQA_RAD_HUB = "flaviagiammarino/vqa-rad"


def _vqa_rad_files(root: Path, split: str, layout: str) -> tuple[str, list[Path]]:
    """The layout found (``osf`` or ``hub``) and the files it is read from."""
    expected = (f"either the OSF release ('{VQA_RAD_JSON}' and '{VQA_RAD_IMAGES}/') or the "
                f"Hub copy {VQA_RAD_HUB} (data/{split}-*.parquet)")
    require_dir(root, "VQA-RAD", expected)
    if layout not in ("auto", "osf", "hub"):
        raise ValueError(f"VQA-RAD: layout must be auto, osf or hub, got {layout!r}")
    if layout == "osf" or (layout == "auto" and (root / VQA_RAD_JSON).is_file()):
        if not (root / VQA_RAD_JSON).is_file():
            raise _missing("VQA-RAD", root, expected)
        if split not in ("train", "test"):
            raise ValueError(f"VQA-RAD (OSF release): split must be train or test, got "
                             f"{split!r}")
        return "osf", [root / VQA_RAD_JSON]
    if layout == "auto" and not split_shards(root / "data", split):
        raise _missing("VQA-RAD", root, expected)
    return "hub", _hub_shards(root, split, "VQA-RAD", VQA_RAD_HUB)


def list_vqa_rad(root: Path, split: str = "test", layout: str = "auto") -> list[Path]:
    """The files ``load_vqa_rad`` reads (its ``files``), without reading them."""
    return _vqa_rad_files(root, split, layout)[1]


@LOADERS.register("vqa_rad")
@declare_options(split=Option((str,), choices=("train", "test")),
                 layout=Option((str,), choices=("auto", "osf", "hub")))
@declare_files(list_vqa_rad)
def load_vqa_rad(root: Path, split: str = "test", layout: str = "auto") -> LoadedDataset:
    """VQA-RAD from the OSF release (``VQA_RAD Dataset Public.json`` + ``VQA_RAD Image
    Folder/``; test = ``phrase_type`` test_freeform/test_para, ids = ``qid``) or from the
    ``flaviagiammarino/vqa-rad`` Hub files (``data/<split>-*.parquet``, ids ``split/row``).
    ``layout``: ``osf``, ``hub`` or ``auto`` (OSF when its JSON is there)."""
    found, _ = _vqa_rad_files(root, split, layout)
    if found == "osf":
        return _load_vqa_rad_osf(root, split)
    return _load_hub_parquet(root, split, "VQA-RAD", VQA_RAD_HUB)


def _load_vqa_rad_osf(root: Path, split: str) -> LoadedDataset:
    path = root / VQA_RAD_JSON
    loaded = LoadedDataset(files=[path])
    rows = _json_list(path, loaded)
    for index, row in enumerate(rows):
        where = f"{path} item {index}"
        if not isinstance(row, dict):
            loaded.items.append(SampleError(f"{split}/item{index}", where, "not a JSON object"))
            continue
        phrase = str(row.get("phrase_type", ""))
        if phrase.startswith("test") != (split == "test"):
            continue  # the other split
        qid = row.get("qid")
        sample_id = str(qid) if qid not in (None, "") else f"{split}/item{index}"
        meta: dict[str, Any] = {"split": split, "phrase_type": phrase,
                                "answer_type_raw": row.get("answer_type"),
                                "image_organ": row.get("image_organ"),
                                "question_type": row.get("question_type")}
        try:
            if qid in (None, ""):
                raise ValueError("missing 'qid'")
            question, answer = _text(row, "question"), _text(row, "answer")
            image = _image_path(root, VQA_RAD_IMAGES, _text(row, "image_name"), where)
            meta["answer_type"] = _yes_no_type(answer)
            loaded.items.append(Sample(id=sample_id, question=question, images=(image,),
                                       target=answer, meta=meta))
        except ValueError as exc:
            loaded.items.append(SampleError(sample_id, where, str(exc), meta))
    return loaded


def _json_list(path: Path, loaded: LoadedDataset) -> list[Any]:
    try:
        rows = loads_json(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        loaded.items.append(SampleError(f"{path.stem}/*", str(path), f"unreadable JSON: {exc}"))
        return []
    if not isinstance(rows, list):
        loaded.items.append(SampleError(f"{path.stem}/*", str(path), "expected a JSON list"))
        return []
    return rows


# --- SLAKE ---------------------------------------------------------------------------------------

def _slake_file(root: Path, split: str) -> Path:
    expected = f"Slake1.0/{split}.json and Slake1.0/imgs/ (as unzipped from Slake.zip)"
    require_dir(root, "SLAKE", expected)
    path = root / f"{split}.json"
    if not path.is_file():
        raise _missing("SLAKE", root, expected)
    return path


def list_slake(root: Path, split: str = "test",
               languages: Iterable[str] = ("en",)) -> list[Path]:
    """The file ``load_slake`` reads (its ``files``), without reading it."""
    return [_slake_file(root, split)]


@LOADERS.register("slake")
@declare_options(split=Option((str,), choices=("train", "validation", "test")),
                 languages=Option((list,), items=(str,), choices=("en", "zh")))
@declare_files(list_slake)
def load_slake(root: Path, split: str = "test",
               languages: Iterable[str] = ("en",)) -> LoadedDataset:
    """SLAKE 1.0 (``Slake1.0/<split>.json`` + ``imgs/<img_name>``); ids are the ``qid``s.
    Papers report the English questions (``q_lang == "en"``), the default."""
    path = _slake_file(root, split)
    wanted = set(languages)
    loaded = LoadedDataset(files=[path])
    for index, row in enumerate(_json_list(path, loaded)):
        where = f"{path} item {index}"
        if not isinstance(row, dict):
            loaded.items.append(SampleError(f"{split}/item{index}", where, "not a JSON object"))
            continue
        lang = row.get("q_lang")
        if not isinstance(lang, str):
            loaded.items.append(SampleError(f"{split}/item{index}", where,
                                            f"q_lang {lang!r} is not a language code"))
            continue
        if lang not in wanted:
            continue
        qid = row.get("qid")
        sample_id = str(qid) if qid not in (None, "") else f"{split}/item{index}"
        meta: dict[str, Any] = {"split": split, "q_lang": row.get("q_lang"),
                                "modality": row.get("modality"),
                                "content_type": row.get("content_type"),
                                "location": row.get("location"),
                                "answer_type_raw": row.get("answer_type")}
        try:
            if qid in (None, ""):
                raise ValueError("missing 'qid'")
            raw_type = str(row.get("answer_type", "")).strip().upper()
            if raw_type not in ("OPEN", "CLOSED"):
                raise ValueError(f"answer_type {row.get('answer_type')!r} is neither OPEN nor "
                                 "CLOSED")
            meta["answer_type"] = raw_type.lower()
            question, answer = _text(row, "question"), _text(row, "answer")
            image = _image_path(root, "imgs", _text(row, "img_name"), where)
            loaded.items.append(Sample(id=sample_id, question=question, images=(image,),
                                       target=answer, meta=meta))
        except ValueError as exc:
            loaded.items.append(SampleError(sample_id, where, str(exc), meta))
    return loaded


# --- PathVQA -------------------------------------------------------------------------------------

PATHVQA_HUB = "flaviagiammarino/path-vqa"


def list_pathvqa(root: Path, split: str = "test") -> list[Path]:
    """The shards ``load_pathvqa`` reads (its ``files``), without reading them."""
    require_dir(root, "PathVQA", f"data/{split}-*.parquet (the {PATHVQA_HUB} dataset repo)")
    return _hub_shards(root, split, "PathVQA", PATHVQA_HUB)


@LOADERS.register("pathvqa")
@declare_options(split=Option((str,), choices=("train", "validation", "test")))
@declare_files(list_pathvqa)
def load_pathvqa(root: Path, split: str = "test") -> LoadedDataset:
    """PathVQA from the ``flaviagiammarino/path-vqa`` Hub files (``data/<split>-*.parquet``).
    The original release stores its QA as Python pickles, which are not read (unpickling runs
    code from the file)."""
    require_dir(root, "PathVQA", f"data/{split}-*.parquet (the {PATHVQA_HUB} dataset repo)")
    return _load_hub_parquet(root, split, "PathVQA", PATHVQA_HUB)


# --- PMC-VQA -------------------------------------------------------------------------------------

PMC_IMAGE_FOLDERS = ("figures", "images")
_CHOICE_PREFIX = re.compile(r"^\s*([A-D])\s*[:.]\s*")


def _pmc_file(root: Path, file: str) -> Path:
    expected = (f"PMC-VQA/{file} and the unzipped figures (PMC-VQA/figures/ or "
                "PMC-VQA/images/), as in the xmcmic/PMC-VQA dataset repo")
    require_dir(root, "PMC-VQA", expected)
    path = resolve_inside(root, file, "pmc_vqa option 'file'")
    if not path.is_file():
        raise _missing("PMC-VQA", root, expected)
    return path


def list_pmc_vqa(root: Path, file: str = "test_2.csv") -> list[Path]:
    """The file ``load_pmc_vqa`` reads (its ``files``), without reading it."""
    return [_pmc_file(root, file)]


@LOADERS.register("pmc_vqa")
@declare_options(file=Option((str,)))
@declare_files(list_pmc_vqa)
def load_pmc_vqa(root: Path, file: str = "test_2.csv") -> LoadedDataset:
    """PMC-VQA (``xmcmic/PMC-VQA``): a CSV (v2 ``test_2.csv``; v1 ``test.csv`` /
    ``test_clean.csv``) with ``Figure_path, Question, Choice A..D`` and the answer as
    ``Answer_label`` (a letter) or ``Answer``/``Anwser`` (a letter, "B:text" or the text).
    Images are looked up in ``figures/`` then ``images/``. Ids are ``<file stem>/<row>``."""
    path = _pmc_file(root, file)
    loaded = LoadedDataset(files=[path])
    try:
        with open(path, encoding="utf-8-sig", newline="") as fh:  # a BOM is common
            rows = list(csv.DictReader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        loaded.items.append(SampleError(f"{path.stem}/*", str(path), f"unreadable CSV: {exc}"))
        return loaded
    for index, row in enumerate(rows):
        sample_id, where = f"{path.stem}/{index}", f"{path} row {index + 2}"
        meta = {"split": path.stem}
        try:
            options = _pmc_options(row)
            target = _pmc_answer(row, options)
            image = _pmc_image(root, _text(row, "Figure_path"), where)
            loaded.items.append(Sample(id=sample_id, question=_text(row, "Question"),
                                       images=(image,), options=options, target=target,
                                       meta={**meta, "answer_text": options[target]}))
        except ValueError as exc:
            loaded.items.append(SampleError(sample_id, where, str(exc), meta))
    return loaded


def _pmc_options(row: dict[str, Any]) -> dict[str, str]:
    options: dict[str, str] = {}
    for letter in "ABCD":
        raw = row.get(f"Choice {letter}")
        if raw is None or not str(raw).strip():
            raise ValueError(f"missing or empty column 'Choice {letter}'")
        match = _CHOICE_PREFIX.match(raw)
        if match and match.group(1) != letter:
            raise ValueError(f"'Choice {letter}' is labelled {match.group(1)!r}: {raw!r}")
        options[letter] = raw[match.end():].strip() if match else raw.strip()
    return options


def _pmc_answer(row: dict[str, Any], options: dict[str, str]) -> str:
    label = str(row.get("Answer_label") or "").strip()
    if label:
        if label not in options:
            raise ValueError(f"Answer_label {label!r} is not one of A, B, C, D")
        return label
    raw = str(row.get("Answer") or row.get("Anwser") or "").strip()
    if not raw:
        raise ValueError("no answer: none of Answer_label, Answer, Anwser is given")
    if raw in options:
        return raw
    match = _CHOICE_PREFIX.match(raw)
    if match:
        return match.group(1)
    found = [k for k, v in options.items() if normalize(v) == normalize(raw)]
    if len(found) != 1:
        raise ValueError(f"answer {raw!r} is not among the choices {list(options.values())}")
    return found[0]


def _pmc_image(root: Path, name: str, where: str) -> ImageSource:
    candidates = [_image_path(root, folder, name, where) for folder in PMC_IMAGE_FOLDERS]
    for source in candidates:
        if source.path is not None and source.path.is_file():
            return source
    raise ValueError(f"image {name!r} not found in "
                     f"{' or '.join(f + '/' for f in PMC_IMAGE_FOLDERS)}")


# --- prompts (MedEvalKit's utils/question_formats.py) --------------------------------------------

YES_NO_INSTRUCTION = "Please output 'yes' or 'no'(no extra output)."
OPEN_INSTRUCTION = "Please answer the question concisely."
CLOSED_INSTRUCTION = "Answer the question using a single word or phrase."
_ZH = {YES_NO_INSTRUCTION: "请输出'是'或'否'(不要有任何其它输出)。",
       OPEN_INSTRUCTION: "请简要回答该问题。",
       CLOSED_INSTRUCTION: "请用一个单词或者短语回答该问题。"}


@PROMPT_BUILDERS.register("medvqa_yes_no")
def yes_no_prompt(sample: Sample) -> str:
    """VQA-RAD / PathVQA (MedEvalKit): a yes/no instruction where the answer is yes/no, else
    "answer concisely" (so the prompt reveals the question kind, as in that protocol)."""
    kind = CLOSED if normalize(sample.target) in YES_NO else OPEN
    return f"{sample.question}\n{YES_NO_INSTRUCTION if kind == CLOSED else OPEN_INSTRUCTION}"


@PROMPT_BUILDERS.register("slake")
def slake_prompt(sample: Sample) -> str:
    """SLAKE (MedEvalKit): closed → single word or phrase; open → concise; Chinese questions get
    the Chinese instructions."""
    text = CLOSED_INSTRUCTION if sample.meta.get("answer_type") == CLOSED else OPEN_INSTRUCTION
    if sample.meta.get("q_lang") == "zh":
        text = _ZH[text]
    return f"{sample.question}\n{text}"

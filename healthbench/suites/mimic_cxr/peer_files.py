"""Loaders for the reference files behind published MIMIC-CXR report-F1 tables.

Each peer scores its own reference set, so reproducing a table means reading that peer's file
the way the peer reads it (protocols.py has the table of protocols):

* ``llava_rad_findings``: LLaVA-Rad's curated findings file (PhysioNet "LLaVA-Rad MIMIC-CXR
  Annotations", ``chat_test_MIMIC_CXR_all_gpt4extract_rulebased_v1.json``), read as
  microsoft/LLaVA-Rad ``llava/utils.py`` ``data_loader_mimic_reason_findings(path, "test")``:
  rows whose ``generate_method`` is ``rule-based``, whose findings
  (``conversations[1].value``) are a string and whose ``view`` is AP or PA; ``image`` loses a
  leading ``mimic/``; the prompt names the row's ``reason`` (indication) when it has one. The
  references are used verbatim with no character cut (``rrg_eval`` run.py/chexbert.py).
* ``unix_test_data``: UniX's ``eval/data/understanding/test_data.json`` (ZrH42/UniX), read as
  ``eval/base/dataset.py`` reads it: the ``user`` turn (``<image>`` removed, as
  ``eval/base/worker.py``) is the prompt, the ``assistant`` turn the reference, labelled
  verbatim, ``FINDINGS:`` prefix included, after ``strip()`` and cut to 512 characters
  (``eval/und_metrics/metrics_clinical.py``), exactly what the ``unix`` protocol does to the
  generated text.

Both expect the file inside the MIMIC-CXR-JPG folder (next to ``files/``), since their image
paths are ``files/pXX/...`` relative to it. Rows the peer itself leaves out (other views, other
generation methods, no findings) are left out here too, so the sample set is the peer's; a
row that the peer would crash on (no image, no turns) is a SampleError naming file and row.

Known peer behaviour not reproduced (documented in docs/datasets.md): UniX's metric script drops
rows whose generated text is empty after ``strip()``, and writes generations through a CSV in
which an empty cell reads back as the string ``"nan"``; healthbench labels an empty generation
as empty text and keeps the row.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Mapping

from healthbench.core.catalog import LOADERS
from healthbench.core.types import ImageSource, Sample, SampleError
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
from healthbench.suites.mimic_cxr.loader import _attach_labeler_labels, _ordered
from healthbench.suites.mimic_cxr.protocols import prepare_text

LLAVA_RAD_FILE = "chat_test_MIMIC_CXR_all_gpt4extract_rulebased_v1.json"
UNIX_FILE = "test_data.json"
LLAVA_RAD_VIEWS = ("AP", "PA")


#: Turns one row of a peer file into (sample, prepared reference text); None for a row the peer
#: itself leaves out; ValueError or UnsafePathError for a row the peer would crash on.
RowReader = Callable[[Path, int, Any], "tuple[Sample, str] | None"]


def _peer_file(root: Path, file: str, what: str) -> Path:
    require_dir(root, what, f"{root}/{file} next to MIMIC-CXR-JPG's files/ folder")
    path = resolve_inside(root, file, f"dataset option file={file!r}")
    if not path.is_file():
        raise DatasetMissingError(f"{what} not found at {path}. Put the peer's file in the "
                                  "MIMIC-CXR-JPG folder (next to files/); healthbench never "
                                  "downloads data.")
    return path


def _json_rows(root: Path, file: str, what: str) -> tuple[Path, list[Any] | SampleError]:
    """The file's rows, or one file-level SampleError when it is not a JSON list."""
    path = _peer_file(root, file, what)
    try:
        rows = loads_json(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        return path, SampleError(f"{path.stem}/*", str(path),
                                 f"not a JSON file ({getattr(exc, 'msg', exc)})")
    if not isinstance(rows, list):
        return path, SampleError(f"{path.stem}/*", str(path), "expected a JSON list of rows")
    return path, rows


def _load_rows(root: Path, file: str, what: str, read_row: RowReader, labeler: str,
               labeler_args: Mapping[str, Any] | None, keep_text: bool) -> LoadedDataset:
    """The row loop both peer files share: each row through ``read_row``, a bad row becomes a
    SampleError naming file and row, then the references are labelled in one batch, in file
    order."""
    path, rows = _json_rows(root, file, what)
    if isinstance(rows, SampleError):
        return LoadedDataset(items=[rows], files=[path])
    done: list[tuple[int, Sample | SampleError]] = []
    pending: list[tuple[int, Sample, str]] = []
    for n, row in enumerate(rows):
        try:
            read = read_row(path, n, row)
        except (ValueError, UnsafePathError) as exc:
            done.append((n, SampleError(f"{path.stem}/{n}", f"{path} row {n}", str(exc))))
            continue
        if read is not None:
            pending.append((n, *read))
    labelled = _attach_labeler_labels([(s, t) for _, s, t in pending], labeler, labeler_args,
                                      None, keep_text)
    done.extend((n, item) for (n, _, _), item in zip(pending, labelled))
    return LoadedDataset(items=_ordered(done), files=[path])


def llava_rad_prompt(reason: Any) -> str:
    """LLaVA-Rad's test prompt (``data_loader_mimic_reason_findings``), without ``<image>``."""
    if reason is not None:
        return ("Provide a description of the findings in the radiology image given the "
                f"following indication: {str(reason).replace(chr(10), ' ')}")
    return "Provide a description of the findings in the radiology image."


def _llava_rad_row(root: Path, split: str, path: Path, n: int,
                   row: Any) -> tuple[Sample, str] | None:
    """One row of LLaVA-Rad's file, kept as its test loader keeps it."""
    if not isinstance(row, Mapping):
        raise ValueError("row is not an object")
    turns = row.get("conversations")
    if not (isinstance(turns, list) and len(turns) > 1 and isinstance(turns[1], Mapping)):
        raise ValueError("row needs conversations[0] (prompt) and [1] (findings)")
    if split == "test" and row.get("generate_method") != "rule-based":
        return None  # LLaVA-Rad's test loader keeps rule-based extractions only
    findings = turns[1].get("value")
    if not isinstance(findings, str) or row.get("view") not in LLAVA_RAD_VIEWS:
        return None  # no findings, or not a frontal view: not in LLaVA-Rad's test set
    image = row.get("image")
    if not isinstance(image, str) or not image:
        raise ValueError("missing 'image'")
    image = image[len("mimic/"):] if image.startswith("mimic/") else image
    source = ImageSource(path=resolve_inside(root, image, f"{path} row {n}"))
    raw_id = row.get("id")
    sample = Sample(id=str(raw_id) if raw_id not in (None, "") else f"{path.stem}/{n}",
                    question=llava_rad_prompt(row.get("reason")), images=(source,),
                    meta={"view_position": row.get("view"), "source_file": path.name})
    return sample, prepare_text(findings, "llava-rad")


LLAVA_RAD_WHAT = "LLaVA-Rad MIMIC-CXR findings file"


def list_llava_rad_findings(root: Path, file: str = LLAVA_RAD_FILE, split: str = "test",
                            labeler: str = "chexpert_rules",
                            labeler_args: Mapping[str, Any] | None = None,
                            keep_reference_text: bool = False) -> list[Path]:
    """The file ``load_llava_rad_findings`` reads (its ``files``), without reading it."""
    return [_peer_file(root, file, LLAVA_RAD_WHAT)]


@LOADERS.register("llava_rad_findings")
@declare_options(file=Option((str,)), split=Option((str,)), labeler=Option((str,)),
                 labeler_args=Option((dict, type(None))), keep_reference_text=Option((bool,)))
@declare_files(list_llava_rad_findings)
def load_llava_rad_findings(root: Path, file: str = LLAVA_RAD_FILE, split: str = "test",
                            labeler: str = "chexpert_rules",
                            labeler_args: Mapping[str, Any] | None = None,
                            keep_reference_text: bool = False) -> LoadedDataset:
    """LLaVA-Rad's curated findings file: its test selection, its prompts, verbatim findings."""
    return _load_rows(root, file, LLAVA_RAD_WHAT,
                      lambda path, n, row: _llava_rad_row(root, split, path, n, row),
                      labeler, labeler_args, keep_reference_text)


def _turn(messages: list[Any], role: str) -> str:
    """The first ``role`` turn's content, as UniX's ``next(msg for msg in messages if …)``."""
    for message in messages:
        if isinstance(message, Mapping) and message.get("role") == role:
            content = message.get("content")
            if isinstance(content, str):
                return content
            raise ValueError(f"the {role} turn's content is not a string")
    raise ValueError(f"no {role} turn in 'messages'")


def _unix_row(root: Path, path: Path, n: int, row: Any) -> tuple[Sample, str]:
    """One row of UniX's test_data.json, read as UniX's ``eval/base/dataset.py`` reads it."""
    if not isinstance(row, Mapping) or not isinstance(row.get("messages"), list):
        raise ValueError("row needs 'messages' (user and assistant turns)")
    prompt = _turn(row["messages"], "user").replace("<image>", "")
    reference = _turn(row["messages"], "assistant")
    images = row.get("images")
    if not (isinstance(images, list) and images and isinstance(images[0], str)):
        raise ValueError("row needs 'images' with a relative image path")
    source = ImageSource(path=resolve_inside(root, images[0], f"{path} row {n}"))
    if not reference.strip():
        raise ValueError("empty reference (UniX's metric script drops such rows)")
    sample = Sample(id=f"{path.stem}/{n}", question=prompt, images=(source,),
                    meta={"image": images[0], "source_file": path.name})
    return sample, prepare_text(reference, "unix")


UNIX_WHAT = "UniX test_data.json"


def list_unix_test_data(root: Path, file: str = UNIX_FILE, labeler: str = "chexpert_rules",
                        labeler_args: Mapping[str, Any] | None = None,
                        keep_reference_text: bool = False) -> list[Path]:
    """The file ``load_unix_test_data`` reads (its ``files``), without reading it."""
    return [_peer_file(root, file, UNIX_WHAT)]


@LOADERS.register("unix_test_data")
@declare_options(file=Option((str,)), labeler=Option((str,)),
                 labeler_args=Option((dict, type(None))), keep_reference_text=Option((bool,)))
@declare_files(list_unix_test_data)
def load_unix_test_data(root: Path, file: str = UNIX_FILE, labeler: str = "chexpert_rules",
                        labeler_args: Mapping[str, Any] | None = None,
                        keep_reference_text: bool = False) -> LoadedDataset:
    """UniX's test_data.json: per-row prompts, references labelled verbatim (prefix kept),
    stripped and cut to 512 characters as UniX cuts both sides."""
    return _load_rows(root, file, UNIX_WHAT,
                      lambda path, n, row: _unix_row(root, path, n, row),
                      labeler, labeler_args, keep_reference_text)

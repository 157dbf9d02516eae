"""MIMIC-CXR findings generation scored by CheXpert labels (the UniX and LLaVA-Rad protocols,
protocols.py), two formats.

**Official layout** (``format: mimic_cxr``): MIMIC-CXR-JPG with the MIMIC-CXR free-text reports
unzipped into the same ``files/`` tree::

    mimic-cxr-jpg/
      mimic-cxr-2.0.0-split.csv[.gz]        dicom_id, study_id, subject_id, split
      mimic-cxr-2.0.0-chexpert.csv[.gz]     subject_id, study_id, 14 label columns (alphabetical)
      mimic-cxr-2.0.0-metadata.csv[.gz]     optional: dicom_id, …, ViewPosition (for views/groups)
      files/p10/p10000032/s50414267/<dicom_id>.jpg
      files/p10/p10000032/s50414267.txt     the study's report (from mimic-cxr-reports.zip)

One sample per image of the chosen split; id ``p<subject>/s<study>/<dicom_id>`` (the dataset's
own ids). The reference text is a report section (``section``: findings by default, as UniX's
"FINDINGS: …" references; or impression, findings_or_impression, full).

**Simple table** (``format: cxr_findings``): a JSONL, JSON list or CSV file of rows with ``image``
(relative path) and ``findings`` (reference text), optional ``id``; UniX's ``test_data.json``
rows (``images[0]`` and the assistant turn ``messages[1].content``) are read too, with the
``FINDINGS:`` prefix removed: healthbench's reading, not UniX's (``unix_test_data`` in
peer_files.py reads them as UniX does, for UniX's numbers).

**Reference labels** (``reference_labels`` option): ``labeler`` (default; the named labeler run on
the reference text: the protocol behind the published numbers) or ``csv`` (the study's row in
``mimic-cxr-2.0.0-chexpert.csv``; ``csv_uncertain`` says what -1.0 becomes: ``uncertain`` (the
metric's convention then decides), ``positive``, or ``negative``). ``target`` is
``{"labels", "label_source"}`` (plus ``"findings"``, the reference text, only with
``keep_reference_text: true``: MIMIC-CXR is credentialed data, and samples.jsonl feeds tables and
the leaderboard's sample browser, so report text is left out by default); labels are codes in
CHEXPERT_LABELS order.

A study whose report or section is missing, whose image path is unsafe, or whose CSV row is
absent or malformed becomes a SampleError naming file and row: counted, never dropped.
"""
from __future__ import annotations

import csv
import gzip
import io
import re
from pathlib import Path
from typing import Any, Iterable, Mapping

from healthbench.core.catalog import LOADERS
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
from healthbench.suites.mimic_cxr.labels import (
    CHEXPERT_LABELS,
    CSV_CODES,
    NEGATIVE,
    POSITIVE,
    UNCERTAIN,
    get_labeler,
    truncate,
)
from healthbench.core.types import ImageSource, Sample, SampleError

SPLIT_CSV = "mimic-cxr-2.0.0-split.csv"
CHEXPERT_CSV = "mimic-cxr-2.0.0-chexpert.csv"
METADATA_CSV = "mimic-cxr-2.0.0-metadata.csv"
SECTIONS = ("findings", "impression", "findings_or_impression", "full")
EXPECTED = (f"mimic-cxr-jpg/{SPLIT_CSV}[.gz], {CHEXPERT_CSV}[.gz] (optional {METADATA_CSV}"
            "[.gz]) and files/pXX/p<subject>/s<study>/<dicom_id>.jpg with each study's report at "
            "files/pXX/p<subject>/s<study>.txt (MIMIC-CXR-JPG 2.0.0 plus mimic-cxr-reports.zip)")
_CSV_UNCERTAIN = {"uncertain": UNCERTAIN, "positive": POSITIVE, "negative": NEGATIVE}
_SECTION_HEAD = re.compile(r"^\s*([A-Z][A-Z /&()-]{2,}):", re.M)


# --------------------------------------------------------------------------- reports


def report_sections(text: str) -> dict[str, str]:
    """Upper-case ``NAME:`` headings of a MIMIC-CXR report → lower-case name → section text."""
    heads = list(_SECTION_HEAD.finditer(text))
    out: dict[str, str] = {}
    for i, head in enumerate(heads):
        end = heads[i + 1].start() if i + 1 < len(heads) else len(text)
        body = re.sub(r"\s+", " ", text[head.end():end]).strip()
        out.setdefault(head.group(1).strip().lower(), body)
    return out


def reference_text(report: str, section: str) -> str | None:
    """The chosen section of a report (None when absent or empty)."""
    if section == "full":
        return re.sub(r"\s+", " ", report).strip() or None
    parts = report_sections(report)
    if section == "findings_or_impression":
        return parts.get("findings") or parts.get("impression") or None
    return parts.get(section) or None


# --------------------------------------------------------------------------- csv helpers


def _find_csv(root: Path, name: str, required: bool) -> Path | None:
    for candidate in (root / name, root / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    if required:
        raise DatasetMissingError(f"MIMIC-CXR: {name}[.gz] not found in {root}. Expected "
                                  f"{EXPECTED}. healthbench never downloads data.")
    return None


def _read_csv(path: Path) -> list[dict[str, str]]:
    raw = path.read_bytes()
    if path.suffix == ".gz":
        raw = gzip.decompress(raw)
    try:
        return list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise ValueError(f"{path}: unreadable CSV ({exc})") from None


def _need_columns(path: Path, rows: list[dict[str, str]], columns: Iterable[str]) -> None:
    have = set(rows[0]) if rows else set()
    missing = [c for c in columns if c not in have]
    if rows and missing:
        raise ValueError(f"{path}: missing column(s) {missing}; found {sorted(map(str, have))}")


def csv_labels(row: Mapping[str, str], csv_uncertain: str) -> dict[str, int]:
    """A chexpert.csv row → codes; ValueError naming the column of a malformed cell."""
    out = {}
    for name in CHEXPERT_LABELS:
        cell = (row.get(name) or "").strip()
        if cell not in CSV_CODES:
            raise ValueError(f"column {name!r} has {cell!r}; expected 1.0, 0.0, -1.0 or empty")
        code = CSV_CODES[cell]
        out[name] = _CSV_UNCERTAIN[csv_uncertain] if code == UNCERTAIN else code
    return out


# --------------------------------------------------------------------------- shared


def _check_options(section: str, reference_labels: str, csv_uncertain: str) -> None:
    if section not in SECTIONS:
        raise ValueError(f"mimic_cxr: section must be one of {', '.join(SECTIONS)}, "
                         f"got {section!r}")
    if reference_labels not in ("labeler", "csv"):
        raise ValueError(f"mimic_cxr: reference_labels must be 'labeler' or 'csv', got "
                         f"{reference_labels!r}")
    if csv_uncertain not in _CSV_UNCERTAIN:
        raise ValueError(f"mimic_cxr: csv_uncertain must be one of "
                         f"{', '.join(_CSV_UNCERTAIN)}, got {csv_uncertain!r}")


def _target(text: str, labels: dict[str, int], source: str, keep_text: bool) -> dict[str, Any]:
    target: dict[str, Any] = {"labels": labels, "label_source": source}
    if keep_text:
        target["findings"] = text
    return target


def _attach_labeler_labels(pending: list[tuple[Sample, str]], labeler: str,
                           labeler_args: Mapping[str, Any] | None,
                           max_chars: int | None, keep_text: bool) -> list[Sample | SampleError]:
    """Label every reference text in one batch and put the codes into each target."""
    if not pending:
        return []
    texts = [truncate(text, max_chars) for _, text in pending]
    codes = get_labeler(labeler, labeler_args).label(texts)
    return [Sample(id=s.id, question=s.question, images=s.images, options=s.options,
                   target=_target(text, c, labeler, keep_text),
                   meta=s.meta)
            for (s, text), c in zip(pending, codes)]


def _ordered(items: list[tuple[int, Sample | SampleError]]) -> list[Sample | SampleError]:
    return [item for _, item in sorted(items, key=lambda pair: pair[0])]


# --------------------------------------------------------------------------- official layout


def _mimic_files(root: Path, section: str, reference_labels: str, views: Iterable[str] | None,
                 csv_uncertain: str) -> tuple[Path, Path | None, Path | None]:
    """The split, chexpert and metadata CSVs found (the last two None when absent and not
    needed by the options). The report texts are not among the files: they are read per study
    from ``files/`` (see ``LoadedDataset.files``)."""
    _check_options(section, reference_labels, csv_uncertain)
    require_dir(root, "MIMIC-CXR-JPG", EXPECTED)
    split_path = _find_csv(root, SPLIT_CSV, required=True)
    assert split_path is not None  # required=True raises instead
    return (split_path, _find_csv(root, CHEXPERT_CSV, required=reference_labels == "csv"),
            _find_csv(root, METADATA_CSV, required=views is not None))


def list_mimic_cxr(root: Path, split: str = "test", views: Iterable[str] | None = None,
                   section: str = "findings", reference_labels: str = "labeler",
                   labeler: str = "chexpert_rules",
                   labeler_args: Mapping[str, Any] | None = None,
                   max_chars: int | None = None, csv_uncertain: str = "uncertain",
                   keep_reference_text: bool = False) -> list[Path]:
    """The CSVs ``load_mimic_cxr`` reads (its ``files``), without reading them."""
    return [p for p in _mimic_files(root, section, reference_labels, views, csv_uncertain) if p]


@LOADERS.register("mimic_cxr")
@declare_options(split=Option((str,), choices=("train", "validate", "test")),
                 views=Option((list, type(None)), items=(str,)),
                 section=Option((str,), choices=SECTIONS),
                 reference_labels=Option((str,), choices=("labeler", "csv")),
                 labeler=Option((str,)), labeler_args=Option((dict, type(None))),
                 max_chars=Option((int, type(None))),
                 csv_uncertain=Option((str,), choices=tuple(_CSV_UNCERTAIN)),
                 keep_reference_text=Option((bool,)))
@declare_files(list_mimic_cxr)
def load_mimic_cxr(root: Path, split: str = "test", views: Iterable[str] | None = None,
                   section: str = "findings", reference_labels: str = "labeler",
                   labeler: str = "chexpert_rules",
                   labeler_args: Mapping[str, Any] | None = None,
                   max_chars: int | None = None, csv_uncertain: str = "uncertain",
                   keep_reference_text: bool = False) -> LoadedDataset:
    """One sample per image of ``split`` (``views``: keep only these ViewPositions)."""
    split_path, chexpert_path, metadata_path = _mimic_files(root, section, reference_labels,
                                                            views, csv_uncertain)
    dataset = LoadedDataset(files=[p for p in (split_path, chexpert_path, metadata_path) if p])

    view_of: dict[str, str] = {}
    labels_of: dict[tuple[str, str], tuple[int, dict[str, str]]] = {}
    try:  # an unreadable CSV or a missing column is one file-level error, not a crash
        split_rows = _read_csv(split_path)
        _need_columns(split_path, split_rows, ("dicom_id", "study_id", "subject_id", "split"))
        if metadata_path is not None:
            meta_rows = _read_csv(metadata_path)
            _need_columns(metadata_path, meta_rows, ("dicom_id", "ViewPosition"))
            view_of = {r["dicom_id"]: (r.get("ViewPosition") or "").strip() for r in meta_rows}
        if chexpert_path is not None and reference_labels == "csv":
            label_rows = _read_csv(chexpert_path)
            _need_columns(chexpert_path, label_rows, ("subject_id", "study_id",
                                                      *CHEXPERT_LABELS))
            labels_of = {((r["subject_id"] or "").strip(), (r["study_id"] or "").strip()):
                         (i + 2, r) for i, r in enumerate(label_rows)}
    except ValueError as exc:
        dataset.items.append(SampleError(f"{split}/*", str(root), str(exc)))
        return dataset
    wanted_views = None if views is None else {str(v) for v in views}

    done: list[tuple[int, Sample | SampleError]] = []
    pending: list[tuple[int, Sample, str]] = []
    reports: dict[Path, str | None] = {}
    for line, row in enumerate(split_rows, start=2):  # line 1 is the header
        if (row.get("split") or "").strip() != split:
            continue
        dicom = (row.get("dicom_id") or "").strip()
        subject = (row.get("subject_id") or "").strip()
        study = (row.get("study_id") or "").strip()
        sample_id = f"p{subject}/s{study}/{dicom}"
        where = f"{split_path} line {line}"
        view = view_of.get(dicom, "")
        if wanted_views is not None and view not in wanted_views:
            continue
        meta = {"subject_id": subject, "study_id": study, "dicom_id": dicom, "split": split,
                "view_position": view or None}
        if not (dicom and subject.isdigit() and study.isdigit()):
            done.append((line, SampleError(sample_id, where, "dicom_id, subject_id and "
                                           "study_id must be set (ids numeric)", meta)))
            continue
        study_dir = f"files/p{subject[:2]}/p{subject}"
        try:
            image = resolve_inside(root, f"{study_dir}/s{study}/{dicom}.jpg", where)
            report_path = resolve_inside(root, f"{study_dir}/s{study}.txt", where)
        except UnsafePathError as exc:
            done.append((line, SampleError(sample_id, where, str(exc), meta)))
            continue
        if report_path not in reports:
            try:
                reports[report_path] = report_path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                reports[report_path] = None
        report = reports[report_path]
        if report is None:
            done.append((line, SampleError(sample_id, where, f"report {report_path} is missing "
                                           "or unreadable", meta)))
            continue
        text = reference_text(report, section)
        if text is None:
            done.append((line, SampleError(sample_id, where, f"report {report_path} has no "
                                           f"{section.upper()} section", meta)))
            continue
        sample = Sample(id=sample_id, images=(ImageSource(path=image),), meta=meta)
        if reference_labels == "csv":
            found = labels_of.get((subject, study))
            if found is None:
                done.append((line, SampleError(sample_id, where, f"study s{study} has no row in "
                                               f"{chexpert_path}", meta)))
                continue
            try:
                codes = csv_labels(found[1], csv_uncertain)
            except ValueError as exc:
                done.append((line, SampleError(sample_id, f"{chexpert_path} line {found[0]}",
                                               str(exc), meta)))
                continue
            done.append((line, Sample(id=sample_id, images=sample.images, meta=meta,
                                      target=_target(text, codes, "chexpert.csv",
                                                     keep_reference_text))))
        else:
            pending.append((line, sample, text))
    labelled = _attach_labeler_labels([(s, t) for _, s, t in pending], labeler, labeler_args,
                                      max_chars, keep_reference_text)
    done.extend((line, item) for (line, _, _), item in zip(pending, labelled))
    dataset.items = _ordered(done)
    return dataset


# --------------------------------------------------------------------------- simple table


def _table_rows(path: Path) -> list[Any]:
    if path.suffix.lower() == ".csv":
        return _read_csv(path)
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".jsonl":
        rows: list[Any] = []
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                rows.append(loads_json(line))
            except ValueError as exc:  # not JSON, or a duplicate key
                rows.append(ValueError(f"line {n}: not JSON ({getattr(exc, 'msg', exc)})"))
        return rows
    data = loads_json(text)
    if not isinstance(data, list):
        raise ValueError(f"{path}: expected a JSON list of rows")
    return data


def _table_fields(row: Any) -> tuple[Any, Any, Any]:
    """(id, image, findings) of a simple row or a UniX ``test_data.json`` row."""
    if not isinstance(row, Mapping):
        raise ValueError("row is not an object")
    if "messages" in row and "images" in row:
        messages, images = row.get("messages"), row.get("images")
        if not (isinstance(messages, list) and len(messages) > 1 and isinstance(images, list)
                and images and isinstance(messages[1], Mapping)):
            raise ValueError("UniX row needs images[0] and an assistant turn messages[1]")
        answer = str(messages[1].get("content") or "")
        return row.get("id"), images[0], re.sub(r"^\s*FINDINGS:\s*", "", answer)
    return row.get("id"), row.get("image"), row.get("findings")


def _table_file(root: Path, file: str) -> Path:
    require_dir(root, "CXR findings table", f"{root}/{file}: rows of image and findings")
    path = resolve_inside(root, file, f"dataset option file={file!r}")
    if not path.is_file():
        raise DatasetMissingError(f"CXR findings table not found at {path}. Expected a JSONL, "
                                  "JSON list or CSV of rows with 'image' and 'findings'.")
    return path


def list_cxr_findings(root: Path, file: str = "test.jsonl", labeler: str = "chexpert_rules",
                      labeler_args: Mapping[str, Any] | None = None,
                      max_chars: int | None = None,
                      keep_reference_text: bool = False) -> list[Path]:
    """The table ``load_cxr_findings`` reads (its ``files``), without reading it."""
    return [_table_file(root, file)]


@LOADERS.register("cxr_findings")
@declare_options(file=Option((str,)), labeler=Option((str,)),
                 labeler_args=Option((dict, type(None))), max_chars=Option((int, type(None))),
                 keep_reference_text=Option((bool,)))
@declare_files(list_cxr_findings)
def load_cxr_findings(root: Path, file: str = "test.jsonl", labeler: str = "chexpert_rules",
                      labeler_args: Mapping[str, Any] | None = None,
                      max_chars: int | None = None,
                      keep_reference_text: bool = False) -> LoadedDataset:
    """Rows of (image, reference findings); reference labels from ``labeler``."""
    path = _table_file(root, file)
    done: list[tuple[int, Sample | SampleError]] = []
    pending: list[tuple[int, Sample, str]] = []
    try:
        table = _table_rows(path)
    except ValueError as exc:  # not UTF-8, not JSON, not a list: one file-level error
        return LoadedDataset(items=[SampleError(f"{path.stem}/*", str(path), str(exc))],
                             files=[path])
    for n, row in enumerate(table):
        where = f"{path} row {n}"
        try:
            if isinstance(row, Exception):
                raise row
            raw_id, image, findings = _table_fields(row)
            sample_id = str(raw_id) if raw_id not in (None, "") else f"{path.stem}/{n}"
            if not isinstance(image, str) or not image.strip():
                raise ValueError("missing or empty 'image'")
            if not isinstance(findings, str) or not findings.strip():
                raise ValueError("missing or empty 'findings'")
            source = ImageSource(path=resolve_inside(root, image, where))
        except (ValueError, UnsafePathError) as exc:
            done.append((n, SampleError(f"{path.stem}/{n}", where, str(exc))))
            continue
        pending.append((n, Sample(id=sample_id, images=(source,),
                                  meta={"source_file": path.name}), findings.strip()))
    labelled = _attach_labeler_labels([(s, t) for _, s, t in pending], labeler, labeler_args,
                                      max_chars, keep_reference_text)
    done.extend((n, item) for (n, _, _), item in zip(pending, labelled))
    return LoadedDataset(items=_ordered(done), files=[path])

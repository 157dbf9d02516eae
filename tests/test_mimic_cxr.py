"""MIMIC-CXR: official-layout fixture scored via replay, CSV references, the simple table."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from healthbench.data.paths import DatasetMissingError
from healthbench.suites.mimic_cxr.loader import (load_cxr_findings, load_mimic_cxr, reference_text)
from healthbench.run.evaluate import RunSpec, evaluate
from healthbench.suites.mimic_cxr.labels import CHEXPERT_LABELS, NEGATIVE, POSITIVE, UNCERTAIN
from healthbench.suites.mimic_cxr.metrics import f1_scores
from healthbench.run.runner import RunSettings
from healthbench.taskconfig.index import TaskIndex
from healthbench.core.types import SampleError

from helpers import write_png

REPORT = """                                 FINAL REPORT
 EXAMINATION:  CHEST (PA AND LAT)

 INDICATION:  ___ with cough.

 FINDINGS:
 {findings}

 IMPRESSION:
 {impression}
"""
# study → (subject, [(dicom_id, view)], findings or None for no FINDINGS section)
STUDIES = {
    "50000001": ("10000001", [("d1a", "PA"), ("d1b", "LATERAL")],
                 "Moderate cardiomegaly. Small left pleural effusion. No pneumothorax."),
    "50000002": ("10000002", [("d2", "PA")],
                 "Heart size is normal. Lungs are clear. No pleural effusion."),
    "50000003": ("11000003", [("d3", "AP")],
                 "Possible right lower lobe pneumonia. Small right pleural effusion."),
    "50000004": ("10000004", [("d4", "PA")], None),       # report has only an IMPRESSION
    "50000005": ("10000005", [("d5", "PA")], "MISSING"),  # no report file at all
}
CHEXPERT_ROWS = {  # study → cells; everything else empty
    "50000001": {"Cardiomegaly": "1.0", "Pleural Effusion": "1.0", "Pneumothorax": "0.0"},
    "50000002": {"No Finding": "1.0"},
    "50000003": {"Pneumonia": "-1.0", "Pleural Effusion": "1.0"},
    "50000004": {"Edema": "2.0"},                         # malformed cell
}


def _write_csv(path: Path, header: list[str], rows: list[list[str]]) -> None:
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)


def write_mimic(root: Path) -> Path:
    """``root/mimic-cxr-jpg`` in the MIMIC-CXR-JPG layout with reports, plus bad rows."""
    base = root / "mimic-cxr-jpg"
    split_rows, meta_rows = [], []
    for study, (subject, images, findings) in STUDIES.items():
        folder = base / "files" / f"p{subject[:2]}" / f"p{subject}"
        for n, (dicom, view) in enumerate(images):
            write_png(folder / f"s{study}" / f"{dicom}.jpg", seed=n)
            split_rows.append([dicom, study, subject, "test"])
            meta_rows.append([dicom, subject, study, view])
        if findings == "MISSING":
            continue
        text = REPORT.format(findings=findings or "", impression="No acute process.")
        if findings is None:
            text = text.replace(" FINDINGS:\n", "")
        (folder / f"s{study}.txt").write_text(text)
    split_rows.append(["d9", "59999999", "10000009", "train"])      # other split: not selected
    split_rows.append(["d8", "5000000x", "10000008", "test"])       # bad ids: an error row
    _write_csv(base / "mimic-cxr-2.0.0-split.csv", ["dicom_id", "study_id", "subject_id",
                                                    "split"], split_rows)
    _write_csv(base / "mimic-cxr-2.0.0-metadata.csv", ["dicom_id", "subject_id", "study_id",
                                                       "ViewPosition"], meta_rows)
    columns = sorted(CHEXPERT_LABELS)
    _write_csv(base / "mimic-cxr-2.0.0-chexpert.csv", ["subject_id", "study_id", *columns],
               [[STUDIES[s][0], s, *(cells.get(c, "") for c in columns)]
                for s, cells in CHEXPERT_ROWS.items()])
    return base


def run_replay(tmp_path: Path, task: str, responses: dict[str, str],
               data_root: Path | None = None) -> dict:
    saved = tmp_path / "responses.jsonl"
    saved.write_text("".join(json.dumps({"task": task, "id": i, "response": r}) + "\n"
                             for i, r in responses.items()))
    spec = RunSpec(model="replay", model_args={"path": str(saved)},
                   tasks=TaskIndex.build().resolve([task]), data_root=data_root or tmp_path,
                   output_path=tmp_path / "out", run_id="r",
                   settings=RunSettings(progress=False, workers=1))
    return evaluate(spec)["tasks"][task]


RESPONSES = {
    "p10000001/s50000001/d1a": "Mild cardiomegaly. No pleural effusion.",
    "p10000001/s50000001/d1b": STUDIES["50000001"][2],
    "p10000002/s50000002/d2": "Heart size is normal. No pleural effusion.",
    "p11000003/s50000003/d3": "Right lower lobe pneumonia. Small right pleural effusion.",
}


def test_official_layout_scored_through_replay_gives_the_expected_f1(tmp_path: Path) -> None:
    write_mimic(tmp_path)
    block = run_replay(tmp_path, "mimic_cxr_rules", RESPONSES)
    assert (block["n"], block["n_errors"], block["n_total"]) == (4, 3, 7)

    def value(name: str, group: str | None = None) -> float:
        where = block if group is None else block["groups"]["view_position"][group]
        return where["metrics"][name]["value"]

    # Reference (rule labels of the reference findings) vs prediction, by hand:
    #   d1a: ref Card+Eff, pred Card          → TP Card, FN Eff
    #   d1b: ref Card+Eff, pred Card+Eff      → TP 2
    #   d2:  ref No Finding, pred No Finding  → TP 1
    #   d3:  ref Pneumonia(uncertain)+Eff, pred Pneumonia+Eff
    #        → uncertain as negative: TP Eff, FP Pneumonia; as positive: TP 2
    assert value("chexpert_micro_f1_14_uneg") == pytest.approx(10 / 12)
    assert value("chexpert_micro_f1_14_upos") == pytest.approx(12 / 13)
    assert value("chexpert_micro_f1_5_uneg") == pytest.approx(8 / 9)
    assert value("chexpert_micro_f1_5_upos") == pytest.approx(8 / 9)
    # per label: Cardiomegaly 1, Effusion 4/5, No Finding 1, Pneumonia 0 (uneg) or 1 (upos)
    assert value("chexpert_macro_f1_14_uneg") == pytest.approx(2.8 / 14)
    assert value("chexpert_macro_f1_14_upos") == pytest.approx(3.8 / 14)
    assert value("chexpert_macro_f1_5_uneg") == pytest.approx(1.8 / 5)
    # per view: PA = d1a + d2 (TP 2, FN 1); the error rows are counted in their groups
    assert value("chexpert_micro_f1_14_uneg", "PA") == pytest.approx(4 / 5)
    assert value("chexpert_micro_f1_14_uneg", "LATERAL") == 1.0
    assert block["groups"]["view_position"]["PA"]["n_errors"] == 2
    records = [json.loads(line) for line in
               (tmp_path / "out/r/mimic_cxr_rules/samples.jsonl").read_text().splitlines()]
    errors = {r["id"]: r["error"] for r in records if r["error"]}
    assert "no FINDINGS section" in errors["p10000004/s50000004/d4"]
    assert "s50000005.txt is missing" in errors["p10000005/s50000005/d5"]
    assert "mimic-cxr-2.0.0-split.csv line" in errors["p10000008/s5000000x/d8"]
    d3 = next(r for r in records if r["id"] == "p11000003/s50000003/d3")
    assert d3["target"]["labels"]["Pneumonia"] == UNCERTAIN
    assert "findings" not in d3["target"]  # credentialed report text stays out by default
    assert d3["parsed"]["Pneumonia"] == POSITIVE
    assert list(d3["parsed"]) == list(CHEXPERT_LABELS)


def test_f1_matches_sklearn_micro_and_macro_with_zero_division_zero() -> None:
    from sklearn.metrics import f1_score

    rng = np.random.default_rng(3)
    for n in (1, 5, 40):
        y_true = (rng.random((n, 14)) < 0.2).astype(np.int64)
        y_pred = (rng.random((n, 14)) < 0.2).astype(np.int64)
        y_true[:, 3] = 0
        y_pred[:, 3] = 0  # a label nobody has: F1 0 in the macro mean
        micro, macro = f1_scores(y_true, y_pred)
        assert micro == pytest.approx(f1_score(y_true, y_pred, average="micro",
                                               zero_division=0))
        assert macro == pytest.approx(f1_score(y_true, y_pred, average="macro",
                                               zero_division=0))


def test_reference_labels_from_the_chexpert_csv_with_a_configurable_uncertain_policy(
        tmp_path: Path) -> None:
    base = write_mimic(tmp_path)
    for policy, expected in (("uncertain", UNCERTAIN), ("positive", POSITIVE),
                             ("negative", NEGATIVE)):
        items = load_mimic_cxr(base, reference_labels="csv", csv_uncertain=policy,
                               section="findings_or_impression").items
        by_id = {i.id: i for i in items}
        d3 = by_id["p11000003/s50000003/d3"]
        assert d3.target["label_source"] == "chexpert.csv"
        assert d3.target["labels"]["Pneumonia"] == expected
        assert d3.target["labels"]["Pleural Effusion"] == POSITIVE
        assert d3.target["labels"]["Edema"] == 0
    bad = by_id["p10000004/s50000004/d4"]  # has an impression now, but a malformed CSV cell
    assert isinstance(bad, SampleError)
    assert "mimic-cxr-2.0.0-chexpert.csv line 5" in bad.where and "'Edema'" in bad.message
    # ids are the dataset's own, in split-file order; the train row is not selected
    assert [i.id for i in items][:3] == ["p10000001/s50000001/d1a", "p10000001/s50000001/d1b",
                                         "p10000002/s50000002/d2"]
    assert not any("d9" in i.id for i in items)


def test_views_option_keeps_only_the_named_view_positions(tmp_path: Path) -> None:
    base = write_mimic(tmp_path)
    items = load_mimic_cxr(base, views=["PA", "AP"]).items
    assert "p10000001/s50000001/d1b" not in {i.id for i in items}
    assert {i.meta["view_position"] for i in items if not isinstance(i, SampleError)} == \
        {"PA", "AP"}


def test_report_sections_are_read_from_the_mimic_report_text() -> None:
    text = REPORT.format(findings="Heart size\n normal.", impression="No acute process.")
    assert reference_text(text, "findings") == "Heart size normal."
    assert reference_text(text, "impression") == "No acute process."
    assert reference_text(text.replace(" FINDINGS:\n", ""), "findings") is None
    assert reference_text(text.replace(" FINDINGS:\n", ""),
                          "findings_or_impression") == "No acute process."
    assert reference_text(text, "full").startswith("FINAL REPORT EXAMINATION:")


def test_missing_dataset_names_the_expected_files(tmp_path: Path) -> None:
    with pytest.raises(DatasetMissingError) as err:
        load_mimic_cxr(tmp_path / "mimic-cxr-jpg")
    assert "mimic-cxr-2.0.0-split.csv" in str(err.value) and "s<study>.txt" in str(err.value)
    (tmp_path / "mimic-cxr-jpg").mkdir()
    with pytest.raises(DatasetMissingError, match="mimic-cxr-2.0.0-split.csv"):
        load_mimic_cxr(tmp_path / "mimic-cxr-jpg")


def test_simple_findings_table_and_unix_rows(tmp_path: Path) -> None:
    root = tmp_path / "cxr"
    write_png(root / "img" / "a.jpg")
    write_png(root / "files" / "p10" / "x.jpg")
    rows = [
        {"id": "a", "image": "img/a.jpg", "findings": "Moderate cardiomegaly."},
        {"image": "img/b.jpg", "findings": ""},
        {"messages": [{"role": "user", "content": "<image>Review this X-ray and provide "
                                                  "detailed FINDINGS."},
                      {"role": "assistant", "content": "FINDINGS: No pleural effusion."}],
         "images": ["files/p10/x.jpg"]},
    ]
    (root / "test.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n{oops\n")
    items = load_cxr_findings(root, keep_reference_text=True).items
    assert "findings" not in load_cxr_findings(root).items[0].target
    assert [type(i).__name__ for i in items] == ["Sample", "SampleError", "Sample",
                                                 "SampleError"]
    assert items[0].id == "a" and items[0].target["labels"]["Cardiomegaly"] == POSITIVE
    assert items[2].id == "test/2"
    assert items[2].target["findings"] == "No pleural effusion."
    assert items[2].target["labels"]["Pleural Effusion"] == NEGATIVE
    assert "empty 'findings'" in items[1].message and "not JSON" in items[3].message


def test_bundled_sample_is_official_format_and_its_reference_scores_perfectly(
        sample_data_root: Path, tmp_path: Path) -> None:
    from healthbench.run.prepare import load_task_data

    task = TaskIndex.build().resolve(["mimic_cxr_sample"])[0]
    loaded, _ = load_task_data(task, sample_data_root)
    assert loaded.items and all(not isinstance(i, SampleError) for i in loaded.items)
    base = sample_data_root / "healthbench-samples" / "mimic-cxr-jpg"
    header = (base / "mimic-cxr-2.0.0-chexpert.csv").read_text().splitlines()[0].split(",")
    assert header[:2] == ["subject_id", "study_id"] and header[2:] == sorted(CHEXPERT_LABELS)
    assert all(i.images[0].path.is_file() for i in loaded.items)
    block = run_replay(tmp_path, "mimic_cxr_sample",
                       {i.id: i.target["findings"] for i in loaded.items},
                       data_root=sample_data_root)
    assert block["n_errors"] == 0
    assert block["metrics"]["chexpert_micro_f1_14_uneg"]["value"] == 1.0
    # only "Lung Opacity" is positive in the reference: the other 13 labels score 0 in the mean
    assert block["metrics"]["chexpert_macro_f1_14_uneg"]["value"] == pytest.approx(1 / 14)
    assert block["metrics"]["chexpert_micro_f1_5_uneg"]["value"] == 0.0

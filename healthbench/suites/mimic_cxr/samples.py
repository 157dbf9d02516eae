"""The bundled MIMIC-CXR-format sample: one real chest radiograph study written in the official
MIMIC-CXR-JPG layout (split, metadata and chexpert CSVs, the image tree and the study's report),
so the ``mimic_cxr`` loader and both reference-label modes run without credentialed data.
"""
from __future__ import annotations

import csv
from pathlib import Path

from healthbench.core.catalog import SAMPLE_BUILDERS
from healthbench.core.types import ImageSource
from healthbench.suites.mimic_cxr.labels import CHEXPERT_LABELS
from healthbench.suites.mimic_cxr.loader import (CHEXPERT_CSV, METADATA_CSV, SPLIT_CSV,
                                                reference_text)

#: One real chest radiograph ships in PyPI packages (pydicom-data RG1_*: CR, CHEST, PA, female,
#: per its DICOM header; no report). The study holds it twice: the uncompressed file and the
#: JPEG 2000 lossy (10:1) encoding of the same radiograph, as MIMIC studies hold several images.
#: Subject/study ids use a 99… range that MIMIC-CXR (p10–p19) does not use.
SAMPLE_SUBJECT, SAMPLE_STUDY = "99000001", "99000001"
SAMPLE_IMAGES = (("RG1_UNCI.dcm", "hb000001-rg1uncompressed"),
                 ("RG1_J2KI.dcm", "hb000002-rg1jpeg2000lossy"))
SAMPLE_REPORT = """\
                                 FINAL REPORT
 EXAMINATION:  CHEST (PA)

 INDICATION:  Bundled healthbench sample. The image is the public pydicom-data test radiograph
 RG1 (computed radiography, body part CHEST, view PA, female patient, per its DICOM header). No
 clinical report accompanies it; the text below is a non-expert visual description, not a
 radiologist's reading.

 FINDINGS:
 Single PA view of the chest. Multiple rounded opacities are seen in both lungs.

 IMPRESSION:
 Multiple rounded opacities in both lungs, which may represent nodules.
"""


@SAMPLE_BUILDERS.register("mimic_cxr_sample")
def build_mimic_cxr_sample(root: Path) -> None:
    """Write a one-study MIMIC-CXR-JPG-format suite (two images) under ``root``.

    The chexpert.csv row is the rule labeler's reading of the IMPRESSION (MIMIC's own CSV is a
    labeler's reading of the report too), so both reference-label modes can be exercised.
    """
    from PIL import Image
    from pydicom.data import get_testdata_file

    from healthbench.data.images import read_pixels, to_uint8
    from healthbench.suites.mimic_cxr.rules_labeler import label_report

    study_dir = root / "files" / f"p{SAMPLE_SUBJECT[:2]}" / f"p{SAMPLE_SUBJECT}"
    image_dir = study_dir / f"s{SAMPLE_STUDY}"
    image_dir.mkdir(parents=True, exist_ok=True)
    for source, dicom_id in SAMPLE_IMAGES:
        path = get_testdata_file(source)
        if path is None:
            raise FileNotFoundError(f"pydicom test file {source} is not installed "
                                    "(pip install pydicom-data)")
        pil = Image.fromarray(to_uint8(read_pixels(ImageSource(path=Path(path)))))
        pil.thumbnail((512, 512), Image.Resampling.LANCZOS)
        pil.convert("L").save(image_dir / f"{dicom_id}.jpg", quality=95)
    (study_dir / f"s{SAMPLE_STUDY}.txt").write_text(SAMPLE_REPORT, encoding="utf-8")

    def write_csv(name: str, header: list[str], rows: list[list[str]]) -> None:
        with open(root / name, "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(header)
            writer.writerows(rows)

    ids = [dicom_id for _, dicom_id in SAMPLE_IMAGES]
    write_csv(SPLIT_CSV, ["dicom_id", "study_id", "subject_id", "split"],
              [[d, SAMPLE_STUDY, SAMPLE_SUBJECT, "test"] for d in ids])
    write_csv(METADATA_CSV, ["dicom_id", "subject_id", "study_id", "ViewPosition"],
              [[d, SAMPLE_SUBJECT, SAMPLE_STUDY, "PA"] for d in ids])
    impression = reference_text(SAMPLE_REPORT, "impression") or ""
    codes = label_report(impression)
    to_csv = {1: "1.0", 2: "0.0", 3: "-1.0", 0: ""}
    columns = sorted(CHEXPERT_LABELS)  # MIMIC's chexpert.csv sorts label columns by name
    write_csv(CHEXPERT_CSV, ["subject_id", "study_id", *columns],
              [[SAMPLE_SUBJECT, SAMPLE_STUDY, *(to_csv[codes[c]] for c in columns)]])

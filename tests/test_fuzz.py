"""Fuzzing (hypothesis): answer extractors and dataset loaders never crash.

Extractors always return an answer or UNPARSED; loaders turn any annotation content into
Samples or per-row SampleErrors (or a clear missing-dataset error), never an exception from deep
inside.
"""
from __future__ import annotations

import json
import string
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from healthbench.core.catalog import EXTRACTORS, LOADERS
from healthbench.data.paths import DatasetMissingError, LoadedDataset
from healthbench.scoring.base import UNPARSED
from healthbench.core.types import Sample, SampleError

FIELDS = ["question", "gt_answer", "image_path", "option_A", "option_B", "option_C", "option_D",
          "modality_type", "modality", "question_type", "qid", "img_name", "answer",
          "answer_type", "q_lang", "image_name", "image_organ", "phrase_type", "qid_linked_id",
          "question_type", "image", "images", "answer_label", "findings", "id", "path",
          "Question", "Answer", "options", "gt", "figure", "fig_caption"]

scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6),
                    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=40),
                    st.sampled_from(["CT", "MRI", "yes", "no", "A", "../x.png", "/etc/passwd",
                                     "CT(Computed Tomography)", "a.png", "", "nan"]))
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.one_of(st.sampled_from(FIELDS), st.text(max_size=8)),
                                            inner, max_size=8)),
    max_leaves=25)
rows = st.lists(st.dictionaries(st.sampled_from(FIELDS), scalars, max_size=12), max_size=5)
annotation = st.one_of(rows, json_values)

responses = st.one_of(
    st.text(max_size=200),
    st.text(alphabet=string.ascii_letters + string.punctuation + " \n", max_size=80),
    st.sampled_from(["", "B", "(C)", "\\boxed{D}", "<answer>A</answer>", "answer: e",
                     "The answer is", "A and B", "\x00\ufffd", "yes", "no", "1.5e3"]))

SAMPLE = Sample(id="s", question="Which?", options={"A": "CT", "B": "MRI", "C": "X-ray",
                                                     "D": "Ultrasound"},
                target="A", meta={"question_type": "multiple-choice"})


@settings(max_examples=100, deadline=None)
@given(text=responses)
def test_extractors_return_an_answer_or_unparsed(text: str) -> None:
    for name in EXTRACTORS.names():
        parsed = EXTRACTORS.get(name)(text, SAMPLE)
        assert parsed is UNPARSED or isinstance(parsed, (str, list, dict, int, float)), name
        if name == "choice_letter" and parsed is not UNPARSED:
            assert parsed in SAMPLE.options


LAYOUTS = {
    "omnimedvqa": ("QA_information/Open-access/Fuzz.json", {}),
    "vqa_rad": ("VQA_RAD Dataset Public.json", {}),
    "slake": ("test.json", {}),
    "pmc_mi_bench": ("benchmark_data/puretextQA_benchmark.json", {"subtask": "puretext"}),
    "llava_rad_findings": ("chat_test_MIMIC_CXR_all_gpt4extract_rulebased_v1.json", {}),
    "unix_test_data": ("test_data.json", {}),
}


def check_loader(root: Path, name: str, options: dict) -> None:
    try:
        loaded = LOADERS.get(name)(root, **options)
    except (DatasetMissingError, FileNotFoundError):
        return  # a layout problem, reported with the expected files
    assert isinstance(loaded, LoadedDataset)
    for item in loaded.items:
        assert isinstance(item, (Sample, SampleError)), (name, item)
        if isinstance(item, SampleError):
            assert item.where and item.message


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payload=annotation)
def test_json_loaders_survive_any_annotation_content(tmp_path_factory, payload) -> None:
    for name, (rel, options) in LAYOUTS.items():
        root = tmp_path_factory.mktemp(name)
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(json.dumps(payload))
        for folder in ("Images", "imgs", "VQA_RAD Image Folder", "images"):
            (root / folder).mkdir(exist_ok=True)
        check_loader(root, name, options)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(st.one_of(st.text(max_size=30), json_values.map(json.dumps)), max_size=6))
def test_jsonl_findings_loader_survives_any_lines(tmp_path_factory, lines) -> None:
    root = tmp_path_factory.mktemp("cxr")
    (root / "test.jsonl").write_text("\n".join(lines))
    check_loader(root, "cxr_findings", {})


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.binary(max_size=300))
def test_loaders_survive_non_utf8_and_binary_files(tmp_path_factory, raw: bytes) -> None:
    for name, (rel, options) in LAYOUTS.items():
        root = tmp_path_factory.mktemp(name)
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(raw)
        check_loader(root, name, options)


# ---- TSV, CSV and parquet loaders --------------------------------------------------------------

def _tiny_jpeg_b64() -> str:
    import base64
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (4, 4), (200, 10, 10)).save(buf, format="JPEG")
    return base64.b64encode(buf.getvalue()).decode()


JPEG_B64 = _tiny_jpeg_b64()
cells = st.one_of(
    st.text(max_size=30),  # tabs, commas, quotes and newlines included: the parsers are fuzzed too
    st.sampled_from(["", "nan", "NA", "None", "A", "B", "E", "1", "0", "Teeth,Patho", "II_Loc",
                     "PA,caries", JPEG_B64, JPEG_B64[:40], f"['{JPEG_B64}']", "[1, 2]", "[",
                     "['x']", "not base64!", "figures/a.jpg", "../x.jpg", "B:MRI", "yes"]))


def table(columns: list[str], sep: str):
    """A header (the expected columns, some dropped or repeated, plus strangers) and rows."""
    header = st.lists(st.one_of(st.sampled_from(columns), st.text(max_size=6)),
                      min_size=0, max_size=len(columns) + 2)
    header = st.one_of(st.just(columns), header)
    return header.flatmap(lambda head: st.lists(st.lists(cells, min_size=0,
                                                         max_size=len(head) + 1),
                                                max_size=5).map(
        lambda body: sep.join(head) + "\n" + "".join(sep.join(r) + "\n" for r in body)))


def csv_table(columns: list[str]):
    """Well-quoted CSV (csv.writer) of arbitrary cells, or raw text with commas."""
    import csv
    import io

    def write(head: list[str], body: list[list[str]]) -> str:
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(head)
        writer.writerows(body)
        return buf.getvalue()

    header = st.one_of(st.just(columns), st.lists(st.one_of(st.sampled_from(columns),
                                                            st.text(max_size=6)), max_size=8))
    quoted = st.builds(write, header, st.lists(st.lists(cells, max_size=len(columns) + 1),
                                               max_size=5))
    return st.one_of(quoted, table(columns, ","))


OPG_COLUMNS = ["index", "image", "question", "option1", "option2", "option3", "option4",
               "answer", "category"]
UNI_COLUMNS = ["index", "image", "question", "answer", "category"]
FUZZ = settings(max_examples=25, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])


@FUZZ
@given(closed=st.one_of(table(OPG_COLUMNS, "\t"), st.text(max_size=80)),
       open_=st.one_of(table(OPG_COLUMNS, "\t"), st.binary(max_size=80)),
       uni=st.one_of(table(UNI_COLUMNS, "\t"), st.binary(max_size=80)))
def test_mmoral_tsv_loaders_survive_any_content(tmp_path_factory, closed, open_, uni) -> None:
    from healthbench.suites.mmoral.loader import OPG_FILES, UNI_FILE

    opg = tmp_path_factory.mktemp("opg")
    for name, content in ((OPG_FILES["closed"], closed), (OPG_FILES["open"], open_)):
        if isinstance(content, bytes):
            (opg / name).write_bytes(content)
        else:
            (opg / name).write_text(content)
    check_loader(opg, "mmoral_opg", {})
    omni = tmp_path_factory.mktemp("uni")
    if isinstance(uni, bytes):
        (omni / UNI_FILE).write_bytes(uni)
    else:
        (omni / UNI_FILE).write_text(uni)
    check_loader(omni, "mmoral_uni", {})


PMC_COLUMNS = ["Figure_path", "Question", "Choice A", "Choice B", "Choice C", "Choice D",
               "Answer_label", "Answer", "Anwser"]


@FUZZ
@given(content=st.one_of(csv_table(PMC_COLUMNS), st.binary(max_size=120)))
def test_pmc_vqa_csv_loader_survives_any_content(tmp_path_factory, content) -> None:
    root = tmp_path_factory.mktemp("pmc")
    (root / "figures").mkdir()
    (root / "figures" / "a.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    path = root / "test_2.csv"
    path.write_bytes(content) if isinstance(content, bytes) else path.write_text(content)
    check_loader(root, "pmc_vqa", {})


from healthbench.suites.mimic_cxr.labels import CHEXPERT_LABELS  # noqa: E402

SPLIT_COLUMNS = ["dicom_id", "study_id", "subject_id", "split"]


@FUZZ
@given(split=st.one_of(csv_table(SPLIT_COLUMNS), st.binary(max_size=80)),
       labels=st.one_of(csv_table(["subject_id", "study_id", *CHEXPERT_LABELS]),
                        st.binary(max_size=60)),
       findings=st.one_of(csv_table(["id", "image", "findings"]), st.binary(max_size=80)))
def test_cxr_csv_loaders_survive_any_content(tmp_path_factory, split, labels,
                                             findings) -> None:
    from healthbench.suites.mimic_cxr.loader import CHEXPERT_CSV, SPLIT_CSV

    def put(path: Path, content) -> None:
        path.write_bytes(content) if isinstance(content, bytes) else path.write_text(content)

    mimic = tmp_path_factory.mktemp("mimic")
    put(mimic / SPLIT_CSV, split)
    put(mimic / CHEXPERT_CSV, labels)
    for options in ({}, {"reference_labels": "csv"}):
        check_loader(mimic, "mimic_cxr", options)
    table_root = tmp_path_factory.mktemp("cxr_csv")
    put(table_root / "test.csv", findings)
    check_loader(table_root, "cxr_findings", {"file": "test.csv"})


MMMU_STRINGS = ["id", "question", "options", "answer", "question_type", "explanation",
                "img_type", "topic_difficulty", "subfield"]
image_cells = st.one_of(st.none(), st.builds(lambda b, p: {"bytes": b, "path": p},
                                             st.one_of(st.none(), st.binary(max_size=20),
                                                       st.just(__import__("base64").b64decode(
                                                           JPEG_B64))),
                                             st.one_of(st.none(), st.text(max_size=8))))
mmmu_cells = st.one_of(cells, st.none(), st.sampled_from([
    "['one', 'two']", "[]", "['a'] + ['b']", "__import__('os')", "[" * 50, "multiple-choice",
    "open", "<image 1> What?", "<image 9> What?", "validation_Pharmacy_1", "['A', 'B', 'C']"]))


@FUZZ
@given(columns=st.sets(st.sampled_from(MMMU_STRINGS + [f"image_{k}" for k in range(1, 8)])),
       rows=st.lists(st.fixed_dictionaries({}, optional={
           **{c: mmmu_cells for c in MMMU_STRINGS},
           **{f"image_{k}": image_cells for k in range(1, 8)}}), max_size=4),
       garbage=st.one_of(st.none(), st.binary(max_size=60)))
def test_mmmu_parquet_loader_survives_any_content(tmp_path_factory, columns, rows,
                                                  garbage) -> None:
    import pyarrow as pa

    from healthbench.data.hf_files import image_struct_type, write_shard

    root = tmp_path_factory.mktemp("mmmu")
    shard = root / "Pharmacy" / "validation-00000-of-00001.parquet"
    if garbage is not None:
        shard.parent.mkdir(parents=True)
        shard.write_bytes(garbage)  # not parquet at all
    else:
        schema = pa.schema([pa.field(c, image_struct_type() if c.startswith("image_")
                                     else pa.string()) for c in sorted(columns)])
        write_shard(shard, [{c: r.get(c) for c in sorted(columns)} for r in rows], schema)
    check_loader(root, "mmmu", {"subjects": ["Pharmacy"]})

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

from healthbench.catalog import EXTRACTORS, LOADERS
from healthbench.data.base import DatasetMissingError, LoadedDataset
from healthbench.metrics.base import UNPARSED
from healthbench.types import Sample, SampleError

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

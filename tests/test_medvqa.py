"""VQA-RAD, SLAKE, PathVQA and PMC-VQA: published layouts written in plain sight, scored through
``replay`` with known responses, giving exact per-group metrics; bad rows counted, not dropped."""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from healthbench.data.paths import DatasetMissingError
from healthbench.suites.medvqa.loader import (load_pathvqa, load_pmc_vqa, load_slake, load_vqa_rad,
                                     slake_prompt, yes_no_prompt)
from healthbench.run.evaluate import RunSpec, evaluate
from healthbench.suites.medvqa.metrics import closed_correct, token_recall
from healthbench.run.runner import RunSettings
from healthbench.taskconfig.index import TaskIndex
from healthbench.core.types import Sample, SampleError
from tests.helpers import write_png

TASK_DIRS = [Path(__file__).resolve().parent.parent / "tasks" / d
             for d in ("vqa_rad", "slake", "pathvqa", "pmc_vqa")]


def run_replay(tmp_path: Path, task: str, responses: dict[str, str],
               data_root: Path | None = None, model: str = "replay") -> dict:
    saved = tmp_path / f"{task}.jsonl"
    saved.write_text("".join(json.dumps({"task": task, "id": i, "response": r}) + "\n"
                             for i, r in responses.items()))
    spec = RunSpec(model=model, model_args={"path": str(saved)} if model == "replay" else {},
                   tasks=TaskIndex.build(TASK_DIRS, builtin=False).resolve([task]),
                   data_root=data_root or tmp_path, output_path=tmp_path / "out",
                   run_id=f"r-{task}", settings=RunSettings(progress=False))
    return evaluate(spec)["tasks"][task]


def metric(block: dict, name: str, key: str | None = None, group: str | None = None) -> Any:
    where = block if key is None else block["groups"][key][group]
    return where["metrics"][name]["value"]


# --- the scoring rules --------------------------------------------------------------------------

@pytest.mark.parametrize("target,response,expected", [
    ("yes", "Yes.", True),
    ("no", "No, it is not.", True),
    ("yes", "no", False),
    ("no", "Yes, there is no fracture.", False),   # both words: not an answer
    ("no", "The study is normal.", False),         # "normal" is not "no"
    ("yes", "I cannot tell.", False),              # wrong, and still in the denominator
    ("CT", "ct", True),                            # closed but not yes/no: exact match
    ("CT", "It is a CT.", False),
])
def test_closed_rule(target: str, response: str, expected: bool) -> None:
    assert closed_correct(target, response) is expected


def test_open_recall_is_target_token_recall() -> None:
    assert token_recall("left lung", "the left lung") == 1.0
    assert token_recall("left lower lobe", "left lobe") == pytest.approx(2 / 3)
    assert token_recall("x-ray", "X ray") == 1.0
    assert token_recall("liver", "") == 0.0


# --- VQA-RAD ------------------------------------------------------------------------------------

def vqa_rad_item(qid: int, question: str, answer: Any, phrase: str = "test_freeform",
                 answer_type: str = "CLOSED", image: str | None = None) -> dict[str, Any]:
    return {"qid": qid, "image_name": image if image is not None else f"synpic{qid}.jpg",
            "image_case_url": "https://medpix.example/x", "image_organ": "CHEST",
            "answer": answer, "answer_type": answer_type, "question_type": "PRES",
            "question": question, "phrase_type": phrase, "evaluation": "given",
            "qid_linked_id": "0"}


def write_vqa_rad_osf(root: Path) -> Path:
    base = root / "VQA-RAD"
    items = [
        vqa_rad_item(1, "Is there a pneumothorax?", "Yes"),
        vqa_rad_item(2, "Is the heart enlarged?", "no", phrase="test_para"),
        vqa_rad_item(3, "Is this an MRI?", "no"),
        vqa_rad_item(4, "Which lung is affected?", "left lung", answer_type="OPEN"),
        vqa_rad_item(5, "How many ribs are fractured?", 2, answer_type="OPEN"),  # numeric
        vqa_rad_item(6, "Is this a CT or MRI?", "CT", answer_type="CLOSED"),  # not yes/no
        vqa_rad_item(7, "Is there edema?", "yes", phrase="freeform"),  # train split
        vqa_rad_item(8, "Is there a mass?", "yes", image=""),  # bad: no image name
        vqa_rad_item(9, "Is there a mass?", "yes", image="../../outside.jpg"),  # bad: escapes
    ]
    (base / "VQA_RAD Image Folder").mkdir(parents=True)
    (base / "VQA_RAD Dataset Public.json").write_text(json.dumps(items))
    for item in items:
        if item["image_name"] and ".." not in item["image_name"]:
            write_png(base / "VQA_RAD Image Folder" / item["image_name"], seed=item["qid"])
    return base


def test_vqa_rad_osf_layout_scored_exactly(tmp_path: Path) -> None:
    write_vqa_rad_osf(tmp_path)
    responses = {"1": "Yes, there is.", "2": "Yes and no", "3": "No.",
                 "4": "the left lung", "5": "2", "6": "CT"}
    block = run_replay(tmp_path, "vqa_rad", responses)
    assert (block["n"], block["n_errors"]) == (6, 2)  # qid 7 is train; 8 and 9 are errors
    # closed (yes/no answers): 1 right, 2 both words -> wrong, 3 right
    assert metric(block, "closed_accuracy") == pytest.approx(2 / 3)
    assert metric(block, "closed_accuracy", "answer_type", "closed") == pytest.approx(2 / 3)
    # open: 4 recall 1 / exact 0, 5 recall 1 / exact 1, 6 ("CT", no yes/no -> open) 1 / 1
    assert metric(block, "open_recall") == pytest.approx(1.0)
    assert metric(block, "open_exact_match") == pytest.approx(2 / 3)
    assert metric(block, "medvqa_accuracy") == pytest.approx(4 / 6)
    assert block["groups"]["answer_type"]["open"]["metrics"]["closed_accuracy"]["value"] is None


def test_vqa_rad_bad_rows_name_the_problem(tmp_path: Path) -> None:
    loaded = load_vqa_rad(write_vqa_rad_osf(tmp_path))
    errors = {e.id: e.message for e in loaded.items if isinstance(e, SampleError)}
    assert "missing or empty field 'image_name'" in errors["8"]
    assert "contains '..'" in errors["9"]
    sample = next(s for s in loaded.items if s.id == "6")
    assert sample.meta["answer_type"] == "open" and sample.meta["answer_type_raw"] == "CLOSED"
    assert [s.id for s in load_vqa_rad(tmp_path / "VQA-RAD", split="train").items] == ["7"]


def png_cell(seed: int) -> dict[str, Any]:
    buf = io.BytesIO()
    Image.new("RGB", (10, 10 + seed), (seed * 30 % 256, 0, 0)).save(buf, format="PNG")
    return {"bytes": buf.getvalue(), "path": None}


def write_hub_parquet(folder: Path, split: str, shards: list[list[tuple[str, str]]]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema([pa.field("image", pa.struct([pa.field("bytes", pa.binary()),
                                                     pa.field("path", pa.string())])),
                        pa.field("question", pa.string()), pa.field("answer", pa.string())])
    (folder / "data").mkdir(parents=True, exist_ok=True)
    seed = 0
    for n, rows in enumerate(shards):
        table_rows = []
        for question, answer in rows:
            table_rows.append({"image": png_cell(seed), "question": question, "answer": answer})
            seed += 1
        pq.write_table(pa.Table.from_pylist(table_rows, schema=schema),
                       folder / "data" / f"{split}-{n:05d}-of-{len(shards):05d}-abc123.parquet")


def test_vqa_rad_hub_layout_scored_exactly(tmp_path: Path) -> None:
    write_hub_parquet(tmp_path / "VQA-RAD", "test", [[("is there effusion?", "yes"),
                                                      ("where is the lesion?", "right lobe"),
                                                      ("is this normal?", "no")]])
    responses = {"test/0": "yes", "test/1": "right", "test/2": "The study is normal"}
    block = run_replay(tmp_path, "vqa_rad", responses)
    assert (block["n"], block["n_errors"]) == (3, 0)
    assert metric(block, "closed_accuracy") == pytest.approx(1 / 2)
    assert metric(block, "open_recall") == pytest.approx(1 / 2)
    assert metric(block, "open_exact_match") == 0.0


# --- SLAKE --------------------------------------------------------------------------------------

def slake_item(qid: int, question: str, answer: str, answer_type: str, modality: str = "CT",
               lang: str = "en", content: str = "Organ") -> dict[str, Any]:
    return {"img_id": 102, "img_name": "xmlab102/source.jpg", "question": question,
            "answer": answer, "q_lang": lang, "location": "Lung", "modality": modality,
            "answer_type": answer_type, "base_type": "vqa", "content_type": content,
            "triple": ["vhead", "_", "_"], "qid": qid}


def write_slake(root: Path) -> Path:
    base = root / "Slake1.0"
    items = [
        slake_item(11, "Is the lung healthy?", "No", "CLOSED"),
        slake_item(12, "Which is bigger, heart or liver?", "Liver", "CLOSED", modality="MRI"),
        slake_item(13, "What modality is this?", "CT", "OPEN", content="Modality"),
        slake_item(14, "Where is the abnormality?", "Left Lung, Right", "OPEN", modality="MRI"),
        slake_item(15, "这是什么器官?", "肺", "OPEN", lang="zh"),
        slake_item(16, "Is this odd?", "Yes", "MAYBE"),  # bad answer_type
    ]
    base.mkdir(parents=True)
    (base / "test.json").write_text(json.dumps(items, ensure_ascii=False))
    write_png(base / "imgs" / "xmlab102" / "source.jpg")
    return base


def test_slake_scored_exactly_per_group(tmp_path: Path) -> None:
    write_slake(tmp_path)
    responses = {"11": "no", "12": "the liver", "13": "CT", "14": "right lung"}
    block = run_replay(tmp_path, "slake", responses)
    assert (block["n"], block["n_errors"]) == (4, 1)  # the zh question is not selected
    # closed: 11 right; 12 "the liver" != "liver" (exact match for non-yes/no closed)
    assert metric(block, "closed_accuracy") == pytest.approx(1 / 2)
    # open: 13 recall 1 exact 1; 14 tokens {left, lung, right}: recall 2/3, exact 0
    assert metric(block, "open_recall") == pytest.approx((1 + 2 / 3) / 2)
    assert metric(block, "open_exact_match") == pytest.approx(1 / 2)
    assert metric(block, "medvqa_accuracy", "modality", "CT") == pytest.approx(1.0)
    assert metric(block, "medvqa_accuracy", "modality", "MRI") == pytest.approx(0.0)
    assert block["groups"]["modality"]["CT"]["n_errors"] == 1


def test_slake_keeps_qid_and_selects_languages(tmp_path: Path) -> None:
    base = write_slake(tmp_path)
    both = load_slake(base, languages=["en", "zh"])
    assert [s.id for s in both.items] == ["11", "12", "13", "14", "15", "16"]
    zh = next(s for s in both.items if s.id == "15")
    assert slake_prompt(zh).endswith("请简要回答该问题。")
    errors = [e for e in both.items if isinstance(e, SampleError)]
    assert len(errors) == 1 and "neither OPEN nor CLOSED" in errors[0].message


def test_prompts_follow_medevalkit() -> None:
    yes_no = Sample(id="a", question="Is it?", target="Yes")
    assert yes_no_prompt(yes_no) == "Is it?\nPlease output 'yes' or 'no'(no extra output)."
    assert yes_no_prompt(Sample(id="b", question="Where?", target="liver")) == \
        "Where?\nPlease answer the question concisely."
    closed = Sample(id="c", question="CT or MRI?", target="CT", meta={"answer_type": "closed"})
    assert slake_prompt(closed) == "CT or MRI?\nAnswer the question using a single word or phrase."


# --- PathVQA -------------------------------------------------------------------------------------

def test_pathvqa_reads_shards_in_order_and_scores_exactly(tmp_path: Path) -> None:
    write_hub_parquet(tmp_path / "PathVQA", "test", [
        [("is this tissue necrotic?", "yes"), ("what is present?", "granuloma")],
        [("is there fibrosis?", "no"), ("what stain is used?", "")],  # last: empty answer
    ])
    loaded = load_pathvqa(tmp_path / "PathVQA")
    assert [s.id for s in loaded.items] == ["test/0", "test/1", "test/2", "test/3"]
    assert isinstance(loaded.items[3], SampleError)
    block = run_replay(tmp_path, "pathvqa", {"test/0": "Yes", "test/1": "caseating granuloma",
                                             "test/2": "yes"})
    assert (block["n"], block["n_errors"]) == (3, 1)
    assert metric(block, "closed_accuracy") == pytest.approx(1 / 2)
    assert metric(block, "open_recall") == 1.0 and metric(block, "open_exact_match") == 0.0


# --- PMC-VQA -------------------------------------------------------------------------------------

PMC_V2 = ["index", "Figure_path", "Caption", "Question", "Choice A", "Choice B", "Choice C",
          "Choice D", "Answer", "split"]


def pmc_row(i: int, answer: str, figure: str | None = None) -> dict[str, Any]:
    return {"index": i, "Figure_path": figure or f"PMC{i}_F1.jpg", "Caption": "A figure.",
            "Question": "What is the uptake pattern?", "Choice A": "A:Diffuse",
            "Choice B": "B:Focal", "Choice C": "C:None", "Choice D": "D:Cannot determine",
            "Answer": answer, "split": "test"}


def write_pmc(root: Path, rows: list[dict[str, Any]], name: str = "test_2.csv",
              folder: str = "figures", columns: list[str] = PMC_V2) -> Path:
    base = root / "PMC-VQA"
    base.mkdir(parents=True, exist_ok=True)
    with open(base / name, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    for row in rows:
        if row["Figure_path"] != "missing.jpg":
            write_png(base / folder / row["Figure_path"])
    return base


def test_pmc_vqa_scored_exactly(tmp_path: Path) -> None:
    write_pmc(tmp_path, [pmc_row(0, "B"), pmc_row(1, "A"), pmc_row(2, "C:None"),
                         pmc_row(3, "Focal"), pmc_row(4, "E"),
                         pmc_row(5, "A", figure="missing.jpg")])
    responses = {"test_2/0": "B", "test_2/1": "The answer is (C).", "test_2/2": "C. None",
                 "test_2/3": "I am not sure"}
    block = run_replay(tmp_path, "pmc_vqa", responses)
    assert (block["n"], block["n_errors"]) == (4, 2)
    assert metric(block, "accuracy") == pytest.approx(2 / 4)
    assert metric(block, "parse_failure") == pytest.approx(1 / 4)
    errors = {e.id: e.message for e in load_pmc_vqa(tmp_path / "PMC-VQA").items
              if isinstance(e, SampleError)}
    assert "'E' is not among the choices" in errors["test_2/4"]
    assert "not found in figures/ or images/" in errors["test_2/5"]


def test_pmc_vqa_v1_columns_and_images_folder(tmp_path: Path) -> None:
    columns = ["Figure_path", "Question", "Anwser", "Choice A", "Choice B", "Choice C",
               "Choice D", "Answer_label"]
    row = {k: v for k, v in pmc_row(0, "").items() if k in columns}
    row.update({"Anwser": "Focal", "Answer_label": "B"})
    write_pmc(tmp_path, [row], name="test_clean.csv", folder="images", columns=columns)
    (sample,) = load_pmc_vqa(tmp_path / "PMC-VQA", file="test_clean.csv").items
    assert isinstance(sample, Sample)
    assert sample.id == "test_clean/0" and sample.target == "B"
    assert dict(sample.options) == {"A": "Diffuse", "B": "Focal", "C": "None",
                                    "D": "Cannot determine"}
    assert sample.images[0].path.parent.name == "images"


# --- missing data ---------------------------------------------------------------------------------

@pytest.mark.parametrize("loader,folder,expected", [
    (load_vqa_rad, "VQA-RAD", "VQA_RAD Dataset Public.json"),
    (load_slake, "Slake1.0", "Slake1.0/test.json"),
    (load_pathvqa, "PathVQA", "data/test-*.parquet"),
    (load_pmc_vqa, "PMC-VQA", "PMC-VQA/test_2.csv"),
])
def test_missing_dataset_says_what_goes_where(tmp_path: Path, loader, folder: str,
                                              expected: str) -> None:
    with pytest.raises(DatasetMissingError) as info:
        loader(tmp_path / folder)
    assert expected in str(info.value) and "never downloads" in str(info.value)
    (tmp_path / folder).mkdir()
    with pytest.raises(DatasetMissingError, match="never downloads"):
        loader(tmp_path / folder)


# --- bundled samples ------------------------------------------------------------------------------

def test_bundled_samples_build_and_run(sample_data_root: Path, tmp_path: Path) -> None:
    expected = {"vqa_rad_sample": 20, "slake_sample": 21, "pathvqa_sample": 12,
                "pmc_vqa_sample": 18}
    spec = RunSpec(model="random", model_args={},
                   tasks=TaskIndex.build(TASK_DIRS, builtin=False).resolve(list(expected)),
                   data_root=sample_data_root, output_path=tmp_path, run_id="r",
                   settings=RunSettings(progress=False))
    tasks = evaluate(spec)["tasks"]
    assert {name: (t["n"], t["n_errors"]) for name, t in tasks.items()} == \
        {name: (n, 0) for name, n in expected.items()}
    for name in ("vqa_rad_sample", "slake_sample", "pathvqa_sample"):
        assert set(tasks[name]["groups"]["answer_type"]) == {"closed", "open"}
    root = sample_data_root / "healthbench-samples"
    assert (root / "VQA-RAD" / "VQA_RAD Dataset Public.json").is_file()
    assert (root / "Slake1.0" / "test.json").is_file()
    assert list((root / "PathVQA" / "data").glob("test-*.parquet"))
    assert (root / "PMC-VQA" / "test_2.csv").is_file()

"""MMMU Health & Medicine: the Hub's parquet layout, the official prompt, the official parser
(checked against a table of tricky responses whose verdicts the official eval_utils.py gives),
strict vs official scoring."""
from __future__ import annotations

import io
import json
import random
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from healthbench.data.paths import DatasetMissingError
from healthbench.suites.mmmu.loader import HEALTH_SUBJECTS, load_mmmu, mmmu_prompt
from healthbench.run.evaluate import RunSpec, evaluate
from healthbench.suites.mmmu.metrics import open_is_correct, parse_choice, parse_open
from healthbench.run.runner import RunSettings
from healthbench.taskconfig.index import TaskIndex
from healthbench.core.types import Sample, SampleError

TASKS = Path(__file__).resolve().parent.parent / "tasks" / "mmmu_med"


def tasks(*names: str) -> list:
    """This suite's own task files (not the whole tasks/ folder, which others edit)."""
    return TaskIndex.build([TASKS], builtin=False).resolve(list(names))

DRUGS = {"A": "Aspirin", "B": "Heparin", "C": "Warfarin", "D": "Clopidogrel"}

# response -> letter the official parse_multi_choice_response picks (None: it would fall back to
# random.choice). Verdicts produced by running MMMU's mmmu/utils/eval_utils.py (commit bb0b95a).
MULTIPLE_CHOICE_TABLE = [
    ("B", "B"),
    ("(B)", "B"),
    ("B.", "B"),                      # trailing '.' stripped, then " B " matches
    ("(C) Warfarin", "C"),
    ("The answer is (D).", "D"),
    ("Answer: C", "C"),
    ("b", None),                      # letters are case-sensitive
    ("(b)", None),
    ("I think A is wrong; (B) is right but (C) is better", "C"),  # brackets win; last one
    ("A or B", "B"),                  # several bare letters: the last mentioned
    ("A B A", "A"),                   # ... by its last occurrence
    ("(A)(B)", "B"),
    ("A, B", "B"),                    # "A," is not " A "
    ("'C'", "C"),                     # quotes stripped
    ("The correct medication here is clearly Warfarin for this patient", "C"),  # option text
    ("Both aspirin and heparin could be used, but heparin is preferred", "B"),  # last text
    ("Warfarin", None),               # option text only counts past five words
    ("It is heparin.", None),
    ("A. Aspirin", None),             # "A." is not " A " and the response is short
    ("B)", None),
    ("Option E", None),               # not an option
    ("I cannot tell from the image at all really", None),
    ("The drug of choice: B", "B"),
]

# (response, gold, official eval_open verdict)
OPEN_TABLE = [
    ("The answer is 12.", "12", True),
    ("12.0", "12", True),             # numbers compare after rounding to 2 decimals
    ("1,000 mg", "1000", True),       # thousands separators
    ("2e3", "2000", True),            # scientific notation
    ("so the result is -4", "-4", True),
    ("Transformation", "Transformation", True),
    ("transformation of cells", "Transformation", True),  # gold is a substring
    ("C", "C", True),
    ("Vitamin C", "C", True),         # single letters match " c" / "c " inside the text
    ("0.125", "1/8", False),          # a fraction is text, not a number
    ("1/8", "1/8", True),
    ("It is 3.456", "3.46", True),
    ("the value is 5\nso final answer 6", "5", True),  # every line's key tail counts
    ("the value is 5\nso final answer 6", "6", True),
    ("x = 7", "7", True),             # '=' on the last line
    ("about 15%", "15", True),
    ("No idea", "b", False),
    ("Therefore the dose is 2.5 mg", "2.5", True),
]


@pytest.mark.parametrize("response,expected", MULTIPLE_CHOICE_TABLE)
def test_multiple_choice_parser_agrees_with_official(response: str, expected: str | None) -> None:
    assert parse_choice(response, DRUGS) == expected


@pytest.mark.parametrize("response,gold,expected", OPEN_TABLE)
def test_open_parser_agrees_with_official(response: str, gold: str, expected: bool) -> None:
    assert open_is_correct(gold, parse_open(response)) is expected


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ABCDE()., :'abcdeWarfin\n")), max_size=40))
def test_parser_returns_an_option_letter_or_nothing(response: str) -> None:
    letter = parse_choice(response, DRUGS)
    assert letter is None or letter in DRUGS
    # when any "(X)" is present, the bracketed letter mentioned last wins
    last = {c: response.rfind(f"({c})") for c in DRUGS if f"({c})" in response}
    if last:
        assert letter == max(last, key=last.__getitem__)


def test_open_gold_list_matches_any_element() -> None:
    assert open_is_correct(["1/8", "0.125"], parse_open("0.125"))
    assert not open_is_correct(["1/8", "0.125"], parse_open("0.25"))


# --- a fixture in the Hub's parquet layout ------------------------------------------------------

def png(seed: int) -> dict[str, Any]:
    buf = io.BytesIO()
    Image.new("RGB", (8 + seed, 8), (seed * 40 % 256, 10, 10)).save(buf, format="PNG")
    return {"bytes": buf.getvalue(), "path": f"img{seed}.png"}


def row(subject: str, n: int, question: str, options: list[str] | str, answer: str,
        qtype: str = "multiple-choice", images: dict[int, Any] | None = None,
        split: str = "validation") -> dict[str, Any]:
    images = images if images is not None else {1: png(n)}
    out = {"id": f"{split}_{subject}_{n}", "question": question,
           "options": options if isinstance(options, str) else repr(options),
           "explanation": "", "img_type": "['Diagrams']", "answer": answer,
           "topic_difficulty": "Easy", "question_type": qtype, "subfield": "Test"}
    for k in range(1, 8):
        out[f"image_{k}"] = images.get(k)
    return out


FOUR = ["Aspirin", "Heparin", "Warfarin", "Clopidogrel"]
ROWS = {  # subject -> rows, in the official row order
    "Basic_Medical_Science": [
        row("Basic_Medical_Science", 1, "<image 1> Which drug?", FOUR, "B"),
        row("Basic_Medical_Science", 2, "<image 1> Which drug?", FOUR, "A"),
        row("Basic_Medical_Science", 3, "<image 1> How many cells?", [], "12", "open"),
    ],
    "Clinical_Medicine": [
        row("Clinical_Medicine", 1, "Compare <image 2> with <image 1>: which shows edema?",
            ["<image 1>", "<image 2>"], "B", images={1: png(1), 2: png(2)}),
        row("Clinical_Medicine", 2, "<image 1> Which drug?", FOUR, "C"),
    ],
    "Diagnostics_and_Laboratory_Medicine": [
        row("Diagnostics_and_Laboratory_Medicine", 1, "<image 1> Which drug?", FOUR, "D"),
        row("Diagnostics_and_Laboratory_Medicine", 2, "<image 1> Which?", FOUR, "E"),  # bad
    ],
    "Pharmacy": [
        row("Pharmacy", 1, "<image 1> What fraction?", [], "['1/8', '0.125']", "open"),
        row("Pharmacy", 2, "<image 1> vs <image 2>?", FOUR, "A"),  # bad: image_2 empty
    ],
    "Public_Health": [
        row("Public_Health", 1, "<image 1> Which drug?", FOUR, "C"),
        row("Public_Health", 2, "<image 1> Which drug?", "not a list", "A"),  # bad
    ],
}
RESPONSES = {
    "validation_Basic_Medical_Science_1": "(B)",                                # right
    "validation_Basic_Medical_Science_2": "I cannot tell from the image at all really",  # none
    "validation_Basic_Medical_Science_3": "The answer is 12.",                  # right
    "validation_Clinical_Medicine_1": "B",                                      # right
    "validation_Clinical_Medicine_2": "A. Aspirin",                             # none
    "validation_Diagnostics_and_Laboratory_Medicine_1": "The answer is (A).",   # wrong
    "validation_Pharmacy_1": "0.125",                                           # right
    "validation_Public_Health_1": "",                                           # none
}


def write_mmmu(root: Path, rows: dict[str, list[dict[str, Any]]] = ROWS,
               split: str = "validation") -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    image = pa.struct([pa.field("bytes", pa.binary()), pa.field("path", pa.string())])
    fields = [pa.field(c, pa.string()) for c in ("id", "question", "options", "explanation")]
    fields += [pa.field(f"image_{k}", image) for k in range(1, 8)]
    fields += [pa.field(c, pa.string()) for c in ("img_type", "answer", "topic_difficulty",
                                                  "question_type", "subfield")]
    for subject, subject_rows in rows.items():
        folder = root / "MMMU" / subject
        folder.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pylist(subject_rows, schema=pa.schema(fields)),
                       folder / f"{split}-00000-of-00001.parquet")
    return root / "MMMU"


def run_replay(tmp_path: Path, responses: dict[str, str], task: str = "mmmu_med") -> dict:
    saved = tmp_path / "responses.jsonl"
    saved.write_text("".join(json.dumps({"task": task, "id": i, "response": r}) + "\n"
                             for i, r in responses.items()))
    spec = RunSpec(model="replay", model_args={"path": str(saved)},
                   tasks=tasks(task), data_root=tmp_path,
                   output_path=tmp_path / "out", run_id="r",
                   settings=RunSettings(progress=False))
    return evaluate(spec)["tasks"][task]


def value(block: dict, metric: str, key: str | None = None, group: str | None = None) -> float:
    where = block if key is None else block["groups"][key][group]
    return where["metrics"][metric]["value"]


def test_replay_gives_exact_strict_and_official_scores(tmp_path: Path) -> None:
    write_mmmu(tmp_path)
    block = run_replay(tmp_path, RESPONSES)
    assert (block["n"], block["n_errors"]) == (8, 3)
    # strict: unparseable multiple-choice answers are wrong
    assert value(block, "accuracy") == pytest.approx(4 / 8)
    assert value(block, "parse_failure") == pytest.approx(3 / 8)
    strict = {"Basic_Medical_Science": 2 / 3, "Clinical_Medicine": 1 / 2,
              "Diagnostics_and_Laboratory_Medicine": 0.0, "Pharmacy": 1.0, "Public_Health": 0.0}
    for subject, expected in strict.items():
        assert value(block, "accuracy", "subject", subject) == pytest.approx(expected)
    # official: the three fallbacks (BMS_2, CM_2, PH_1) each draw from Random("<seed>\0<id>");
    # with the run's seed 0 they are D, C, D against targets A, C, C — wrong, right, wrong
    assert [drawn(0, i) for i in FALLBACKS] == ["D", "C", "D"]
    assert value(block, "accuracy_official") == pytest.approx(5 / 8)
    official = {**strict, "Clinical_Medicine": 1.0}
    for subject, expected in official.items():
        assert value(block, "accuracy_official", "subject", subject) == pytest.approx(expected)
    assert block["groups"]["question_type"]["open"]["n"] == 2


def test_bad_rows_are_counted_with_clear_messages(tmp_path: Path) -> None:
    loaded = load_mmmu(write_mmmu(tmp_path))
    errors = {e.id: e.message for e in loaded.items if isinstance(e, SampleError)}
    assert set(errors) == {"validation_Diagnostics_and_Laboratory_Medicine_2",
                           "validation_Pharmacy_2", "validation_Public_Health_2"}
    assert "answer 'E' is not an option letter" in errors[
        "validation_Diagnostics_and_Laboratory_Medicine_2"]
    assert "<image 2> but image_2 is empty" in errors["validation_Pharmacy_2"]
    assert "not a Python literal" in errors["validation_Public_Health_2"]


def test_images_are_bytes_in_order_of_mention(tmp_path: Path) -> None:
    loaded = load_mmmu(write_mmmu(tmp_path), subjects=["Clinical_Medicine"])
    sample = next(s for s in loaded.items if s.id == "validation_Clinical_Medicine_1")
    assert isinstance(sample, Sample)
    assert [img.label for img in sample.images] == ["<image 2>", "<image 1>"]
    assert sample.images[0].data == ROWS["Clinical_Medicine"][0]["image_2"]["bytes"]
    assert sample.images[0].path is None


def test_official_prompts() -> None:
    mc = Sample(id="x", question="Q <image 1>?", options={"A": "one", "B": "two"},
                meta={"question_type": "multiple-choice"})
    assert mmmu_prompt(mc) == ("Q <image 1>?\n(A) one\n(B) two\n\n"
                               "Answer with the option's letter from the given choices directly.")
    open_q = Sample(id="y", question="How many?", meta={"question_type": "open"})
    assert mmmu_prompt(open_q) == "How many?\nAnswer the question using a single word or phrase."


def test_ids_and_order_follow_the_dataset(tmp_path: Path) -> None:
    loaded = load_mmmu(write_mmmu(tmp_path))
    ids = [item.id for item in loaded.items]
    assert ids[:3] == [f"validation_Basic_Medical_Science_{n}" for n in (1, 2, 3)]
    orders = [item.meta["order"] for item in loaded.items]
    assert orders == sorted(orders) == list(range(len(ids)))


def test_missing_subject_says_which_files_are_expected(tmp_path: Path) -> None:
    write_mmmu(tmp_path, {"Pharmacy": ROWS["Pharmacy"]})
    with pytest.raises(DatasetMissingError, match=r"Basic_Medical_Science/validation-\*\.parquet"):
        load_mmmu(tmp_path / "MMMU")
    with pytest.raises(DatasetMissingError, match="never downloads"):
        load_mmmu(tmp_path / "nowhere")


def test_test_split_is_refused_as_server_only(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="EvalAI"):
        load_mmmu(write_mmmu(tmp_path), splits=["test"])


def test_dev_split_is_read_from_its_own_files(tmp_path: Path) -> None:
    write_mmmu(tmp_path, {s: [row(s, 1, "<image 1> Q?", FOUR, "A", split="dev")]
                          for s in HEALTH_SUBJECTS}, split="dev")
    loaded = load_mmmu(tmp_path / "MMMU", splits=["dev"])
    assert len(loaded.items) == 5 and all(isinstance(s, Sample) for s in loaded.items)
    block = run_replay(tmp_path, {f"dev_{s}_1": "A" for s in HEALTH_SUBJECTS},
                       task="mmmu_med_dev")
    assert (block["n"], value(block, "accuracy")) == (5, 1.0)


def test_bundled_sample_builds_in_the_official_layout(sample_data_root: Path,
                                                      tmp_path: Path) -> None:
    spec = RunSpec(model="random", model_args={}, tasks=tasks("mmmu_med_sample"),
                   data_root=sample_data_root, output_path=tmp_path, run_id="r",
                   settings=RunSettings(progress=False))
    block = evaluate(spec)["tasks"]["mmmu_med_sample"]
    assert (block["n"], block["n_errors"]) == (16, 0)
    folder = sample_data_root / "healthbench-samples" / "MMMU"
    assert sorted(p.name for p in folder.iterdir() if p.is_dir()) == sorted(HEALTH_SUBJECTS)
    assert set(block["groups"]["question_type"]) == {"multiple-choice", "open"}
    multi = [s for s in load_mmmu(folder).items if len(s.images) > 1]
    assert len(multi) == 2


# --- official draws: a pure function of each sample ---------------------------------------------

FALLBACKS = ("validation_Basic_Medical_Science_2", "validation_Clinical_Medicine_2",
             "validation_Public_Health_1")


def drawn(seed: int, sample_id: str, letters: str = "ABCD") -> str:
    """The fallback rule restated: one draw from a generator seeded by (seed, sample id)."""
    return random.Random(f"{seed}\0{sample_id}").choice(letters)


def samples_of(run_dir: Path, task: str = "mmmu_med") -> dict[str, dict]:
    lines = (run_dir / task / "samples.jsonl").read_text().splitlines()
    return {row["id"]: row for row in map(json.loads, lines)}


def test_fallback_letters_are_written_into_samples_jsonl(tmp_path: Path) -> None:
    write_mmmu(tmp_path)
    run_replay(tmp_path, RESPONSES)
    rows = samples_of(tmp_path / "out" / "r")
    for sample_id, row in rows.items():
        details = (row["meta"].get("details") or {}).get("accuracy_official")
        if sample_id in FALLBACKS:
            assert details == {"fallback_letter": drawn(0, sample_id), "seed": 0}
            assert row["scores"]["accuracy_official"] == float(details["fallback_letter"]
                                                               == row["target"])
        else:  # parsed answers (and open questions) draw nothing: both accuracies agree
            assert details is None
            assert row["scores"].get("accuracy_official") == row["scores"].get("accuracy")


def official_records(n: int = 40, seed: int = 0) -> list:
    """Scored records of ``n`` four-option questions, every third one unparsed."""
    from healthbench.core.types import Response
    from healthbench.run.evaluate import build_metrics
    from healthbench.run.seeds import seeded_task
    from healthbench.scoring.score import score_sample

    task = seeded_task(tasks("mmmu_med")[0], seed)
    metrics = build_metrics(task)
    out = []
    for i in range(n):
        sample = Sample(id=f"q{i}", question="Which drug?", options=DRUGS, target="ABCD"[i % 4],
                        meta={"question_type": "multiple-choice", "order": i, "n_options": 4})
        text = "I cannot say" if i % 3 == 0 else f"({'ABCD'[(i * 7) % 4]})"
        out.append(score_sample(task, metrics, sample, Response(text=text)))
    return out


def test_official_accuracy_is_the_same_whatever_was_scored_before_and_in_any_order() -> None:
    from healthbench.scoring.aggregate import summarize_task
    from healthbench.scoring.base import aggregate
    from healthbench.suites.mmmu.metrics import mmmu_accuracy

    records = official_records()
    whole_ids = [r.id for r in records]
    subset = records[5:23]
    # per sample, the official score is the recorded draw compared with the target
    for r in records:
        expected = float((drawn(0, r.id) if r.parsed is None else r.parsed) == r.target)
        assert r.scores["accuracy_official"] == expected
    # whole, subset, whole again, with every order shuffled and a fresh or reused metric
    metric = mmmu_accuracy(mode="official", seed=0)
    rng = random.Random(7)
    seen: dict[str, list[float]] = {"whole": [], "subset": []}
    for _ in range(5):
        for name, part in (("whole", records), ("subset", subset), ("whole", records)):
            shuffled = list(part)
            rng.shuffle(shuffled)
            seen[name].append(aggregate(metric, shuffled))
            seen[name].append(summarize_task([metric], shuffled, (), seed=0)
                              ["metrics"]["accuracy_official"]["value"])
    assert len(set(seen["whole"])) == 1 and len(set(seen["subset"])) == 1
    by_id = {r.id: r.scores["accuracy_official"] for r in records}
    assert seen["whole"][0] == pytest.approx(sum(by_id[i] for i in whole_ids) / len(whole_ids))
    assert seen["subset"][0] == pytest.approx(sum(by_id[r.id] for r in subset) / len(subset))
    # scoring the samples again, alone or in another order, draws the same letters
    again = {r.id: r for r in reversed(official_records())}
    assert all(again[r.id].to_json() == r.to_json() for r in records)


def test_the_run_seed_reaches_the_fallback_unless_the_task_sets_one(tmp_path: Path) -> None:
    from dataclasses import replace

    from healthbench.taskconfig.schema import NamedCall

    write_mmmu(tmp_path)
    saved = tmp_path / "responses.jsonl"
    saved.write_text("".join(json.dumps({"task": "mmmu_med", "id": i, "response": r}) + "\n"
                             for i, r in RESPONSES.items()))
    task = tasks("mmmu_med")[0]
    pinned = replace(task, metrics=tuple(
        NamedCall(c.name, {**c.args, "seed": 42}) if c.args.get("mode") == "official" else c
        for c in task.metrics))
    for run_id, config, seed, expected_seed in (("s3", task, 3, 3), ("pinned", pinned, 3, 42)):
        payload = evaluate(RunSpec(model="replay", model_args={"path": str(saved)},
                                   tasks=[config], data_root=tmp_path, seed=seed,
                                   output_path=tmp_path / "out", run_id=run_id,
                                   settings=RunSettings(progress=False)))
        rows = samples_of(tmp_path / "out" / run_id)
        letters = [rows[i]["meta"]["details"]["accuracy_official"] for i in FALLBACKS]
        assert letters == [{"fallback_letter": drawn(expected_seed, i), "seed": expected_seed}
                           for i in FALLBACKS]
        block = payload["tasks"]["mmmu_med"]
        assert block["seeds"]["official_fallback"]["metrics[1]:mmmu_accuracy"] == expected_seed
        assert block["metric_info"]["accuracy_official"]["args"] == {"mode": "official",
                                                                      "seed": expected_seed}
        right = sum(drawn(expected_seed, i) == rows[i]["target"] for i in FALLBACKS)
        assert value(block, "accuracy_official") == pytest.approx((4 + right) / 8)


def test_compare_reads_each_runs_recorded_official_scores(tmp_path: Path) -> None:
    from healthbench.report.compare import compare_runs
    from healthbench.report.runs import load_run

    write_mmmu(tmp_path)
    run_dirs = {}
    for run_id, responses in (
            ("base", RESPONSES),  # fallbacks BMS_2, CM_2, PH_1
            ("new", {**RESPONSES, "validation_Basic_Medical_Science_2": "(A)",
                     "validation_Clinical_Medicine_2": "(A)"})):  # only PH_1 falls back
        saved = tmp_path / f"{run_id}.jsonl"
        saved.write_text("".join(json.dumps({"task": "mmmu_med", "id": i, "response": r}) + "\n"
                                 for i, r in responses.items()))
        evaluate(RunSpec(model="replay", model_args={"path": str(saved)},
                         tasks=tasks("mmmu_med"), data_root=tmp_path,
                         output_path=tmp_path / "out", run_id=run_id,
                         settings=RunSettings(progress=False)))
        run_dirs[run_id] = tmp_path / "out" / run_id
    stored = {run_id: json.loads((d / "results.json").read_text())["tasks"]["mmmu_med"]
              for run_id, d in run_dirs.items()}
    report = compare_runs(load_run(run_dirs["base"]), load_run(run_dirs["new"]), resamples=50)
    found = {(c.group_key, c.group_value): c.result for c in report.comparisons
             if c.metric == "accuracy_official"}
    overall = found[("overall", "all")]
    assert overall.baseline == pytest.approx(value(stored["base"], "accuracy_official"))
    assert overall.new == pytest.approx(value(stored["new"], "accuracy_official"))
    public_health = found[("subject", "Public_Health")]
    assert public_health.baseline == pytest.approx(
        value(stored["base"], "accuracy_official", "subject", "Public_Health"))
    assert public_health.new == pytest.approx(
        value(stored["new"], "accuracy_official", "subject", "Public_Health"))

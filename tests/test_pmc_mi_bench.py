"""PMC-MI-Bench: official-format fixtures, the benchmark's own scorer, errors counted."""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
from nltk.translate.bleu_score import sentence_bleu

from healthbench.data.paths import DatasetMissingError
from healthbench.suites.pmc_mi_bench.loader import (SUBTASK_FILES, load_pmc_mi_bench,
                                           parse_choice_options, pmc_mi_bench_prompt)
from healthbench.run.evaluate import RunSpec, evaluate
from healthbench.suites.pmc_mi_bench.metrics import (bleu4, bleu_tokens, judge_multi_choice,
                                              official_options, rouge_l, token_f1)
from healthbench.run.runner import RunSettings
from healthbench.taskconfig.index import TaskIndex
from healthbench.core.types import SampleError

from helpers import write_png

REF = "The lesion is hypointense on T1. It shows peripheral enhancement after contrast."
MC_CONVERTED = ("The question is Based on Fig-3, what does the staining show? The candidate "
                "options are: A. Normal ducts\nB. Ground-glass opacity\nC. Absent expression\n"
                "D. Intact adhesion")
MC_ORIGINAL = "What does the staining show?\nA. Normal ducts\nB. Ground-glass opacity\n" \
              "C. Absent expression\nD. Intact adhesion"


def _image_item(question: str, gt: str, figs: list[str], compound: str = "PMC1_f1.jpg") -> dict:
    return {"question": question, "gt": gt,
            "images": [compound] + [f"{compound}_{k}.jpg" for k in range(len(figs) - 1)],
            "image_indices": figs}


def write_pmc(root: Path) -> Path:
    """``root/PMC-MI-Bench`` in the official layout: six files, images, and some bad rows."""
    base = root / "PMC-MI-Bench"
    data = {
        "puretext": [
            {"question": "What is T1?", "gt": REF, "images_puretext": ["PMC1_f1.jpg"],
             "image_indices": ["Fig-0"]},
            {"question": "What is T2?", "gt": "Water is bright.", "image_indices": ["Fig-0"],
             "images_puretext": ["PMC1_f1.jpg"], "id": "q-two"},
            {"question": "No answer here", "images_puretext": ["PMC1_f1.jpg"],
             "image_indices": ["Fig-0"]},                                   # bad: no gt
        ],
        "multi-choice": [
            _image_item(MC_CONVERTED, "D", ["Fig-0", "Fig-3"]),
            _image_item(MC_CONVERTED, "B", ["Fig-0", "Fig-3"]),
            _image_item(MC_ORIGINAL, "A", ["Fig-0", "Fig-1"]),
            _image_item(MC_ORIGINAL, "E", ["Fig-0", "Fig-1"]),             # bad: gt not an option
        ],
        "compoundVQA": [
            _image_item("Describe the figure.", REF, ["Fig-0"]),
            _image_item("How many panels?", "Four panels.", ["Fig-0"]),
        ],
        "single-subimageVQA": [
            _image_item("What does Fig-3 show?", "A CT of the head.", ["Fig-0", "Fig-3"]),
            _image_item("What does Fig-1 show?", "An MR image.", ["Fig-0", "Fig-1", "Fig-2"]),
        ],
        "multisubimageVQA": [
            _image_item("Compare Fig-3, Fig-4 and Fig-1.", REF, ["Fig-0", "Fig-3", "Fig-4",
                                                                 "Fig-1"]),
            {"question": "Labels missing", "gt": "x", "images": ["PMC1_f1.jpg", "b.jpg"],
             "image_indices": ["Fig-0"]},                                   # bad: 2 images, 1 label
        ],
        "bboxVQA": [
            _image_item("Where is Fig-2 relative to Fig-1?", "Fig-2 is right of Fig-1.",
                        ["Fig-0", "Fig-1", "Fig-2"]),
            {"question": "Escape", "gt": "x", "images": ["../../secret.jpg"],
             "image_indices": ["Fig-0"]},                                   # bad: unsafe path
            _image_item("Where is Fig-4?", "Below Fig-2.", ["Fig-0", "Fig-4"],
                        compound="PMC9_missing.jpg"),                       # bad: image absent
        ],
    }
    (base / "benchmark_data").mkdir(parents=True)
    for subtask, items in data.items():
        (base / "benchmark_data" / SUBTASK_FILES[subtask]).write_text(json.dumps(items))
    for k, name in enumerate(["PMC1_f1.jpg"] + [f"PMC1_f1.jpg_{i}.jpg" for i in range(3)]):
        write_png(base / "benchmark_images" / name, seed=k)
    return base


def run_replay(tmp_path: Path, tasks: list[str], responses: dict[tuple[str, str], str],
               data_root: Path | None = None) -> dict:
    saved = tmp_path / "responses.jsonl"
    saved.write_text("".join(json.dumps({"task": t, "id": i, "response": r}) + "\n"
                             for (t, i), r in responses.items()))
    spec = RunSpec(model="replay", model_args={"path": str(saved)},
                   tasks=TaskIndex.build().resolve(tasks), data_root=data_root or tmp_path,
                   output_path=tmp_path / "out", run_id="r",
                   settings=RunSettings(progress=False, workers=1))
    return evaluate(spec)["tasks"]


def _bleu(ref: str, pred: str) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return sentence_bleu([bleu_tokens(ref)], bleu_tokens(pred), weights=(0.25,) * 4)


def test_official_fixture_scored_through_replay_gives_the_expected_metrics(
        tmp_path: Path) -> None:
    write_pmc(tmp_path)
    partial = "The lesion is hypointense on T1. It shows enhancement."
    responses = {
        ("pmc_mi_bench_puretext", "puretext/0"): REF,            # exact: every metric 1
        ("pmc_mi_bench_puretext", "puretext/q-two"): "unrelated words",
        ("pmc_mi_bench_multichoice", "multi-choice/0"): "D",
        ("pmc_mi_bench_multichoice", "multi-choice/1"): "The answer is B.",
        ("pmc_mi_bench_multichoice", "multi-choice/2"): "I am not sure",
        ("pmc_mi_bench_compound", "compoundVQA/0"): partial,
        ("pmc_mi_bench_compound", "compoundVQA/1"): "four panels",
        ("pmc_mi_bench_single_subimage", "single-subimageVQA/0"): "A CT of the head.",
        ("pmc_mi_bench_single_subimage", "single-subimageVQA/1"): "A CT.",
        ("pmc_mi_bench_multi_subimage", "multisubimageVQA/0"): "",
        ("pmc_mi_bench_spatial", "bboxVQA/0"): "Fig-2 is right of Fig-1.",
        ("pmc_mi_bench_spatial", "bboxVQA/2"): "never asked: its image is missing",
    }
    out = run_replay(tmp_path, ["pmc_mi_bench"], responses)

    def metric(task: str, name: str) -> float:
        return out[task]["metrics"][name]["value"]

    # text-only: one exact answer, one with no overlap; the item without gt is an error
    pure = out["pmc_mi_bench_puretext"]
    assert (pure["n"], pure["n_errors"]) == (2, 1)
    assert metric("pmc_mi_bench_puretext", "pmc_mi_bleu4") == pytest.approx(0.5)
    assert metric("pmc_mi_bench_puretext", "pmc_mi_rouge_l") == pytest.approx(0.5, abs=1e-8)
    assert metric("pmc_mi_bench_puretext", "pmc_mi_exact_match") == 0.5
    assert metric("pmc_mi_bench_puretext", "pmc_mi_token_f1") == 0.5
    # multiple choice: two letters right, one unparsed; gt "E" is a counted error
    mc = out["pmc_mi_bench_multichoice"]
    assert (mc["n"], mc["n_errors"]) == (3, 1)
    assert metric("pmc_mi_bench_multichoice", "accuracy") == pytest.approx(2 / 3)
    assert metric("pmc_mi_bench_multichoice", "parse_failure") == pytest.approx(1 / 3)
    # Table 4's F1 keeps only bare-letter answers: here the single "D"
    assert metric("pmc_mi_bench_multichoice", "pmc_mi_choice_macro_f1") == 1.0
    assert metric("pmc_mi_bench_multichoice", "pmc_mi_choice_official") == pytest.approx(2 / 3)
    # compound: BLEU exactly nltk's on the official tokens; "four panels" vs "Four panels."
    expected_bleu = (_bleu(REF, partial) + _bleu("Four panels.", "four panels")) / 2
    assert metric("pmc_mi_bench_compound", "pmc_mi_bleu4") == pytest.approx(expected_bleu,
                                                                            abs=1e-12)
    assert metric("pmc_mi_bench_compound", "pmc_mi_exact_match") == 0.0
    # token F1 is over whitespace token sets: {"four","panels"} vs {"four","panels."} = 0.5
    assert metric("pmc_mi_bench_compound", "pmc_mi_token_f1") == pytest.approx(
        (token_f1(REF, partial) + 0.5) / 2)
    single = out["pmc_mi_bench_single_subimage"]
    assert (single["n"], single["n_errors"]) == (2, 0)
    assert metric("pmc_mi_bench_single_subimage", "pmc_mi_exact_match") == 0.5
    # an empty answer scores 0 everywhere; the bad label row is counted
    multi = out["pmc_mi_bench_multi_subimage"]
    assert (multi["n"], multi["n_errors"]) == (1, 1)
    assert metric("pmc_mi_bench_multi_subimage", "pmc_mi_rouge_l") == 0.0
    # spatial: the unsafe path and the missing image are errors, never dropped
    spatial = out["pmc_mi_bench_spatial"]
    assert (spatial["n"], spatial["n_errors"], spatial["n_total"]) == (1, 2, 3)
    assert metric("pmc_mi_bench_spatial", "pmc_mi_bleu4") == pytest.approx(1.0)
    errors = [json.loads(line) for line in
              (tmp_path / "out/r/pmc_mi_bench_spatial/samples.jsonl").read_text().splitlines()]
    messages = " | ".join(e["error"] for e in errors if e["error"])
    assert "'..'" in messages and "PMC9_missing.jpg" in messages


def test_labels_stay_paired_with_their_images_as_given(tmp_path: Path) -> None:
    base = write_pmc(tmp_path)
    items = load_pmc_mi_bench(base, "multisubimageVQA").items
    sample = items[0]
    assert [img.label for img in sample.images] == ["Fig-0", "Fig-3", "Fig-4", "Fig-1"]
    assert [img.path.name for img in sample.images] == [
        "PMC1_f1.jpg", "PMC1_f1.jpg_0.jpg", "PMC1_f1.jpg_1.jpg", "PMC1_f1.jpg_2.jpg"]
    assert sample.meta["image_labels"] == ["Fig-0", "Fig-3", "Fig-4", "Fig-1"]
    system, prompt = pmc_mi_bench_prompt(sample)
    assert "Fig-3: <image 2>\nFig-4: <image 3>\nFig-1: <image 4>\nCompare" in prompt
    assert system and system not in prompt  # the official system prompt is a system turn
    assert isinstance(items[1], SampleError) and "one label per image" in items[1].message


def test_text_only_items_show_no_image_and_keep_the_stored_one_in_meta(tmp_path: Path) -> None:
    base = write_pmc(tmp_path)
    sample = load_pmc_mi_bench(base, "puretext").items[0]
    assert sample.images == () and sample.meta["source_images"] == ["PMC1_f1.jpg"]
    assert sample.id == "puretext/0"
    assert load_pmc_mi_bench(base, "puretext").items[1].id == "puretext/q-two"


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_bleu4_agrees_with_nltk_sentence_bleu_on_the_official_tokens() -> None:
    pairs = [
        (REF, "The lesion is hypointense on T1. It shows peripheral enhancement."),
        ("Fig-2 shows a CT. Fig-3 shows an MRI.", "fig-2 shows a ct.fig-3 shows an mri."),
        ("Water is bright on T2.", "On T2, water appears bright."),
        ("A B C D E F", "a b c d e f"),
        ("short", "short"),
        ("No overlap at all here.", ""),
    ]
    for ref, pred in pairs:
        expected = sentence_bleu([ref.lower().replace(".", " .").split()],
                                 pred.lower().replace(".", " .").split(),
                                 weights=(0.25, 0.25, 0.25, 0.25))
        assert bleu4(ref, pred) == pytest.approx(float(expected), abs=1e-15)
    assert bleu4("A B C D E F", "a b c d e f") == 1.0  # lower-cased before comparing


def test_rouge_l_matches_hand_computed_union_lcs() -> None:
    # one sentence each: LCS words {a, c, d}; 4 distinct ref words, 4 hyp words → P=R=0.75
    assert rouge_l("a b c d", "a c x d") == pytest.approx(2 * 0.75 * 0.75 / (1.5 + 1e-8))
    assert rouge_l("Same text.", "same text.") == pytest.approx(1.0, abs=1e-7)
    assert rouge_l("anything", "") == 0.0 and rouge_l("", "anything") == 0.0
    assert rouge_l("x", "...") == 0.0  # only full stops: an empty hypothesis upstream


def test_rouge_l_agrees_with_the_rouge_package() -> None:
    rouge = pytest.importorskip("rouge")
    scorer = rouge.Rouge()
    pairs = [
        (REF, "The lesion is hypointense on T1. It shows enhancement."),
        ("Fig-1 shows X. Fig-2 shows Y. Both are CT.", "fig-2 shows y and fig-1 shows x."),
        ("the cat the cat sat on the mat", "the mat the cat the sat"),
        ("a b. c d. ", "c d a b"),
        ("Multiple rounded opacities. No effusion.", "No effusion. Rounded opacities seen."),
        ("one", "two"),
    ]
    for ref, pred in pairs:
        expected = scorer.get_scores(pred.lower(), ref.lower())[0]["rouge-l"]["f"]
        assert rouge_l(ref, pred) == pytest.approx(expected, abs=1e-12), (ref, pred)


def test_exact_match_and_token_f1_follow_the_official_definitions() -> None:
    from healthbench.suites.pmc_mi_bench.metrics import exact_match

    assert exact_match(" Four panels. ", "four PANELS.") == 1.0
    assert token_f1("a b c", "a b d d") == pytest.approx(2 * (2 / 3) * (2 / 3) / (4 / 3))
    assert token_f1("a b", "") == 0.0 and token_f1("a", "b") == 0.0


def test_choice_options_parse_from_both_official_question_formats() -> None:
    expected = {"A": "Normal ducts", "B": "Ground-glass opacity", "C": "Absent expression",
                "D": "Intact adhesion"}
    assert parse_choice_options(MC_CONVERTED) == expected
    assert parse_choice_options(MC_ORIGINAL) == expected
    indented = "Q? The candidate options are: A. one  \n  B. two  \n  C.three\nD. four"
    assert parse_choice_options(indented) == {"A": "one", "B": "two", "C": "three", "D": "four"}


def test_official_judge_is_reproduced_with_its_option_parsing_quirk() -> None:
    # the converted format loses option A in the line-based official parser
    assert official_options(MC_CONVERTED) == ["ground-glass opacity", "absent expression",
                                              "intact adhesion"]
    assert official_options(MC_ORIGINAL)[0] == "normal ducts"
    choices = official_options(MC_CONVERTED)
    assert judge_multi_choice(choices, "D", "D")                      # letters compare directly
    assert judge_multi_choice(choices, "D", "The answer is D.")
    # free text naming D's option is matched to index 2, i.e. letter "c": judged wrong upstream
    assert not judge_multi_choice(choices, "D", "Intact adhesion")
    assert judge_multi_choice(official_options(MC_ORIGINAL), "D", "intact adhesion")


def test_missing_dataset_names_the_expected_layout(tmp_path: Path) -> None:
    with pytest.raises(DatasetMissingError) as err:
        load_pmc_mi_bench(tmp_path / "PMC-MI-Bench", "puretext")
    assert "benchmark_data" in str(err.value) and "benchmark_images" in str(err.value)
    (tmp_path / "PMC-MI-Bench" / "benchmark_data").mkdir(parents=True)
    with pytest.raises(DatasetMissingError, match="puretextQA_benchmark.json"):
        load_pmc_mi_bench(tmp_path / "PMC-MI-Bench", "puretext")


def test_bundled_sample_is_official_format_and_gold_answers_score_perfectly(
        sample_data_root: Path, tmp_path: Path) -> None:
    tasks = TaskIndex.build().resolve(["pmc_mi_bench_sample"])
    from healthbench.run.prepare import load_task_data

    responses = {}
    total = 0
    for task in tasks:
        loaded, _ = load_task_data(task, sample_data_root)
        assert all(not isinstance(i, SampleError) for i in loaded.items)
        total += len(loaded.items)
        for item in loaded.items:
            responses[(task.name, item.id)] = item.target
            assert all(img.path.is_file() for img in item.images)
    assert 10 <= total <= 20
    out = run_replay(tmp_path, ["pmc_mi_bench_sample"], responses, data_root=sample_data_root)
    for name, block in out.items():
        assert block["n_errors"] == 0, name
        for metric, summary in block["metrics"].items():
            expected = 0.0 if metric == "parse_failure" else 1.0
            assert summary["value"] == pytest.approx(expected, abs=1e-7), (name, metric)
    data = json.loads((sample_data_root / "healthbench-samples/PMC-MI-Bench/benchmark_data/"
                       "multiplechoiceVQA_benchmark.json").read_text())
    assert set(data[0]) == {"question", "gt", "images", "image_indices"}


def test_choice_macro_f1_keeps_bare_letters_and_matches_sklearn() -> None:
    from sklearn.metrics import f1_score

    from healthbench.core.catalog import METRICS
    from healthbench.core.types import SampleResult

    rows = [("A", "A"), ("A", "B"), ("B", "B"), ("C", " C "), ("D", "D."), ("D", "answer: D")]
    records = [SampleResult(id=str(i), task="t", target=t, response=r, parsed=None, scores={},
                            meta={}) for i, (t, r) in enumerate(rows)]
    value = METRICS.get("pmc_mi_choice_macro_f1")().corpus(records)
    assert value == pytest.approx(f1_score(["A", "A", "B", "C"], ["A", "B", "B", "C"],
                                           average="macro", zero_division=0))

"""``protocol: llava-med`` and ``protocol: medevalkit`` give the peers' own numbers.

For VQA-RAD (OSF release), SLAKE (Slake1.0/test.json) and PathVQA (Hub parquet), a fixture of
well over 40 items in the official layout crosses closed, two-way and open answers with tricky
responses, runs them through the real pipeline (``replay``) with the protocol variants of the
shipped task files, and compares with the re-statements of LLaVA-Med's ``run_eval.py`` and
MedEvalKit's ``cal_metrics`` in ``tests/medvqa_peers.py`` (written from the peers' published
code, files cited there). ``strict`` gives the documented differences, response by response.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from healthbench.suites.medvqa.llava_med import _CONTRACTIONS
from tests.helpers import write_png
from tests.medvqa_peers import llava_med_evaluate, medevalkit_cal_metrics, normalize_word
from tests.test_medvqa import metric, run_replay, write_hub_parquet

# --- fixtures: tricky responses × answers -------------------------------------------------------

RESPONSES = ["Not sure", "yes and no", "Yes, there is a nodule", "the liver", "Three",
             "Granuloma.", "<answer>no</answer>", "", "yes", "No.", "\\boxed{yes}",
             "The answer is liver", "Final answer: no", "left lung", "liver liver", "3",
             "<answer>liver</answer>", "There is no effusion.", "YES", "It is a CT scan", "none",
             "The lesion is in the left lower lobe, not the right.", "...", "no, it is normal",
             "<think>maybe yes</think>\n\\boxed{\\text{no}}", "CT", "3, 5 and 7", "lung lung lung"]


def pairs(answers: list[tuple[str, str]]) -> list[tuple[str, str, str]]:
    """(answer, answer_type, response): every answer with every response."""
    return [(a, t, r) for a, t in answers for r in RESPONSES]


def replay_all(tmp_path: Path, base: str, ids: list[str], responses: list[str],
               data_root: Path) -> dict[str, dict]:
    answers = dict(zip(ids, responses))
    blocks = {}
    for suffix in ("", "_llava_med", "_medevalkit"):
        blocks[suffix.lstrip("_") or "strict"] = run_replay(tmp_path, base + suffix, answers, data_root)
    return blocks


def per_sample(tmp_path: Path, task: str) -> dict[str, dict[str, Any]]:
    path = tmp_path / "out" / f"r-{task}" / task / "samples.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    return {r["id"]: r for r in rows}


def check_peers(blocks: dict[str, dict], items: list[tuple[str, str, str]],
                llava_types: list[str], slake: bool) -> None:
    gt = [{"conversations": [{}, {"value": a}], "answer_type": t}
          for (a, _, _), t in zip(items, llava_types)]
    llava = llava_med_evaluate(gt, [{"text": r} for _, _, r in items])
    assert metric(blocks["llava_med"], "closed_accuracy") == pytest.approx(llava["closed"])
    assert metric(blocks["llava_med"], "open_recall") == pytest.approx(llava["recall"])
    mek = medevalkit_cal_metrics([{"response": r, "answer": a, "answer_type": t}
                                  for a, t, r in items], slake)
    assert metric(blocks["medevalkit"], "closed_accuracy") == pytest.approx(mek["close"])
    assert metric(blocks["medevalkit"], "open_exact_match") == pytest.approx(mek["open"])
    assert metric(blocks["medevalkit"], "medvqa_accuracy") == pytest.approx(mek["total"])
    assert blocks["llava_med"]["protocol"] == "llava-med"
    assert blocks["medevalkit"]["protocol"] == "medevalkit"


def scores(tmp_path: Path, base: str, sample_id: str) -> dict[str, dict[str, float | None]]:
    return {name: per_sample(tmp_path, base + suffix)[sample_id]["scores"]
            for name, suffix in (("strict", ""), ("llava-med", "_llava_med"),
                                 ("medevalkit", "_medevalkit"))}


# --- VQA-RAD (OSF release) ----------------------------------------------------------------------

VQA_RAD_ANSWERS = [("yes", "CLOSED"), ("no", "CLOSED"), ("CT", "CLOSED"), ("liver", "OPEN"),
                   ("3", "OPEN"), ("left lung", "OPEN"), ("granuloma", "OPEN"), ("no", "OPEN")]


def write_vqa_rad(root: Path, items: list[tuple[str, str, str]]) -> list[str]:
    base = root / "VQA-RAD"
    rows = [{"qid": i, "image_name": "synpic1.jpg", "image_organ": "CHEST", "answer": a,
             "answer_type": t, "question_type": "PRES", "question": f"question {i}?",
             "phrase_type": "test_freeform" if i % 2 else "test_para"}
            for i, (a, t, _) in enumerate(items)]
    (base / "VQA_RAD Dataset Public.json").parent.mkdir(parents=True)
    (base / "VQA_RAD Dataset Public.json").write_text(json.dumps(rows))
    write_png(base / "VQA_RAD Image Folder" / "synpic1.jpg")
    return [str(i) for i in range(len(items))]


def test_vqa_rad_protocols_equal_the_peers(tmp_path: Path) -> None:
    items = pairs(VQA_RAD_ANSWERS)
    assert len(items) >= 40
    ids = write_vqa_rad(tmp_path / "data", items)
    blocks = replay_all(tmp_path, "vqa_rad", ids, [r for *_, r in items], tmp_path / "data")
    assert all(b["n"] == len(items) and b["n_errors"] == 0 for b in blocks.values())
    # LLaVA-Med's converted test file keeps VQA-RAD's own answer_type (CLOSED "CT", OPEN "no").
    check_peers(blocks, items, [t for _, t, _ in items], slake=False)

    def case(answer: str, kind: str, response: str) -> dict:
        return scores(tmp_path, "vqa_rad", ids[items.index((answer, kind, response))])

    # The documented differences from strict, one response each.
    not_sure = case("no", "CLOSED", "Not sure")  # "no" is a substring of "not"
    assert not_sure["strict"]["closed_accuracy"] == 0.0
    assert not_sure["llava-med"]["closed_accuracy"] == 1.0
    assert not_sure["medevalkit"]["closed_accuracy"] == 1.0
    nodule = case("yes", "CLOSED", "Yes, there is a nodule")  # "nodule" contains "no"
    assert nodule["strict"]["closed_accuracy"] == 1.0
    assert nodule["medevalkit"]["closed_accuracy"] == 0.0
    assert case("no", "CLOSED", "Yes, there is a nodule")["llava-med"]["closed_accuracy"] == 1.0
    both = case("yes", "CLOSED", "yes and no")
    assert (both["strict"]["closed_accuracy"], both["llava-med"]["closed_accuracy"],
            both["medevalkit"]["closed_accuracy"]) == (0.0, 1.0, 0.0)
    three = case("3", "OPEN", "Three")  # number words become digits for LLaVA-Med only
    assert (three["strict"]["open_recall"], three["llava-med"]["open_recall"]) == (0.0, 1.0)
    granuloma = case("granuloma", "OPEN", "Granuloma.")  # MedEvalKit keeps the period
    assert granuloma["strict"]["open_exact_match"] == 1.0
    assert granuloma["medevalkit"]["open_exact_match"] == 0.0
    cue = case("liver", "OPEN", "The answer is liver")  # MedEvalKit keeps the space: " liver"
    assert (cue["strict"]["open_exact_match"], cue["medevalkit"]["open_exact_match"]) == (0, 0)
    wrapped = case("liver", "OPEN", "<answer>liver</answer>")
    assert wrapped["strict"]["open_exact_match"] == wrapped["medevalkit"]["open_exact_match"] == 1
    assert case("left lung", "OPEN", "liver liver")["llava-med"]["open_recall"] == 0.0
    lungs = case("left lung", "OPEN", "lung lung lung")  # LLaVA-Med counts every "lung"
    assert (lungs["strict"]["open_recall"], lungs["llava-med"]["open_recall"]) == (0.5, 0.75)
    # "CT" is CLOSED in VQA-RAD's own field: LLaVA-Med's yes/no rule scores it 0 even when
    # right; strict and MedEvalKit treat it as open (the answer is not yes/no).
    ct = case("CT", "CLOSED", "CT")
    assert ct["llava-med"]["closed_accuracy"] == 0.0 and ct["llava-med"]["open_recall"] is None
    assert ct["strict"]["open_exact_match"] == ct["medevalkit"]["open_exact_match"] == 1.0
    empty = case("liver", "OPEN", "")  # MedEvalKit raises here; scored 0
    assert empty["medevalkit"]["open_exact_match"] == 0.0


# --- SLAKE (Slake1.0/test.json) -----------------------------------------------------------------

SLAKE_ANSWERS = [("Yes", "CLOSED"), ("No", "CLOSED"), ("no", "CLOSED"), ("Liver", "CLOSED"),
                 ("liver", "OPEN"), ("3", "OPEN"), ("Left Lung", "OPEN"), ("granuloma", "OPEN")]


def write_slake(root: Path, items: list[tuple[str, str, str]]) -> list[str]:
    base = root / "Slake1.0"
    rows = [{"img_id": 102, "img_name": "xmlab102/source.jpg", "question": f"question {i}?",
             "answer": a, "q_lang": "en", "location": "Abdomen", "modality": "CT",
             "answer_type": t, "base_type": "vqa", "content_type": "Organ",
             "triple": ["vhead", "_", "_"], "qid": 1000 + i}
            for i, (a, t, _) in enumerate(items)]
    base.mkdir(parents=True)
    (base / "test.json").write_text(json.dumps(rows))
    write_png(base / "imgs" / "xmlab102" / "source.jpg")
    return [str(1000 + i) for i in range(len(items))]


def test_slake_protocols_equal_the_peers(tmp_path: Path) -> None:
    items = pairs(SLAKE_ANSWERS)
    ids = write_slake(tmp_path / "data", items)
    blocks = replay_all(tmp_path, "slake", ids, [r for *_, r in items], tmp_path / "data")
    assert all(b["n"] == len(items) and b["n_errors"] == 0 for b in blocks.values())
    check_peers(blocks, items, [t for _, t, _ in items], slake=True)

    def case(answer: str, kind: str, response: str) -> dict:
        return scores(tmp_path, "slake", ids[items.index((answer, kind, response))])

    # SLAKE's "Yes" is not "yes" to MedEvalKit's answer-type test: exact match applies.
    capital = case("Yes", "CLOSED", "Yes, there is a nodule")
    assert capital["strict"]["closed_accuracy"] == 1.0
    assert capital["medevalkit"]["closed_accuracy"] == 0.0
    assert case("Yes", "CLOSED", "yes")["medevalkit"]["closed_accuracy"] == 1.0
    lower = case("no", "CLOSED", "Not sure")
    assert (lower["strict"]["closed_accuracy"], lower["medevalkit"]["closed_accuracy"]) == (0, 1)
    # A two-way closed answer: strict and MedEvalKit match exactly, LLaVA-Med wants yes/no.
    the_liver = case("Liver", "CLOSED", "the liver")
    assert the_liver["strict"]["closed_accuracy"] == 0.0
    assert the_liver["llava-med"]["closed_accuracy"] == 0.0
    assert case("Liver", "CLOSED", "There is no effusion.")["llava-med"]["closed_accuracy"] == 0
    # SLAKE responses are not stripped by MedEvalKit (VQA-RAD's are); articles are LLaVA-Med's
    assert case("liver", "OPEN", "the liver")["llava-med"]["open_recall"] == 1.0


def test_slake_medevalkit_scores_chinese_questions_too(tmp_path: Path) -> None:
    base = tmp_path / "Slake1.0"
    rows = [{"img_name": "a/source.jpg", "question": "q?", "answer": a, "q_lang": lang,
             "modality": "CT", "answer_type": t, "content_type": "Organ", "qid": i}
            for i, (a, t, lang) in enumerate([("是", "CLOSED", "zh"), ("肝脏", "OPEN", "zh"),
                                              ("Yes", "CLOSED", "en")])]
    base.mkdir()
    (base / "test.json").write_text(json.dumps(rows, ensure_ascii=False))
    write_png(base / "imgs" / "a" / "source.jpg")
    answers = {"0": "是", "1": "肝脏。", "2": "yes"}
    block = run_replay(tmp_path, "slake_medevalkit", answers)
    assert block["n"] == 3
    expected = medevalkit_cal_metrics([{"response": answers[str(r["qid"])], "answer": r["answer"],
                                        "answer_type": r["answer_type"]} for r in rows], True)
    assert metric(block, "medvqa_accuracy") == pytest.approx(expected["total"])
    assert run_replay(tmp_path, "slake_llava_med", answers)["n"] == 1  # English only


# --- PathVQA (Hub parquet) ----------------------------------------------------------------------

PATHVQA_ANSWERS = [("yes", ""), ("no", ""), ("Yes", ""), ("liver", ""), ("3", ""),
                   ("left lung", ""), ("granuloma", "")]


def test_pathvqa_protocols_equal_the_peers(tmp_path: Path) -> None:
    items = pairs(PATHVQA_ANSWERS)
    half = len(items) // 2
    rows = [(f"question {i}?", a) for i, (a, _, _) in enumerate(items)]
    write_hub_parquet(tmp_path / "data" / "PathVQA", "test", [rows[:half], rows[half:]])
    ids = [f"test/{i}" for i in range(len(items))]
    blocks = replay_all(tmp_path, "pathvqa", ids, [r for *_, r in items], tmp_path / "data")
    assert all(b["n"] == len(items) and b["n_errors"] == 0 for b in blocks.values())
    # The Hub files have no answer_type: assumed CLOSED iff yes/no (LLaVA-Med's converted
    # files are not published; docs/metrics.md says so).
    types = ["CLOSED" if a.lower() in ("yes", "no") else "OPEN" for a, _, _ in items]
    check_peers(blocks, items, types, slake=False)
    mek = medevalkit_cal_metrics([{"response": r, "answer": a} for a, _, r in items], False)
    assert mek["open_printed"] == pytest.approx(mek["open"] / types.count("OPEN"))  # not ours

    def case(answer: str, response: str) -> dict:
        return scores(tmp_path, "pathvqa", ids[items.index((answer, "", response))])

    boxed = case("no", "<think>maybe yes</think>\n\\boxed{\\text{no}}")
    assert boxed["strict"]["closed_accuracy"] == 1.0  # the wrapper, \text{} unwrapped
    assert boxed["medevalkit"]["closed_accuracy"] == 1.0  # "\text{no}" holds "no" only
    final = case("no", "Final answer: no")
    assert final["strict"]["closed_accuracy"] == final["medevalkit"]["closed_accuracy"] == 1.0
    numbers = case("3", "3, 5 and 7")  # LLaVA-Med deletes punctuation next to "digit,digit"
    assert numbers["llava-med"]["open_recall"] == 1.0


# --- the LLaVA-Med normalisation, on its own ----------------------------------------------------

@pytest.mark.parametrize("text", ["Three.", "The left-lung, (upper) lobe!", "3,000 cells.",
                                  "dont know", "1.5 cm. a. b. c. d. e. f. g. h. i. j. k. l."
                                  " m. n. o. p. q. r. s. t. u. v. w. x. y. z. A. B. C. D. E. F.",
                                  "none of the above", "a/b", "x / y", "\\boxed{no}", ""])
def test_llava_med_normalize_word_agrees(text: str) -> None:
    from healthbench.suites.medvqa.llava_med import normalize_word as ours

    assert ours(text.lower()) == normalize_word(text.lower())
    assert _CONTRACTIONS["dont"] == "don't" and _CONTRACTIONS["somebody'd"] == "somebodyd"


# --- the examples docs/metrics.md gives, one per quirk -----------------------------------------

def _rad(target: str) -> dict[str, str]:
    return {"answer_type": "closed" if target.lower() in ("yes", "no") else "open"}


def _slake(kind: str) -> dict[str, str]:
    return {"answer_type": kind.lower(), "answer_type_raw": kind, "q_lang": "en"}


@pytest.mark.parametrize("protocol, name, target, response, meta, strict, peer", [
    ("llava-med", "closed_accuracy", "no", "Not sure", _rad("no"), 0, 1),
    ("llava-med", "closed_accuracy", "yes", "yes and no", _rad("yes"), 0, 1),
    ("llava-med", "closed_accuracy", "no", "Yes, there is a nodule", _rad("no"), 0, 1),
    ("llava-med", "open_recall", "3", "Three", _rad("3"), 0, 1),
    ("llava-med", "open_recall", "the liver", "liver", _rad("x"), 0.5, 1),
    ("llava-med", "open_recall", "non contrast", "CT - non-contrast", _rad("x"), 1, 0),
    ("llava-med", "open_recall", "left lung", "lung lung lung", _rad("x"), 0.5, 0.75),
    ("llava-med", "open_recall", "1.5 cm", "1 5 cm", _rad("x"), 1, 0.5),
    ("medevalkit", "closed_accuracy", "no", "Not sure", _rad("no"), 0, 1),
    ("medevalkit", "closed_accuracy", "yes", "Yes, there is a nodule", _rad("yes"), 1, 0),
    ("medevalkit", "open_exact_match", "granuloma", "Granuloma.", _rad("x"), 1, 0),
    ("medevalkit", "open_exact_match", "liver", "Final answer: liver", _rad("x"), 1, 0),
    ("medevalkit", "closed_accuracy", "Yes", "Yes, there is a nodule", _slake("CLOSED"), 1, 0),
    ("medevalkit", "open_exact_match", "liver", "liver\n", _slake("OPEN"), 1, 0),
    ("medevalkit", "closed_accuracy", "no", "<answer>no</answer>", _rad("no"), 1, 1),
])
def test_documented_examples(protocol: str, name: str, target: str, response: str,
                             meta: dict, strict: float, peer: float) -> None:
    from healthbench.core.types import Response, Sample
    from healthbench.suites.medvqa import metrics

    sample = Sample(id="x", question="q?", target=target, meta=meta)

    def value(proto: str) -> float | None:
        parsed = metrics.medvqa_answer(response, sample, protocol=proto)
        return getattr(metrics, name)(protocol=proto).per_sample(sample, Response(text=response),
                                                                 parsed)

    assert (value("strict"), value(protocol)) == (strict, peer)


def test_metrics_a_peer_does_not_compute_are_refused() -> None:
    from healthbench.suites.medvqa import metrics

    with pytest.raises(ValueError, match="not part of protocol 'medevalkit'"):
        metrics.open_recall(protocol="medevalkit")
    with pytest.raises(ValueError, match="not part of protocol 'llava-med'"):
        metrics.medvqa_accuracy(protocol="llava-med")
    with pytest.raises(ValueError, match="unknown protocol 'llava'"):
        metrics.closed_accuracy(protocol="llava")

"""MMOral-OPG and MMOral-Uni: the released TSV layouts written in plain sight, scored through
``replay``; open answers graded by a fake OpenAI-compatible judge on 127.0.0.1 that returns fixed
scores; expected numbers worked out by hand with the official aggregation rules."""
from __future__ import annotations

import base64
import csv
import io
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from healthbench.suites.mmoral.loader import load_mmoral_opg, load_mmoral_uni, mmoral_opg_prompt
from healthbench.run.evaluate import RunSpec, evaluate
from healthbench.suites.mmoral.metrics import mmoral_opg_answer, official_random_letter
from healthbench.run.runner import RunSettings
from healthbench.results.samples import read_samples
from healthbench.taskconfig.index import TaskIndex
from healthbench.core.types import Sample, SampleError

TASKS = Path(__file__).resolve().parent.parent / "tasks" / "mmoral"
# sha256 of the official prompt builders' output with the fields left as {question}, {answer},
# {prediction} (isbrycee/OralGPT 080ad32d, MMOral-Omni-Bench-Eval/vlmeval/dataset/utils/mmoral.py)
OPG_TEMPLATE_SHA = "sha256:9b56d7e548edba5353d2ec77bd4ee5b5b705dd0e8a7b2f2945d214cc53b8aa88"
UNI_TEMPLATE_SHA = "sha256:6b8504188fc3e8e4277aaad646af46968ddddf8aab4f9edb3c445bdbb4f531ce"


def jpeg_b64(seed: int) -> str:
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (16, 20, 3), dtype=np.uint8)).save(buf, "JPEG")
    return base64.b64encode(buf.getvalue()).decode()


def write_tsv(path: Path, columns: list[str], rows: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, delimiter="\t", quoting=csv.QUOTE_MINIMAL)
        writer.writerow(columns)
        for row in rows:
            writer.writerow([row.get(c, "") for c in columns])


# --- MMOral-OPG fixture: the released layout ----------------------------------------------------

CLOSED_COLS = ["index", "image", "question", "option1", "option2", "option3", "option4", "answer",
               "category", "file_name"]
OPEN_COLS = ["index", "image", "question", "answer", "category", "image_name"]


def closed_row(i: int, category: str, answer: str, options: tuple[str, str, str, str],
               image: str | None = None) -> dict[str, Any]:
    return {"index": i, "image": image if image is not None else jpeg_b64(i),
            "question": f"Closed question {i}?", **{f"option{k}": o for k, o in
                                                    enumerate(options, 1)},
            "answer": answer, "category": category, "file_name": f"0166{i:02d}.jpg"}


# index: (row, replayed response). Expected letters (strict) are in the comments.
CLOSED = {
    0: (closed_row(0, "Teeth,Patho", "B", ("Caries", "Impacted", "Implant", "Crown")), "B"),
    1: (closed_row(1, "Teeth", "A", ("28 teeth", "30 teeth", "32 teeth", "26 teeth")),
        "The answer is (C)."),                                         # C: wrong
    2: (closed_row(2, "HisT,Jaw", "C", ("Filling", "Crown", "", "Implant")), "C"),  # blank key
    3: (closed_row(3, "Jaw", "D", ("Caries", "", "Implant", "Bone loss")),
        "Regular maintenance is advised."),      # strict: unparsed; official: "nan" → B
    4: (closed_row(4, "Teeth,Patho,SumRec", "A",
                   ("periapical cyst", "dental caries", "impacted tooth", "root fracture")),
        "I think it's periapical cyst"),                                 # option text → A
    5: (closed_row(5, "Patho", "B", ("Cyst", "Granuloma", "Abscess", "Normal")),
        "I cannot tell"),                        # strict: unparsed; official: seeded draw
    6: (closed_row(6, "Teeth", "A", ("a", "b", "c", "d"), image="!!not base64!!" * 10), "A"),
    7: (closed_row(7, "SumRec", "C", ("x", "y", "z", "w"), image="0"), "C."),  # image of row 0
}
OPEN = {  # index: (category, reference, replayed response)
    0: ("Teeth", "30 teeth are visualized.", "30"),
    1: ("Teeth,Patho", "Caries at #16.", "Caries at #26."),
    2: ("Jaw", "No bone loss<AND>sinus clear", "No bone loss"),
    3: ("Report", "Full report: 28 teeth, caries at #16.", "A short report"),
    4: ("HisT,SumRec", "Crown at #36.", "GARBAGE"),
    5: ("Patho", "Periapical cyst at #11.", "SLOW"),
    6: ("Teeth", "Wisdom teeth impacted.", "RETRY"),
}
#: What the fake judge answers, keyed by the prediction (the last cell of the prompt's last row).
JUDGE_REPLIES = {"30": "1.0", "Caries at #26.": "0.5", "No bone loss": " 0.8\n",
                 "A short report": "0.2", "GARBAGE": "Looks fine to me.",
                 "answer 1": "0.9", "answer 2": "0.3", "answer 3": "0.6", "answer 4": "0.4",
                 "answer 5": "1.0", "answer 6": "0.0", "answer 7": "0.7", "answer 8": "0.5",
                 "answer 9": "0.1"}


def write_opg(root: Path) -> Path:
    base = root / "MMOral-OPG-Bench"
    write_tsv(base / "MMOral-OPG-Bench-Closed-Ended.tsv", CLOSED_COLS,
              [row for row, _ in CLOSED.values()])
    write_tsv(base / "MMOral-OPG-Bench-Open-Ended.tsv", OPEN_COLS, [
        {"index": i, "image": jpeg_b64(100 + i), "question": f"Open question {i}?",
         "answer": ref, "category": cat, "image_name": f"0170{i:02d}.jpg"}
        for i, (cat, ref, _) in OPEN.items()])
    return base


def opg_responses() -> dict[str, str]:
    return {**{f"closed/{i}": r for i, (_, r) in CLOSED.items()},
            **{f"open/{i}": r for i, (_, _, r) in OPEN.items()}}


class FakeJudge:
    """An OpenAI-compatible /chat/completions server on 127.0.0.1 answering fixed scores."""

    #: Generous, so a normal (instant) reply is never late under load; only SLOW times out.
    TIMEOUT = 2.0

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.released = threading.Event()  # set on exit: frees handlers still hanging
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                prompt = body["messages"][-1]["content"]
                prediction = prompt.rsplit("\n", 1)[-1].split(" | ")[-2]
                owner.calls.append({"prediction": prediction, "prompt": prompt,
                                    "temperature": body["temperature"],
                                    "max_tokens": body["max_tokens"]})
                if prediction == "SLOW":
                    owner.released.wait(30 * FakeJudge.TIMEOUT)  # far past the timeout
                if prediction == "RETRY":
                    reply = "1.3" if body["temperature"] == 0.0 else "0.6"
                else:
                    reply = JUDGE_REPLIES.get(prediction, "no idea")
                data = json.dumps({"choices": [{"message": {"content": reply}}]}).encode()
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass  # the client gave up (timeout)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "FakeJudge":
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.released.set()
        self.server.shutdown()
        self.server.server_close()

    @property
    def args(self) -> dict[str, Any]:
        host, port = self.server.server_address[:2]
        return {"model": "fake-judge", "base_url": f"http://{host}:{port}/v1", "timeout": self.TIMEOUT,
                "max_retries": 0, "backoff": 0.0}


def run(tmp_path: Path, task: str, responses: dict[str, str], run_id: str,
        judge: FakeJudge | None = None) -> dict[str, Any]:
    saved = tmp_path / f"{run_id}.jsonl"
    saved.write_text("".join(json.dumps({"task": task, "id": i, "response": r}) + "\n"
                             for i, r in responses.items()))
    spec = RunSpec(model="replay", model_args={"path": str(saved)},
                   tasks=TaskIndex.build([TASKS], builtin=False).resolve([task]),
                   data_root=tmp_path, output_path=tmp_path / "out", run_id=run_id,
                   settings=RunSettings(progress=False),
                   judge="openai" if judge else None, judge_args=judge.args if judge else {},
                   judge_cache=tmp_path / "judge_cache")
    return evaluate(spec)["tasks"][task]


def value(block: dict, metric: str, key: str | None = None, group: str | None = None) -> Any:
    where = block if key is None else block["groups"][key][group]
    return where["metrics"][metric]["value"]


# --- loading ------------------------------------------------------------------------------------

def test_opg_loader_reads_blank_options_multi_tags_and_image_references(tmp_path: Path) -> None:
    items = {i.id: i for i in load_mmoral_opg(write_opg(tmp_path)).items}
    assert len(items) == len(CLOSED) + len(OPEN)
    blank_key = items["closed/2"]
    assert isinstance(blank_key, Sample)
    assert blank_key.options == {"A": "Filling", "B": "Crown", "C": "", "D": "Implant"}
    assert blank_key.meta["blank_options"] == ["C"] and blank_key.meta["blank_option"] == "yes"
    assert blank_key.meta["dimension"] == ["HisT", "Jaw"]
    assert items["open/3"].meta["dimension"] == ["Report"]
    assert items["closed/7"].images[0].data == items["closed/0"].images[0].data
    bad = items["closed/6"]
    assert isinstance(bad, SampleError) and "base64" in bad.message
    assert bad.meta["dimension"] == ["Teeth"]  # still counted in its dimension


def test_opg_prompts_are_the_official_ones_with_nan_for_a_blank_option(tmp_path: Path) -> None:
    items = {i.id: i for i in load_mmoral_opg(write_opg(tmp_path)).items}
    assert mmoral_opg_prompt(items["closed/3"]) == (
        "Question: Closed question 3?\nOptions:\nA. Caries\nB. nan\nC. Implant\nD. Bone loss\n"
        "Please answer the above multiple-choice question by selecting the single correct "
        "option (A, B, C, or D). If the provided information is insufficient to determine a "
        "clear answer, please choose the most likely correct option based on the available "
        "data and your judgment.")
    assert mmoral_opg_prompt(items["open/0"]) == (
        "Question: Open question 0?\n"
        "Please provide a detailed and accurate answer to the question.")


@pytest.mark.parametrize("response,strict,official", [
    ("B", "B", "B"),
    ("(C) is my answer, not (A)", "C", "C"),       # earliest of several
    ("The answer is D.", "D", "D"),
    ("Regular maintenance is advised.", None, "B"),  # "nan" inside "maintenance"
    ("Caries, clearly", "A", "A"),                   # option text
    ("no idea", None, "random"),
])
def test_official_letter_extraction(response: str, strict: str | None, official: str) -> None:
    sample = Sample(id="closed/x", options={"A": "Caries", "B": "", "C": "Implant",
                                            "D": "Bone loss"},
                    target="A", meta={"blank_options": ["B"]})
    assert mmoral_opg_answer(response, sample) == strict
    expected = official_random_letter(0, "closed/x") if official == "random" else official
    assert mmoral_opg_answer(response, sample, mode="official") == expected


def test_official_random_fallback_does_not_depend_on_what_was_extracted_before() -> None:
    """Unlike a shared random stream, the fallback is a function of (seed, sample id)."""
    def samples(ids: list[str]) -> list[Sample]:
        return [Sample(id=i, options={"A": "Caries", "B": "Crown", "C": "Implant",
                                      "D": "Bone loss"}, target="A") for i in ids]

    ids = [f"closed/{i}" for i in range(12)]
    first = [mmoral_opg_answer("no idea", s, mode="official") for s in samples(ids)]
    for s in samples([f"other/{i}" for i in range(7)]):
        mmoral_opg_answer("no idea", s, mode="official")
    again = [mmoral_opg_answer("no idea", s, mode="official") for s in samples(ids[::-1])]
    assert again[::-1] == first
    assert first == [official_random_letter(0, i) for i in ids]


# --- scoring through replay ---------------------------------------------------------------------

def test_opg_closed_per_dimension_and_not_scored_open_without_judge(tmp_path: Path) -> None:
    write_opg(tmp_path)
    block = run(tmp_path, "mmoral_opg", opg_responses(), "nojudge")
    # Closed: correct 0, 2, 4, 7 of the 7 readable items; row 6 is an error, not a zero.
    assert value(block, "closed_accuracy") == pytest.approx(4 / 7)
    assert block["metrics"]["closed_accuracy"]["n"] == 7
    assert value(block, "parse_failure") == pytest.approx(2 / 7)  # rows 3 and 5
    expected = {"Teeth": 2 / 3, "Patho": 2 / 3, "HisT": 1.0, "Jaw": 1 / 2, "SumRec": 1.0}
    for dim, acc in expected.items():
        assert value(block, "closed_accuracy", "dimension", dim) == pytest.approx(acc), dim
    assert block["groups"]["dimension"]["Teeth"]["n_errors"] == 1
    assert value(block, "closed_accuracy", "blank_option", "yes") == pytest.approx(1 / 2)
    assert block["groups"]["blank_option"]["yes"]["n"] == 2
    assert value(block, "closed_accuracy", "category", "Teeth,Patho") == 1.0
    # Open: nothing judged, nothing mixed in, the count reported.
    assert block["metrics"]["open_accuracy"] == {"value": None, "ci": [None, None], "n": 0}
    assert value(block, "avg_accuracy") is None
    judge = block["judge"]
    assert judge["configured"] is False and judge["fingerprint"] is None
    assert judge["metrics"]["open_accuracy"]["n_not_scored"] == len(OPEN)
    assert judge["metrics"]["open_accuracy"]["template_sha256"] == OPG_TEMPLATE_SHA
    assert block["n_errors"] == 1


def test_opg_open_judged_by_fake_server_aggregated_as_official(tmp_path: Path) -> None:
    write_opg(tmp_path)
    with FakeJudge() as judge:
        block = run(tmp_path, "mmoral_opg", opg_responses(), "judged", judge)
    # Judged: open 0, 1, 2, 3, 6 = 1.0, 0.5, 0.8, 0.2, 0.6 (6 after one unparsable 1.3).
    # Open 4 (garbage, 5 tries) and open 5 (timeouts) are recorded errors.
    assert value(block, "open_accuracy") == pytest.approx(3.1 / 5)
    assert value(block, "open_accuracy", "dimension", "Teeth") == pytest.approx(2.1 / 3)
    assert value(block, "open_accuracy", "dimension", "Patho") == pytest.approx(0.5)
    assert value(block, "open_accuracy", "dimension", "Jaw") == pytest.approx(0.8)
    assert value(block, "open_accuracy", "dimension", "Report") == pytest.approx(0.2)
    assert value(block, "open_accuracy", "dimension", "HisT") is None
    assert value(block, "closed_accuracy") == pytest.approx(4 / 7)  # untouched by the judge
    assert value(block, "avg_accuracy") == pytest.approx((4 / 7 + 3.1 / 5) / 2)
    assert block["n_errors"] == 3
    info = block["judge"]
    assert info["configured"] and info["fingerprint"].startswith("sha256:")
    assert info["identity"] == {"model": "openai", "args": {"model": "fake-judge",
                                                            "base_url": judge.args["base_url"]}}
    counts = info["metrics"]["open_accuracy"]
    assert (counts["n_judged"], counts["n_failed"], counts["n_not_scored"]) == (5, 2, 0)
    # What was sent: official retries and settings, the <AND> padding, the answer row last.
    sent = [c for c in judge.calls if c["prediction"] == "GARBAGE"]
    assert [c["temperature"] for c in sent] == [0.0, 0.5, 1.0, 1.5, 2.0]
    assert all(c["max_tokens"] == 16384 for c in judge.calls)
    jaw = next(c["prompt"] for c in judge.calls if c["prediction"] == "No bone loss")
    assert jaw.endswith("\n\nOpen question 2? | No bone loss <AND> sinus clear | No bone loss | ")
    # samples.jsonl keeps every raw judge output and the error.
    records = read_samples(tmp_path / "out" / "judged" / "mmoral_opg" / "samples.jsonl")
    garbage = records["open/4"]
    assert garbage.error and "no valid score in 5 tries" in garbage.error
    assert garbage.response == "GARBAGE"
    tries = garbage.meta["details"]["open_accuracy"]["tries"]
    assert [t["output"] for t in tries] == ["Looks fine to me."] * 5
    assert "timeout" in records["open/5"].error
    retried = records["open/6"].meta["details"]["open_accuracy"]
    assert [t.get("output") for t in retried["tries"]] == ["1.3", "0.6"]
    assert records["open/6"].scores["open_accuracy"] == 0.6


def test_rescoring_hits_the_judge_cache(tmp_path: Path) -> None:
    write_opg(tmp_path)
    responses = {**opg_responses(), "open/5": "answer 5"}  # no timeouts here: 1.0
    with FakeJudge() as judge:
        first = run(tmp_path, "mmoral_opg", responses, "first", judge)
        n_calls = len(judge.calls)
        second = run(tmp_path, "mmoral_opg", responses, "second", judge)
        assert len(judge.calls) == n_calls  # every reply came from the cache
    assert value(second, "open_accuracy") == value(first, "open_accuracy")
    assert second["judge"]["fingerprint"] == first["judge"]["fingerprint"]
    assert second["judge"]["metrics"]["open_accuracy"]["n_cached_tries"] == n_calls


def test_opg_official_mode_seeds_the_fallback_and_scores_judge_failures_zero(
        tmp_path: Path) -> None:
    write_opg(tmp_path)
    responses = {**opg_responses(), "open/5": "answer 5"}  # no timeouts here: 1.0
    with FakeJudge() as judge:
        block = run(tmp_path, "mmoral_opg_official", responses, "official", judge)
    drawn = official_random_letter(0, "closed/5")
    closed_correct = 4 + (drawn == "B")  # row 3: "nan" matches B (wrong); row 5: the draw
    assert value(block, "closed_accuracy") == pytest.approx(closed_correct / 7)
    assert value(block, "parse_failure") == pytest.approx(1 / 7)  # the draw fired once
    assert value(block, "open_accuracy") == pytest.approx(4.1 / 7)  # garbage → 0.0
    assert value(block, "open_accuracy", "dimension", "HisT") == 0.0
    assert value(block, "open_accuracy", "dimension", "Patho") == pytest.approx(0.75)
    assert block["judge"]["metrics"]["open_accuracy"]["n_failed"] == 1
    assert block["n_errors"] == 1  # only the unreadable image


# --- MMOral-Uni ---------------------------------------------------------------------------------

UNI = [  # index, category, images, response (the fake judge's score in JUDGE_REPLIES)
    (1, "II_Loc", 1, "answer 1"),                       # 0.9
    (2, "II_Dx-I,Caries", 1, "answer 2"),               # 0.3
    (3, "II_Dx-I,Gingivitis", 1, "answer 3"),           # 0.6
    (4, "II_Dx-R,Caries", 1, "answer 4"),               # 0.4
    (5, "PA,Apical Periodontitis", 1, "answer 5"),      # 1.0
    (6, "PA,Periodontitis", 1, "answer 6"),             # 0.0
    (7, "CE", 1, "answer 7"),                           # 0.7
    (8, "TP,Endodontics", 3, "answer 8"),               # 0.5, three interleaved figures
    (9, "IV", 2, "answer 9"),                           # 0.1, two frames
]


def write_uni(root: Path) -> Path:
    rows = []
    for index, category, n_images, _ in UNI:
        cells = [jpeg_b64(10 * index + k) for k in range(n_images)]
        rows.append({"index": index, "image": cells[0] if n_images == 1 else json.dumps(cells),
                     "question": f"Uni question {index}?\\nAnswer in one line.",
                     "answer": f"reference {index}", "category": category})
    path = root / "MMOral-Omni-Bench" / "MMOral-Omni-Bench.tsv"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as fh:  # as the authors wrote it
        writer = csv.DictWriter(fh, fieldnames=["index", "image", "question", "answer",
                                                "category"],
                                delimiter="\t", quoting=csv.QUOTE_ALL)
        writer.writeheader()
        writer.writerows(rows)
    return path.parent


def test_uni_loader_keeps_several_images_in_order(tmp_path: Path) -> None:
    items = {i.id: i for i in load_mmoral_uni(write_uni(tmp_path)).items}
    tp = items["8"]
    assert isinstance(tp, Sample) and len(tp.images) == 3
    assert tp.images[1].data == base64.b64decode(jpeg_b64(81))
    assert tp.meta["task"] == "TP" and tp.meta["modality"] == "Interleaved image-text"
    assert items["6"].meta["tag"] == ["PA", "Periodontitis"]
    assert items["5"].meta["tag"] == ["PA", "Periodontitis", "Apical Periodontitis"]
    assert tp.question == "Uni question 8?\\nAnswer in one line."  # kept raw, as official


def test_uni_file_outside_the_dataset_folder_is_refused(tmp_path: Path) -> None:
    from healthbench.data.paths import UnsafePathError

    root = write_uni(tmp_path / "data")
    outside = root.parent / "x.tsv"
    outside.write_text((root / "MMOral-Omni-Bench.tsv").read_text())
    assert not outside.resolve().is_relative_to(root.resolve())
    for file in ("../x.tsv", str(outside)):
        with pytest.raises(UnsafePathError, match="mmoral_uni: file"):
            load_mmoral_uni(root, file=file)


def test_uni_scored_per_task_with_item_weighted_overall(tmp_path: Path) -> None:
    write_uni(tmp_path)
    responses = {str(index): r for index, _, _, r in UNI}
    with FakeJudge() as judge:
        block = run(tmp_path, "mmoral_uni", responses, "uni", judge)
        assert len(judge.calls) == len(UNI)
    scores = [0.9, 0.3, 0.6, 0.4, 1.0, 0.0, 0.7, 0.5, 0.1]
    assert value(block, "open_accuracy") == pytest.approx(sum(scores) / 9)
    per_task = {"II_Loc": 0.9, "II_Dx-I": 0.45, "II_Dx-R": 0.4, "PA": 0.5, "CE": 0.7,
                "TP": 0.5, "IV": 0.1}
    for task, expected in per_task.items():
        assert value(block, "open_accuracy", "task", task) == pytest.approx(expected), task
    assert value(block, "ii_accuracy") == pytest.approx((0.9 + 0.45 + 0.4) / 3)
    # Official tag table: substring rule, so "Periodontitis" pools "Apical Periodontitis".
    assert value(block, "open_accuracy", "tag", "Periodontitis") == pytest.approx(0.5)
    assert value(block, "open_accuracy", "tag", "Caries") == pytest.approx(0.35)
    assert value(block, "open_accuracy", "modality", "Intraoral image") == pytest.approx(
        (0.9 + 0.3 + 0.6 + 0.4) / 4)
    assert block["judge"]["metrics"]["open_accuracy"]["template_sha256"] == UNI_TEMPLATE_SHA
    records = read_samples(tmp_path / "out" / "uni" / "mmoral_uni" / "samples.jsonl")
    assert len(records["8"].inputs["images"]) == 3


def test_uni_without_judge_reports_every_answer_not_scored(tmp_path: Path) -> None:
    write_uni(tmp_path)
    block = run(tmp_path, "mmoral_uni", {str(i): r for i, _, _, r in UNI}, "uni-nojudge")
    assert block["metrics"]["open_accuracy"]["n"] == 0
    assert block["judge"]["metrics"]["open_accuracy"]["n_not_scored"] == len(UNI)
    assert block["n_errors"] == 0 and block["n"] == len(UNI)

"""OmniMedVQA in its official layout, with the upstream quirks, scored through ``replay``: exact
per-modality / question-type / access metrics; bad rows reported and counted, never dropped."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from healthbench.data.paths import DatasetMissingError
from healthbench.suites.omnimedvqa.loader import load_omnimedvqa
from healthbench.run.evaluate import RunSpec, evaluate
from healthbench.run.runner import RunSettings
from healthbench.results.samples import read_samples
from healthbench.taskconfig.index import TaskIndex
from healthbench.core.types import Sample, SampleError
from tests.helpers import omnimed_item, write_png

TASKS = Path(__file__).resolve().parent.parent / "tasks" / "omnimedvqa"


def item(image: str, answer: str, options: tuple[str, ...], modality: str,
         qtype: str = "Disease Diagnosis", modality_key: str = "modality_type",
         **extra: Any) -> dict[str, Any]:
    row = omnimed_item(image, answer=answer, modality=modality, qtype=qtype, options=options)
    if modality_key != "modality_type":
        row[modality_key] = row.pop("modality_type")
    row.update(extra)
    return row


FILES = {
    # upstream "Chest CT Scan.json" names the key `modality`, not `modality_type`
    "Open-access/Chest CT Scan": [
        item("Images/Chest CT Scan/0.png", "CT", ("CT", "MRI"), "CT(Computed Tomography)",
             qtype="Modality Recognition", modality_key="modality"),
        item("Images/Chest CT Scan/1.png", "Nodule", ("Pneumonia", "Normal", "Nodule"),
             "CT(Computed Tomography)", modality_key="modality"),
    ],
    "Open-access/Retina": [
        item("Images/Retina/0.png", "AMD", ("Normal", "DME", "Drusen", "AMD"),
             "OCT (Optical Coherence Tomography"),  # sic: no closing parenthesis upstream
        item("Images/Retina/1.png", "Glaucoma", ("Normal", "Glaucoma", "Cataract", "Myopia"),
             "Fundus Photography"),
        item("Images/Retina/2.png", "Brain", ("Knee", "Brain"),
             "MR (Mag-netic Resonance Imaging)", qtype="Anatomy Identification"),
        # bad rows, each for one reason
        item("Images/Retina/3.png", "A", ("A", "B"), "Fundus Photography",
             option_D="D"),                                       # D after a missing C
        item("Images/Retina/4.png", "Papilledema", ("Normal", "Glaucoma"),
             "Fundus Photography"),                               # answer not an option
        item("../../../outside.png", "Normal", ("Normal", "Glaucoma"),
             "Fundus Photography"),                               # leaves the data root
        item("Images/Retina/6.png", "Normal", ("Normal", "Glaucoma"), "PET"),  # unknown
        item("Images/Retina/7.png", "Normal", ("Normal",), "Fundus Photography"),  # one option
    ],
    "Restricted-access/Derm": [
        item("Images/Derm/0.png", "Melanoma", ("Melanoma", "Nevus", "Keratosis"), "Dermoscopy"),
    ],
}
RESPONSES = {
    "Open-access/Chest CT Scan/0": "A",                # right (A = CT)
    "Open-access/Chest CT Scan/1": "(B)",              # wrong (C = Nodule)
    "Open-access/Retina/0": "D. AMD",                  # right
    "Open-access/Retina/1": "I don't know",            # unparsed
    "Open-access/Retina/2": "The answer is B",         # right
    "Restricted-access/Derm/0": "A",                   # right
}


def write_fixture(root: Path) -> Path:
    base = root / "OmniMedVQA"
    for name, rows in FILES.items():
        path = base / "QA_information" / f"{name}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(rows))
        for i, row in enumerate(rows):
            if ".." not in row["image_path"]:
                write_png(base / row["image_path"], seed=i)
    return base


def run(tmp_path: Path, task: str, responses: dict[str, Any]) -> dict:
    saved = tmp_path / "responses.jsonl"
    saved.write_text("".join(json.dumps({"task": task, "id": i, "response": r}) + "\n"
                             for i, r in responses.items()))
    spec = RunSpec(model="replay", model_args={"path": str(saved)},
                   tasks=TaskIndex.build([TASKS], builtin=False).resolve([task]),
                   data_root=tmp_path, output_path=tmp_path / "out", run_id="r",
                   settings=RunSettings(progress=False))
    return evaluate(spec)["tasks"][task]


def group(block: dict, key: str, value: str, metric: str = "accuracy") -> Any:
    return block["groups"][key][value]["metrics"][metric]["value"]


def test_replay_gives_exact_per_group_metrics(tmp_path: Path) -> None:
    write_fixture(tmp_path)
    block = run(tmp_path, "omnimedvqa", RESPONSES)
    assert (block["n"], block["n_errors"]) == (6, 5)
    assert block["metrics"]["accuracy"]["value"] == pytest.approx(4 / 6)
    assert block["metrics"]["parse_failure"]["value"] == pytest.approx(1 / 6)
    per_modality = {"CT": 1 / 2, "OCT": 1.0, "Fundus": 0.0, "MR": 1.0, "Dermoscopy": 1.0}
    for modality, expected in per_modality.items():
        assert group(block, "modality", modality) == pytest.approx(expected)
    # M3LLM's "Avg" is the unweighted mean over modalities
    assert block["macro"]["modality"]["accuracy"]["value"] == pytest.approx(3.5 / 5)
    assert group(block, "question_type", "Disease Diagnosis") == pytest.approx(2 / 4)
    assert group(block, "question_type", "Anatomy Identification") == 1.0
    assert group(block, "access", "Open-access") == pytest.approx(3 / 5)
    assert group(block, "access", "Restricted-access") == 1.0
    # bad rows are counted in their modality's group where the modality is known
    assert block["groups"]["modality"]["Fundus"]["n_errors"] == 4
    assert block["groups"]["modality"]["(missing)"]["n_errors"] == 1


def test_bad_rows_are_recorded_with_reasons(tmp_path: Path) -> None:
    write_fixture(tmp_path)
    run(tmp_path, "omnimedvqa", RESPONSES)
    records = read_samples(tmp_path / "out" / "r" / "omnimedvqa" / "samples.jsonl")
    errors = {k: r.error for k, r in records.items() if r.error}
    assert len(records) == 11 and len(errors) == 5
    assert "option(s) D given after a missing option" in errors["Open-access/Retina/3"]
    assert "gt_answer 'Papilledema' is not among the options" in errors["Open-access/Retina/4"]
    assert "contains '..'" in errors["Open-access/Retina/5"]
    assert "unknown modality string 'PET'" in errors["Open-access/Retina/6"]
    assert "missing or empty field 'option_B'" in errors["Open-access/Retina/7"]
    assert all(e.startswith("bad input: ") and "Retina.json item" in e for e in errors.values())


def test_modality_key_quirk_and_two_to_four_options(tmp_path: Path) -> None:
    loaded = load_omnimedvqa(write_fixture(tmp_path))
    samples = {s.id: s for s in loaded.items if isinstance(s, Sample)}
    ct = samples["Open-access/Chest CT Scan/1"]
    assert ct.meta["modality"] == "CT" and ct.meta["modality_raw"] == "CT(Computed Tomography)"
    assert (list(ct.options), ct.target) == (["A", "B", "C"], "C")
    assert len(samples["Open-access/Chest CT Scan/0"].options) == 2
    assert len(samples["Open-access/Retina/0"].options) == 4
    assert samples["Open-access/Retina/0"].meta["modality"] == "OCT"


def test_access_option_selects_the_parts(tmp_path: Path) -> None:
    base = write_fixture(tmp_path)
    open_only = load_omnimedvqa(base, access=["Open-access"])
    assert not any(i.id.startswith("Restricted") for i in open_only.items)
    assert len(open_only.items) == 10


def test_missing_dataset_says_what_is_expected(tmp_path: Path) -> None:
    with pytest.raises(DatasetMissingError,
                       match=r"OmniMedVQA/QA_information/Open-access/\*\.json"):
        load_omnimedvqa(tmp_path / "OmniMedVQA")


def test_unreadable_qa_file_is_one_counted_error(tmp_path: Path) -> None:
    qa = tmp_path / "OmniMedVQA" / "QA_information" / "Open-access"
    qa.mkdir(parents=True)
    (qa / "Broken.json").write_text("[{not json")
    (item_,) = load_omnimedvqa(tmp_path / "OmniMedVQA").items
    assert isinstance(item_, SampleError) and "unreadable QA file" in item_.message


def test_likelihood_task_on_real_layout(tmp_path: Path) -> None:
    write_fixture(tmp_path)
    scores = {  # one score per option; the highest wins, ties go to the first option
        "Open-access/Chest CT Scan/0": [-1.0, -2.0],          # A: right
        "Open-access/Chest CT Scan/1": [-3.0, -1.0, -2.0],    # B: wrong
        "Open-access/Retina/0": [-4.0, -3.0, -2.0, -1.0],     # D: right
        "Open-access/Retina/1": [-1.0, -1.0, -5.0, -5.0],     # tie -> A: wrong
        "Open-access/Retina/2": [-2.0, -0.5],                 # B: right
        "Restricted-access/Derm/0": [-0.1, -0.2, -0.3],       # A: right
    }
    block = run(tmp_path, "omnimedvqa_likelihood", scores)
    assert (block["n"], block["n_errors"]) == (6, 5)
    assert block["metrics"]["accuracy"]["value"] == pytest.approx(4 / 6)
    assert group(block, "modality", "Fundus") == 0.0


def test_open_access_task_matches_medevalkit_selection(tmp_path: Path) -> None:
    write_fixture(tmp_path)
    block = run(tmp_path, "omnimedvqa_open", RESPONSES)
    assert (block["n"], block["n_errors"]) == (5, 5)
    assert block["metrics"]["accuracy"]["value"] == pytest.approx(3 / 5)


def test_run_eval_gives_a_per_modality_table_with_the_8_canonical_names(tmp_path: Path) -> None:
    """`python run_eval.py --tasks omnimedvqa ...` on the official layout: one row per canonical
    modality, whatever the raw strings were, then the macro over modalities."""
    raw = ["CT(Computed Tomography)", "MR (Mag-netic Resonance Imaging)", "X-Ray", "ultrasound",
           "Dermoscopy", "Fundus Photography", "OCT (Optical Coherence Tomography",
           "Microscopy Images"]
    base = tmp_path / "data" / "OmniMedVQA"
    rows = [item(f"Images/All/{i}.png", "yes", ("yes", "no"), m) for i, m in enumerate(raw)]
    (base / "QA_information" / "Open-access").mkdir(parents=True)
    (base / "QA_information" / "Open-access" / "All.json").write_text(json.dumps(rows))
    for i in range(len(raw)):
        write_png(base / f"Images/All/{i}.png", seed=i)
    repo = Path(__file__).resolve().parent.parent
    done = subprocess.run(
        [sys.executable, str(repo / "run_eval.py"), "--model", "random", "--tasks", "omnimedvqa",
         "--data-root", str(tmp_path / "data"), "--output-path", str(tmp_path / "results"),
         "--run-id", "r", "--no-progress", "--leaderboard", str(tmp_path / "lb.md")],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHONPATH": str(repo)})
    assert done.returncode == 0, done.stderr[-2000:]
    table = (tmp_path / "results" / "r" / "tables.md").read_text()
    for name in ("CT", "MR", "X-Ray", "US", "Dermoscopy", "Fundus", "OCT", "Microscopy"):
        assert f"| modality | {name} | 1 | 0 |" in table, name
    assert "| modality | **macro** |" in table

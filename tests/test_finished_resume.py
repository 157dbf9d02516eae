"""A finished run is recognised before any dataset or model is loaded (issue 18), and only then.

The quick verdict (``run.evaluate._finished``) must agree with the ordinary path's: whatever it
cannot be sure of (changed or added data files, samples to retry, a touched samples.jsonl, a
manifest sample count, another seed) sends the run down the ordinary path.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from healthbench.run.resume import ResumeMismatchError

from healthbench.models.baselines import RandomModel
from healthbench.run import evaluate as evaluate_module
from healthbench.run.evaluate import RunSpec, evaluate
from healthbench.run.runner import RunSettings
from healthbench.suites.omnimedvqa.loader import list_omnimedvqa, load_omnimedvqa
from healthbench.taskconfig.index import TaskIndex
from tests.helpers import omnimed_item, task_yaml, write_omnimed


def _setup(tmp_path: Path, extra: str = "") -> tuple[Path, Path]:
    data = tmp_path / "data"
    items = [omnimed_item(f"Images/x/{i}.png", answer="CT" if i % 2 else "MRI")
             for i in range(8)]
    write_omnimed(data, items)
    (tmp_path / "tasks").mkdir(exist_ok=True)
    (tmp_path / "tasks" / "toy.yaml").write_text(task_yaml(extra=extra))
    return data, tmp_path / "tasks"


def _run(tmp_path: Path, seed: int = 0, run_id: str = "r") -> tuple[dict, list[str]]:
    """(results.json payload, the datasets loaded on the way)."""
    tasks = TaskIndex.build([tmp_path / "tasks"], builtin=False).resolve(["toy"])
    loads: list[str] = []
    real = evaluate_module.load_task_data

    def counting(task, data_root):
        loads.append(task.name)
        return real(task, data_root)

    evaluate_module.load_task_data = counting
    try:
        payload = evaluate(RunSpec(model="random", model_args={}, tasks=tasks,
                                   data_root=tmp_path / "data", output_path=tmp_path / "out",
                                   run_id=run_id, seed=seed,
                                   settings=RunSettings(batch_size=3, progress=False)),
                           model=RandomModel())
    finally:
        evaluate_module.load_task_data = real
    return payload, loads


def _numbers(payload: dict) -> dict:
    block = payload["tasks"]["toy"]
    return {k: block[k] for k in ("n", "n_errors", "n_total", "metrics", "groups", "macro",
                                  "data_checksum", "data_files")}


def test_the_file_list_is_what_the_loader_reads(tmp_path: Path) -> None:
    base = write_omnimed(tmp_path, [omnimed_item("Images/x/0.png")], name="B")
    write_omnimed(tmp_path, [omnimed_item("Images/x/0.png")], name="A", images=False)
    restricted = base / "QA_information" / "Restricted-access"
    restricted.mkdir()
    (restricted / "R.json").write_text(json.dumps([omnimed_item("Images/x/0.png")]))
    (base / "QA_information" / "Open-access" / "notes.txt").write_text("not a QA file")
    for access in (["Open-access", "Restricted-access"], ["Restricted-access", "Open-access"],
                   ["Open-access"], ["Restricted-access"]):
        assert list_omnimedvqa(base, access) == load_omnimedvqa(base, access).files


@pytest.mark.parametrize("extra", ["", "permutations: cyclic\n"])
def test_a_finished_run_loads_no_dataset_and_returns_its_results(tmp_path: Path,
                                                                  extra: str) -> None:
    _setup(tmp_path, extra)
    first, loads = _run(tmp_path)
    assert loads == ["toy"]
    results = tmp_path / "out" / "r" / "results.json"
    before = results.read_bytes()
    again, loads = _run(tmp_path)
    assert loads == [] and again == first and results.read_bytes() == before


def _changes(tmp_path: Path, data: Path) -> dict:
    qa = data / "OmniMedVQA" / "QA_information" / "Open-access"
    samples = tmp_path / "out" / "r" / "toy" / "samples.jsonl"

    def edit_file() -> None:
        rows = json.loads((qa / "Toy.json").read_text())
        rows[0]["question"] = "Which modality, really?"
        (qa / "Toy.json").write_text(json.dumps(rows))

    def add_file() -> None:
        (qa / "More.json").write_text(json.dumps([omnimed_item("Images/x/0.png")]))

    def model_error() -> None:
        lines = samples.read_text().splitlines(keepends=True)
        row = json.loads(lines[0])
        row.update(error="model error: TimeoutError: slow", scores={}, parsed=None)
        samples.write_text(json.dumps(row) + "\n" + "".join(lines[1:]))

    def touch_samples() -> None:
        samples.write_text(samples.read_text())  # same text, new modification time

    def drop_samples() -> None:
        lines = samples.read_text().splitlines(keepends=True)
        samples.write_text("".join(lines[:3]))

    return {"edited data file": edit_file, "added data file": add_file,
            "model error to retry": model_error, "samples touched": touch_samples,
            "samples cut short": drop_samples}


#: Changes after which a resume is refused (the stored samples were made from other data,
#: so a question or answer may differ), whichever path decides.
REFUSED = {"edited data file", "added data file"}


@pytest.mark.parametrize("change", ["edited data file", "added data file", "model error to retry",
                                    "samples touched", "samples cut short", "other seed"])
def test_anything_uncertain_takes_the_ordinary_path_with_its_answer(tmp_path: Path,
                                                                     change: str) -> None:
    data, _ = _setup(tmp_path)
    _run(tmp_path)
    seed = 0
    if change == "other seed":
        seed = 1
    else:
        _changes(tmp_path, data)[change]()
    shutil.copytree(tmp_path / "out", tmp_path / "out_copy")
    if change in REFUSED:  # the ordinary path's resume check refuses to mix (run.resume)
        with pytest.raises(ResumeMismatchError):
            _run(tmp_path, seed=seed)
        return
    quick, loads = _run(tmp_path, seed=seed)
    assert loads == ["toy"], "the change went unnoticed"
    # the same command on a copy with the quick verdict switched off: the same numbers
    shutil.rmtree(tmp_path / "out")
    shutil.copytree(tmp_path / "out_copy", tmp_path / "out")
    original = evaluate_module._finished
    evaluate_module._finished = lambda *args: None
    try:
        ordinary, _ = _run(tmp_path, seed=seed)
    finally:
        evaluate_module._finished = original
    assert _numbers(quick) == _numbers(ordinary)


def test_a_manifest_is_still_checked(tmp_path: Path) -> None:
    from healthbench.run.prepare import ManifestMismatchError

    _setup(tmp_path)
    _run(tmp_path)
    (tmp_path / "tasks" / "toy.yaml").write_text(task_yaml(extra="manifest: {samples: 8}\n"))
    _, loads = _run(tmp_path)
    assert loads == []  # the recorded sample count answers it
    (tmp_path / "tasks" / "toy.yaml").write_text(task_yaml(extra="manifest: {files: 2}\n"))
    with pytest.raises(ManifestMismatchError, match="files 2 expected, 1 found"):
        _run(tmp_path)

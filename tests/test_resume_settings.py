"""A resume refuses whatever would change a stored sample (seed, protocol, option orders,
limit/subsample, task settings) and allows what does not (batch size, more tasks, the bootstrap
seed alone); a run.json from before these checks still resumes, with a warning."""
from __future__ import annotations

import json
import logging
from pathlib import Path

from healthbench.cli import main
from tests.helpers import omnimed_item, task_yaml, write_omnimed

N = 6


def setup_tasks(tmp_path: Path, **yaml_extra: str) -> None:
    items = [omnimed_item(f"Images/x/{i}.png", options=("CT", "MRI", "US")) for i in range(N)]
    write_omnimed(tmp_path / "data", items)
    (tmp_path / "tasks").mkdir(exist_ok=True)
    for name in ("toy", "toy2"):
        (tmp_path / "tasks" / f"{name}.yaml").write_text(task_yaml(name, extra=yaml_extra.get(
            name, "")))


def run(tmp_path: Path, *extra: str, tasks: str = "toy") -> int:
    return main(["run", "--model", "random", "--tasks", tasks, "--include-path",
                 str(tmp_path / "tasks"), "--data-root", str(tmp_path / "data"),
                 "--output-path", str(tmp_path / "out"), "--run-id", "r", "--no-progress",
                 *extra])


def lines(tmp_path: Path, task: str = "toy") -> list[str]:
    return (tmp_path / "out" / "r" / task / "samples.jsonl").read_text().splitlines(True)


def interrupt(tmp_path: Path, keep: int = 2) -> None:
    """What a kill leaves: the first ``keep`` samples written, results.json not yet."""
    path = tmp_path / "out" / "r" / "toy" / "samples.jsonl"
    path.write_text("".join(lines(tmp_path)[:keep]))
    (tmp_path / "out" / "r" / "results.json").unlink(missing_ok=True)


def refused(tmp_path: Path, capsys, *extra: str, tasks: str = "toy") -> str:
    """Assert the command is refused before touching the samples; return its message."""
    before = lines(tmp_path)
    capsys.readouterr()
    assert run(tmp_path, *extra, tasks=tasks) == 2
    err = capsys.readouterr().err.strip()
    assert lines(tmp_path) == before
    assert str(tmp_path / "out" / "r") in err and "new --run-id" in err
    assert len(err.splitlines()) == 1, err
    return err


def test_another_seed_is_refused(tmp_path: Path, capsys) -> None:
    setup_tasks(tmp_path)
    assert run(tmp_path, "--seed", "0") == 0
    interrupt(tmp_path)
    err = refused(tmp_path, capsys, "--seed", "1")
    assert "model seed (--seed) 0 (now 1)" in err
    assert run(tmp_path, "--seed", "0") == 0  # the original settings resume
    assert len(lines(tmp_path)) == N


def test_another_seed_of_the_official_fallback_or_subsample_is_refused(tmp_path: Path,
                                                                       capsys) -> None:
    # the model's seed is pinned, so only the subsample seed (which ids) differs
    setup_tasks(tmp_path)
    pinned = ("--model-args", "seed=3", "--subsample", "4")
    assert run(tmp_path, *pinned, "--seed", "0") == 0
    interrupt(tmp_path)
    err = refused(tmp_path, capsys, *pinned, "--seed", "1")
    assert "task toy subsample seed (--seed) 0 (now 1)" in err and "model seed" not in err
    assert "task toy --subsample 4 (now 5)" in refused(
        tmp_path, capsys, "--model-args", "seed=3", "--subsample", "5", "--seed", "0")
    assert "task toy --limit None (now 3)" in refused(tmp_path, capsys, *pinned, "--seed", "0",
                                                      "--limit", "3")
    assert run(tmp_path, *pinned, "--seed", "0") == 0
    assert len(lines(tmp_path)) == 4


def test_another_protocol_is_refused(tmp_path: Path, capsys) -> None:
    setup_tasks(tmp_path)
    assert run(tmp_path) == 0
    interrupt(tmp_path)
    (tmp_path / "tasks" / "toy.yaml").write_text(task_yaml("toy", extra="protocol: strict\n"))
    err = refused(tmp_path, capsys)
    assert "task toy protocol (task 'protocol:') None (now 'strict')" in err


def test_another_prompt_in_the_task_yaml_is_refused(tmp_path: Path, capsys) -> None:
    setup_tasks(tmp_path)
    assert run(tmp_path) == 0
    interrupt(tmp_path)
    text = task_yaml("toy").replace('prompt: "{question}', 'prompt: "Q: {question}')
    (tmp_path / "tasks" / "toy.yaml").write_text(text)
    err = refused(tmp_path, capsys)
    assert "task toy prompt settings in its YAML sha256:" in err
    assert "extract settings" not in err and "metrics settings" not in err


def test_another_option_order_mode_is_refused(tmp_path: Path, capsys) -> None:
    setup_tasks(tmp_path)
    assert run(tmp_path, "--permute-options", "cyclic") == 0
    assert len(lines(tmp_path)) == 3 * N  # each question in its 3 rotations
    interrupt(tmp_path)
    assert "option orders (--permute-options / task 'permutations:') 'cyclic' (now None)" in \
        refused(tmp_path, capsys)
    assert "'cyclic' (now 2)" in refused(tmp_path, capsys, "--permute-options", "2")
    assert run(tmp_path, "--permute-options", "cyclic") == 0
    assert len(lines(tmp_path)) == 3 * N


def test_batch_size_added_tasks_and_the_bootstrap_seed_alone_still_resume(
        tmp_path: Path, capsys) -> None:
    setup_tasks(tmp_path)
    assert run(tmp_path, "--batch-size", "1", "--model-args", "seed=3") == 0
    interrupt(tmp_path)
    # another batch size, one more task, another --seed that reaches only the bootstrap (the
    # model's seed is pinned; no subsample, option orders or seeded metrics)
    assert run(tmp_path, "--batch-size", "4", "--model-args", "seed=3", "--seed", "7",
               tasks="toy,toy2") == 0
    assert len(lines(tmp_path)) == N and len(lines(tmp_path, "toy2")) == N
    results = json.loads((tmp_path / "out" / "r" / "results.json").read_text())
    assert set(results["tasks"]) == {"toy", "toy2"} and results["seeds"]["bootstrap"] == 7
    recorded = json.loads((tmp_path / "out" / "r" / "run.json").read_text())
    assert set(recorded["samples"]["tasks"]) == {"toy", "toy2"}
    # a finished run, the same settings again: nothing to do, nothing refused
    assert run(tmp_path, "--model-args", "seed=3", "--seed", "7", tasks="toy,toy2") == 0
    # a later run of one task keeps the other's record, so it is still checked
    assert run(tmp_path, "--model-args", "seed=3", "--seed", "7", tasks="toy2") == 0
    assert set(json.loads((tmp_path / "out" / "r" / "run.json").read_text())
               ["samples"]["tasks"]) == {"toy", "toy2"}
    interrupt(tmp_path)
    assert "task toy --limit None (now 2)" in refused(
        tmp_path, capsys, "--model-args", "seed=3", "--limit", "2", tasks="toy")


def test_a_run_json_from_before_these_checks_resumes_with_a_warning(tmp_path: Path,
                                                                    caplog) -> None:
    setup_tasks(tmp_path)
    assert run(tmp_path, "--seed", "0") == 0
    interrupt(tmp_path)
    path = tmp_path / "out" / "r" / "run.json"
    old = json.loads(path.read_text())
    del old["samples"]  # the layout written before seeds, protocols... were recorded
    path.write_text(json.dumps(old))
    with caplog.at_level(logging.WARNING, logger="healthbench"):
        assert run(tmp_path, "--seed", "1") == 0
    assert "predates the resume checks" in caplog.text and "toy" in caplog.text
    assert len(lines(tmp_path)) == N
    assert json.loads(path.read_text())["samples"]["model_seed"] == 1  # recorded from now on


def test_changed_data_is_refused(tmp_path: Path, capsys) -> None:
    setup_tasks(tmp_path)
    assert run(tmp_path) == 0
    interrupt(tmp_path)
    qa = tmp_path / "data" / "OmniMedVQA" / "QA_information" / "Open-access" / "Toy.json"
    qa.write_text(qa.read_text().replace("Which modality?", "Which imaging modality?"))
    assert "task toy data checksum (the dataset files changed) 'sha256:" in refused(tmp_path,
                                                                                    capsys)


def test_values_an_older_layout_did_not_record_are_not_compared() -> None:
    from healthbench.run.sample_inputs import differences

    earlier = {"tasks": {"t": {"protocol": None, "settings": {"prompt": "sha256:a"}}}}
    now = {"model_seed": 1, "tasks": {"t": {"protocol": "strict", "limit": 3, "settings": {
        "prompt": "sha256:b", "metrics": "sha256:c"}}}}
    assert differences(earlier, now) == [
        "task t protocol (task 'protocol:') None (now 'strict')",
        "task t prompt settings in its YAML sha256:a (now sha256:b)"]



def test_another_seed_of_an_official_fallback_is_refused(tmp_path: Path, capsys) -> None:
    # a metric taking a seed (MMMU's official random fallback) gets --seed; the model's seed is
    # pinned, so the fallback's seed is the one difference
    setup_tasks(tmp_path)
    (tmp_path / "tasks" / "toy.yaml").write_text(task_yaml("toy").replace(
        "metrics: [{name: accuracy}, {name: parse_failure}]",
        "metrics: [{name: mmmu_accuracy, args: {mode: official}}]"))
    assert run(tmp_path, "--model-args", "seed=3", "--seed", "0") == 0
    interrupt(tmp_path)
    err = refused(tmp_path, capsys, "--model-args", "seed=3", "--seed", "1")
    assert ('task toy official-fallback seeds (--seed or a task \'seed\') '
            '{"metrics[0]:mmmu_accuracy": 0} (now {"metrics[0]:mmmu_accuracy": 1})') in err
    assert "model seed" not in err and "settings in its YAML" not in err

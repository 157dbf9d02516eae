"""Hostile inputs to the default job (``run_eval.py`` on the bundled sample group): a task named
``../x``, a run id ``../y``, a replay file with a duplicate key. Each is refused with one line on
stderr, and nothing appears anywhere but inside the output folder (here: nothing at all)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from healthbench.core.names import OutsideOutputError, UnsafeNameError, check_name, require_inside
from healthbench.run.evaluate import RunSpec, evaluate
from healthbench.run.prepare import ensure_sample_data
from healthbench.run.runner import RunSettings
from healthbench.taskconfig.index import TaskIndex
from healthbench.taskconfig.schema import TaskConfigError, parse_task

REPO = Path(__file__).resolve().parent.parent


def tree(root: Path) -> set[str]:
    return {str(Path(d, n).relative_to(root)) for d, dirs, names in os.walk(root)
            for n in names + dirs}


@pytest.fixture()
def world(tmp_path: Path, sample_data_root: Path) -> dict[str, Path]:
    """cwd, home, an include folder, a replay file and a built data root, all under tmp_path."""
    for task in TaskIndex.build().resolve(["samples"]):
        ensure_sample_data(task, sample_data_root)  # the data cache is built before, not by, the runs
    work, home, inc = tmp_path / "work", tmp_path / "home", tmp_path / "inc"
    for folder in (work, home, inc):
        folder.mkdir()
    source = (REPO / "tasks" / "omnimedvqa" / "omnimedvqa_sample.yaml").read_text()
    (inc / "evil.yaml").write_text(source.replace("task: omnimedvqa_sample", "task: ../x", 1))
    (tmp_path / "dup.jsonl").write_text(
        '{"task": "vqa_rad_sample", "id": "1", "response": "yes", "response": "no"}\n')
    return {"tmp": tmp_path, "work": work, "home": home, "inc": inc, "data": sample_data_root,
            "out": tmp_path / "out"}


def run_eval(world: dict[str, Path], *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "HOME": str(world["home"]),
           "HEALTHBENCH_DATA": str(world["data"])}
    return subprocess.run([sys.executable, str(REPO / "run_eval.py"), "--output-path",
                           str(world["out"]), "--no-progress", *args], cwd=world["work"],
                          env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("case", ["task ../x", "run id ../y", "replay duplicate key"])
def test_hostile_inputs_to_the_default_group_are_one_line_and_write_nothing_outside(
        world: dict[str, Path], case: str) -> None:
    args = {"task ../x": ["--include-path", str(world["inc"])],
            "run id ../y": ["--run-id", "../y"],
            "replay duplicate key": ["--model", "replay", "--model-args",
                                     f"path={world['tmp'] / 'dup.jsonl'}"]}[case]
    before, data_before = tree(world["tmp"]), tree(world["data"])
    done = run_eval(world, *args)
    assert done.returncode == 2, done.stderr[-2000:]
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("healthbench: error: "), done.stderr
    expected = {"task ../x": ["evil.yaml", "key 'task'", "'../x'"],
                "run id ../y": ["--run-id", "'../y'"],
                "replay duplicate key": ["dup.jsonl line 1", "duplicate key 'response'"]}[case]
    assert all(part in lines[0] for part in expected), lines[0]
    created = {p for p in tree(world["tmp"]) - before if not p.startswith("out")}
    assert created == set(), created  # nothing in cwd, home, next to the output folder…
    assert tree(world["data"]) == data_before  # …nor in the data root
    assert not (world["tmp"] / "y").exists() and not (world["tmp"] / "x").exists()


def test_names_that_become_folders_must_be_path_safe(tmp_path: Path) -> None:
    for good in ("omnimedvqa_sample", "run-1.2", "A_b-3"):
        assert check_name(good, "--run-id") == good
    for bad in ("../y", "..", ".hidden", "a/b", "a\\b", "", "x" * 201, "a b", "/abs", "c:d"):
        with pytest.raises(UnsafeNameError, match="--run-id"):
            check_name(bad, "--run-id")
    data = {"task": "../../../x", "version": 1, "dataset": {"format": "vqa_rad"},
            "output": "text", "prompt": "{question}", "metrics": ["accuracy"]}
    with pytest.raises(TaskConfigError, match=r"evil.yaml: key 'task': '../../../x'"):
        parse_task(data, "evil.yaml")
    with pytest.raises(TaskConfigError, match=r"g.yaml: key 'group'"):
        from healthbench.taskconfig.schema import parse_group
        parse_group({"group": "../g", "tasks": ["a"]}, "g.yaml")


def test_every_write_is_checked_inside_the_output_folder(tmp_path: Path,
                                                          sample_data_root: Path) -> None:
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    out.mkdir(), elsewhere.mkdir()
    assert require_inside(out, out / "run" / "t" / "samples.jsonl")
    with pytest.raises(OutsideOutputError):
        require_inside(out, out / ".." / "x")
    (out / "linked").symlink_to(elsewhere)  # a symlink in the output folder leading out
    with pytest.raises(OutsideOutputError, match="outside the output folder"):
        require_inside(out, out / "linked" / "samples.jsonl")
    tasks = TaskIndex.build().resolve(["vqa_rad_sample"])
    from healthbench.models.baselines import RandomModel

    with pytest.raises(OutsideOutputError):  # the API refuses what the CLI would refuse
        evaluate(RunSpec(model="random", model_args={}, tasks=tasks, data_root=sample_data_root,
                         output_path=out, run_id="linked", settings=RunSettings(progress=False)),
                 model=RandomModel())
    with pytest.raises(UnsafeNameError, match="--run-id"):
        evaluate(RunSpec(model="random", model_args={}, tasks=tasks, data_root=sample_data_root,
                         output_path=out, run_id="../y", settings=RunSettings(progress=False)),
                 model=RandomModel())
    assert list(elsewhere.iterdir()) == [] and not (tmp_path / "y").exists()


def test_replay_files_are_read_as_strictly_as_dataset_files(tmp_path: Path) -> None:
    from healthbench.models.base import ModelArgsError
    from healthbench.models.baselines import ReplayModel

    good = tmp_path / "good.jsonl"
    good.write_text(json.dumps({"task": "t", "id": "1", "response": "yés"}) + "\n")
    assert ReplayModel(str(good)).responses == {("t", "1"): "yés"}
    bad = tmp_path / "latin1.jsonl"
    bad.write_bytes(b'{"task": "t", "id": "1", "response": "ok"}\n'
                    b'{"task": "t", "id": "2", "response": "y\xe9s"}\n')
    with pytest.raises(ModelArgsError, match=r"latin1.jsonl line 2: not UTF-8"):
        ReplayModel(str(bad))
    dup = tmp_path / "dup.jsonl"
    dup.write_text('{"task": "t", "id": "1", "id": "2", "response": "x"}\n')
    with pytest.raises(ModelArgsError, match=r"dup.jsonl line 1: duplicate key 'id'"):
        ReplayModel(str(dup))


def test_run_eval_keeps_its_leaderboard_inside_the_output_folder(world: dict[str, Path]) -> None:
    quick = ["--model", "random", "--tasks", "vqa_rad_sample", "--limit", "2"]
    before = tree(world["tmp"])
    done = run_eval(world, *quick, "--run-id", "r1")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "vqa_rad_sample" in (world["out"] / "leaderboard.md").read_text()
    assert {p for p in tree(world["tmp"]) - before if not p.startswith("out")} == set()
    assert not (world["work"] / "leaderboard.md").exists()  # the repository's stays as it was

    (world["out"] / "leaderboard.md").unlink()
    assert run_eval(world, *quick, "--run-id", "r2", "--no-leaderboard").returncode == 0
    assert not (world["out"] / "leaderboard.md").exists()
    chosen = world["tmp"] / "chosen.md"
    assert run_eval(world, *quick, "--run-id", "r3", "--leaderboard", str(chosen)).returncode == 0
    assert "vqa_rad_sample" in chosen.read_text()  # written where asked, and only there
    assert not (world["out"] / "leaderboard.md").exists()
    both = run_eval(world, *quick, "--leaderboard", str(chosen), "--no-leaderboard")
    assert both.returncode == 2 and "not allowed with" in both.stderr


def test_which_leaderboard_file_a_run_refreshes() -> None:
    from healthbench.cli import _leaderboard_file, build_parser

    def board(*argv: str, auto: bool = True) -> Path | None:
        args = build_parser().parse_args(["run", *argv])
        args.auto_leaderboard = auto
        return _leaderboard_file(args)

    assert board() == Path("leaderboard.md")  # `python run_eval.py`: results/ -> leaderboard.md
    assert board("--output-path", "/o") == Path("/o/leaderboard.md")
    assert board("--output-path", "/o", "--leaderboard", "/x.md") == Path("/x.md")
    assert board("--no-leaderboard") is None
    assert board(auto=False) is None  # plain `healthbench run` writes one only when asked


def test_refused_yaml_tags_and_pickle_checkpoints_are_one_line_on_stderr(
        tmp_path: Path, capfd) -> None:
    import pickle

    from healthbench.cli import main

    inc = tmp_path / "inc"
    inc.mkdir()
    (inc / "t.yaml").write_text("task: x\nversion: 1\ndescription: !!python/object/apply:"
                                "os.system ['echo pwned']\n")
    assert main(["tasks", "--include-path", str(inc)]) == 2
    err = capfd.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "YAML tag '!!python/object/apply:os.system' refused" in err[0], err
    (inc / "t.yaml").write_text("task: [unclosed\n")
    assert main(["tasks", "--include-path", str(inc)]) == 2
    err = capfd.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "malformed YAML at line 2" in err[0], err

    evil = tmp_path / "evil.bin"  # a pickle that would build a (harmless) object: refused
    evil.write_bytes(pickle.dumps({"x": Path("a")}))
    code = main(["run", "--model", "healthgpt", "--model-args", f"com_hlora_path={evil}",
                 "--tasks", "vqa_rad_sample", "--data-root", str(tmp_path / "data"),
                 "--output-path", str(tmp_path / "out"), "--no-progress"])
    err = capfd.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert "evil.bin: refused: not a plain-tensor checkpoint" in err[0]
    assert "weights_only=False" not in err[0] and "weights_only` set to `False" not in err[0]

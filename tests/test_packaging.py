"""A built wheel carries every task YAML (tasks/ is shipped as healthbench/_tasks), and an
installed wheel finds its built-in tasks without the repository.

The wheel is built offline (``pip wheel --no-deps --no-build-isolation``) from a copy of the
packaging files, so the test never writes build/ or *.egg-info into the checkout.
"""
from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SOURCES = ("setup.py", "setup.cfg", "pyproject.toml", "MANIFEST.in", "README.md")
IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    missing = [m for m in ("pip", "setuptools") if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(f"cannot build a wheel offline: {', '.join(missing)} not installed in "
                    f"{sys.executable}'s environment (--no-build-isolation needs them)")
    root = tmp_path_factory.mktemp("pkg")
    src = root / "src"
    src.mkdir()
    for name in SOURCES:
        if (REPO / name).exists():
            shutil.copy2(REPO / name, src / name)
    for folder in ("healthbench", "tasks", "references"):
        shutil.copytree(REPO / folder, src / folder, ignore=IGNORE)
    out = root / "wheelhouse"
    env = {**os.environ, "PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                           "--no-build-isolation", "-q", "-w", str(out), str(src)],
                          cwd=root, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"pip wheel failed:\n{proc.stdout}\n{proc.stderr}"
    wheels = list(out.glob("healthbench-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


def repo_task_files() -> dict[str, bytes]:
    files = {p.relative_to(REPO / "tasks").as_posix(): p.read_bytes()
             for p in (REPO / "tasks").rglob("*.yaml")}
    assert files, "no task YAML in the repository's tasks/"
    return files


def test_wheel_contains_every_task_yaml(wheel: Path) -> None:
    prefix = "healthbench/_tasks/"
    with zipfile.ZipFile(wheel) as zf:
        shipped = {n[len(prefix):]: zf.read(n) for n in zf.namelist()
                   if n.startswith(prefix) and n.endswith(".yaml")}
    expected = repo_task_files()
    assert sorted(expected) == sorted(shipped), (
        f"missing from the wheel: {sorted(set(expected) - set(shipped))}; "
        f"not in tasks/: {sorted(set(shipped) - set(expected))}")
    assert all(shipped[name] == expected[name] for name in expected)


def test_installed_wheel_finds_its_builtin_tasks(wheel: Path, tmp_path: Path) -> None:
    """Unpacked wheel first on the path, run from outside the repository: the wheel's own
    healthbench is imported and lists the same tasks and groups as the repository."""
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(site)
    code = ("import healthbench, healthbench.taskconfig.index as t; i = t.TaskIndex.build(); "
            "print(healthbench.__file__); print(t.BUILTIN_TASKS_DIR); "
            "print(len(i.tasks), len(i.groups))")
    env = {**os.environ, "PYTHONPATH": str(site)}
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    module_file, tasks_dir, counts = proc.stdout.strip().splitlines()[-3:]
    assert Path(module_file).is_relative_to(site), module_file
    assert Path(tasks_dir) == (site / "healthbench" / "_tasks").resolve()

    from healthbench.taskconfig.index import BUILTIN_TASKS_DIR, TaskIndex
    assert BUILTIN_TASKS_DIR == REPO / "tasks"  # the checkout reads tasks/ itself
    repo_index = TaskIndex.build()
    assert counts == f"{len(repo_index.tasks)} {len(repo_index.groups)}"


def test_wheel_ships_the_paper_references(wheel: Path) -> None:
    """references/*.yaml (the default leaderboard's paper numbers) travel as
    healthbench/_references/, byte for byte."""
    repo = Path(__file__).resolve().parent.parent / "references"
    with zipfile.ZipFile(wheel) as zf:
        for path in sorted(repo.glob("*.yaml")):
            assert zf.read(f"healthbench/_references/{path.name}") == path.read_bytes()

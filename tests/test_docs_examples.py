"""The commands in README.md and docs/ use model arguments the plugins really accept."""
from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from healthbench.core.catalog import MODELS
from healthbench.taskconfig.index import TaskIndex

REPO = Path(__file__).resolve().parent.parent
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
COMMAND = re.compile(r"--model\s+(\w+)\s+(?:\\\s*\n\s*)?--model-args\s+(\S+)")


def examples() -> list[tuple[str, str, str]]:
    found = []
    for doc in DOCS:
        for model, args in COMMAND.findall(doc.read_text(encoding="utf-8")):
            found.append((doc.name, model, args))
    return found


def test_the_docs_have_model_arg_examples() -> None:
    assert len(examples()) >= 5


@pytest.mark.parametrize("doc, model, args", examples())
def test_documented_model_args_are_accepted(doc: str, model: str, args: str) -> None:
    if model not in MODELS:
        pytest.skip(f"{model} is a placeholder in {doc}")
    params = inspect.signature(MODELS.get(model)).parameters
    keys = [part.split("=", 1)[0] for part in args.split(",") if "=" in part]
    unknown = [k for k in keys if k not in params]
    assert not unknown, f"{doc}: --model {model} --model-args uses {unknown}"


def test_documented_task_names_exist() -> None:
    index = TaskIndex.build()
    known = set(index.tasks) | set(index.groups)
    for doc in DOCS:
        for names in re.findall(r"--tasks\s+([\w,]+)", doc.read_text(encoding="utf-8")):
            for name in names.split(","):
                if name and not name.startswith("lmeval") and name not in ("a", "b", "X"):
                    assert name in known, f"{doc.name}: unknown task {name!r}"

"""Task YAML is validated where it enters: errors name the file and the key."""
from __future__ import annotations

from pathlib import Path

import pytest

from healthbench.taskconfig.index import TaskIndex
from healthbench.taskconfig.schema import TaskConfigError
from tests.helpers import task_yaml


def index_with(tmp_path: Path, text: str, name: str = "t.yaml") -> TaskIndex:
    folder = tmp_path / "mytasks"
    folder.mkdir(exist_ok=True)
    (folder / name).write_text(text)
    return TaskIndex.build([folder], builtin=False)


def test_valid_task_loads_with_its_fields(tmp_path: Path) -> None:
    index = index_with(tmp_path, task_yaml(extra="generation: {max_new_tokens: 4}\n"))
    task = index.tasks["toy"]
    assert task.dataset.format == "omnimedvqa"
    assert task.group_by == ("modality",)
    assert task.generation.max_new_tokens == 4
    assert [m.name for m in task.metrics] == ["accuracy", "parse_failure"]


def test_malformed_yaml_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(TaskConfigError, match=r"t\.yaml: malformed YAML"):
        index_with(tmp_path, "task: [unclosed\n")


def test_unknown_key_is_named(tmp_path: Path) -> None:
    with pytest.raises(TaskConfigError, match=r"t\.yaml: key 'promt': unknown key"):
        index_with(tmp_path, task_yaml() + "promt: oops\n")


def test_nested_unknown_key_is_named(tmp_path: Path) -> None:
    text = task_yaml().replace("options: {access", "opts: {access")
    with pytest.raises(TaskConfigError, match=r"key 'dataset.opts': unknown key"):
        index_with(tmp_path, text)


def test_wrong_type_is_named(tmp_path: Path) -> None:
    text = task_yaml().replace("group_by: [modality]", "group_by: modality")
    with pytest.raises(TaskConfigError, match=r"key 'group_by': expected list, got str"):
        index_with(tmp_path, text)


def test_unknown_metric_is_refused(tmp_path: Path) -> None:
    text = task_yaml().replace("{name: parse_failure}", "{name: accuarcy}")
    with pytest.raises(TaskConfigError, match=r"key 'metrics\[1\]': unknown metric 'accuarcy'"):
        index_with(tmp_path, text)


def test_unregistered_function_names_are_refused(tmp_path: Path) -> None:
    text = task_yaml().replace("{name: choice_letter}", "{name: os.system}")
    with pytest.raises(TaskConfigError, match=r"key 'extract': unknown answer extractor"):
        index_with(tmp_path, text)


def test_python_object_tags_are_refused(tmp_path: Path) -> None:
    text = task_yaml() + "description: !!python/object/apply:os.system ['echo pwned']\n"
    with pytest.raises(TaskConfigError, match=r"t\.yaml: YAML tag '!!python/object/apply:"
                                              r"os\.system' refused at line \d+") as caught:
        index_with(tmp_path, text)
    assert "\n" not in str(caught.value)


def test_unknown_prompt_placeholder_is_refused(tmp_path: Path) -> None:
    text = task_yaml().replace("{{question}}", "{{question.__class__}}").replace(
        '"{question}', '"{question.__class__}')
    with pytest.raises(TaskConfigError, match="unknown placeholder"):
        index_with(tmp_path, text)


def test_groups_expand_recursively_and_detect_cycles(tmp_path: Path) -> None:
    folder = tmp_path / "g"
    folder.mkdir()
    (folder / "a.yaml").write_text(task_yaml("a"))
    (folder / "b.yaml").write_text(task_yaml("b"))
    (folder / "inner.yaml").write_text("group: inner\ntasks: [b, a]\n")
    (folder / "outer.yaml").write_text("group: outer\ntasks: [a, inner]\n")
    index = TaskIndex.build([folder], builtin=False)
    assert [t.name for t in index.resolve(["outer"])] == ["a", "b"]
    (folder / "loop.yaml").write_text("group: loop\ntasks: [loop2]\n")
    (folder / "loop2.yaml").write_text("group: loop2\ntasks: [loop]\n")
    with pytest.raises(TaskConfigError, match="group cycle"):
        TaskIndex.build([folder], builtin=False).resolve(["loop"])


def test_unknown_task_lists_known_names(tmp_path: Path) -> None:
    index = index_with(tmp_path, task_yaml())
    with pytest.raises(TaskConfigError, match=r"unknown task or group 'nope'.*toy"):
        index.resolve(["nope"])


def test_include_path_cannot_shadow_a_builtin_task(tmp_path: Path) -> None:
    folder = tmp_path / "shadow"
    folder.mkdir()
    (folder / "x.yaml").write_text(task_yaml("omnimedvqa_sample"))
    with pytest.raises(TaskConfigError, match="already defined"):
        TaskIndex.build([folder])


def test_every_builtin_task_file_is_valid() -> None:
    index = TaskIndex.build()
    assert "omnimedvqa_sample" in index.tasks
    assert index.resolve(["samples"])


def test_manifest_pins_the_data(tmp_path: Path) -> None:
    from healthbench.run.prepare import ManifestMismatchError, load_task_data
    from tests.helpers import omnimed_item, write_omnimed

    write_omnimed(tmp_path / "data", [omnimed_item(f"Images/x/{i}.png") for i in range(3)])
    task = index_with(tmp_path, task_yaml(extra="manifest: {files: 1, samples: 3}\n")) \
        .tasks["toy"]
    loaded, checksum = load_task_data(task, tmp_path / "data")
    assert len(loaded.items) == 3
    pinned = index_with(tmp_path, task_yaml(
        "pinned", extra=f"manifest: {{samples: 4, checksum: '{checksum}'}}\n"), "p.yaml")
    with pytest.raises(ManifestMismatchError, match="samples 4 expected, 3 found"):
        load_task_data(pinned.tasks["pinned"], tmp_path / "data")
    with pytest.raises(TaskConfigError, match="key 'manifest.size': unknown key"):
        index_with(tmp_path, task_yaml("bad", extra="manifest: {size: 3}\n"), "b.yaml")

"""Task and group YAML files → validated, frozen config objects.

YAML is read with ``yaml.safe_load`` only (``!!python/object`` and friends are refused by the
parser). Every key is checked against the schema below; an unknown key, a wrong type or a name
that no registry knows is a ``TaskConfigError`` naming the file and the key.

A task file looks like::

    task: omnimedvqa_sample          # unique name
    version: "1.0"                   # bump when prompts, data or scoring change
    dataset:
      format: omnimedvqa             # a registered loader
      path: OmniMedVQA               # relative to the data root
      options: {access: [Open-access]}
      sample_builder: omnimedvqa_sample   # optional: writes the bundled sample data if missing
    output: text                     # text | image
    scorer: generate                 # generate | loglikelihood
    choice_template: " {option}."    # loglikelihood only: how each option continues the prompt
    prompt:
      template: "{question}\\n{options}\\nAnswer with the option's letter."
    extract: {name: choice_letter}
    metrics: [{name: accuracy}, {name: parse_failure}]
    group_by: [modality, question_type]
    generation: {max_new_tokens: 16}
    protocol: strict                 # optional: the named scoring protocol (see below)
    permutations: cyclic             # optional: re-ask in other option orders (cyclic | N)

``protocol`` names how a suite scores when several published scorers disagree (``strict``,
``llava-med``, ``medevalkit`` for the medical VQA suites; ``llava-rad``, ``unix`` … for MIMIC-CXR).
It is recorded in results.json (``tasks.<t>.protocol``), shown in every table heading, and runs
with different protocols are never ranked together. The extractor and every metric whose factory
takes a ``protocol`` keyword receive it; a metric's own ``args.protocol`` may not contradict it.

A group file is ``{group: NAME, tasks: [task or group names], description: ...}``.
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

from healthbench.core.names import UnsafeNameError, check_name
from healthbench.core.types import OUTPUT_KINDS, GenerationParams

SCORERS = ("generate", "loglikelihood")
PROMPT_FIELDS = ("question", "options", "options_list", "letters", "n_options")
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")


class TaskConfigError(ValueError):
    """A task or group file that cannot be used; the message names the file and key."""


@dataclass(frozen=True)
class NamedCall:
    """A registered function named in YAML, with keyword arguments for it."""

    name: str
    args: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DatasetConfig:
    format: str
    path: str = ""
    options: Mapping[str, Any] = field(default_factory=dict)
    sample_builder: str | None = None


@dataclass(frozen=True)
class PromptConfig:
    template: str | None = None
    builder: str | None = None
    system: str | None = None


@dataclass(frozen=True)
class TaskConfig:
    name: str
    version: str
    dataset: DatasetConfig
    output: str
    prompt: PromptConfig
    metrics: tuple[NamedCall, ...]
    scorer: str = "generate"
    choice_template: str = "{option}"
    extract: NamedCall = NamedCall("identity")
    group_by: tuple[str, ...] = ()
    generation: GenerationParams = GenerationParams()
    description: str = ""
    source: str = ""  # the YAML file it came from, for error messages
    manifest: Mapping[str, Any] = field(default_factory=dict)
    protocol: str | None = None  # the named scoring protocol, None when the suite has one only
    #: Re-ask multiple-choice questions in other option orders: "cyclic" or N seeded
    #: permutations (healthbench.scoring.robustness); ``--permute-options`` overrides it.
    permutations: str | int | None = None


@dataclass(frozen=True)
class GroupConfig:
    name: str
    tasks: tuple[str, ...]
    description: str = ""
    source: str = ""


class _Checker:
    """Small schema checks with messages of the form ``FILE: key 'a.b': what was wrong``."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, key: str, message: str) -> TaskConfigError:
        return TaskConfigError(f"{self.source}: key '{key}': {message}")

    def mapping(self, value: Any, key: str, allowed: Mapping[str, tuple[type, ...]],
                required: tuple[str, ...] = ()) -> dict[str, Any]:
        if not isinstance(value, Mapping):
            raise self.fail(key, f"expected a mapping, got {type(value).__name__}")
        for name in value:
            if name not in allowed:
                where = f"{key}.{name}" if key else str(name)
                raise self.fail(where, f"unknown key (allowed: {', '.join(sorted(allowed))})")
        for name in required:
            if name not in value:
                raise self.fail(f"{key}.{name}" if key else name, "required key is missing")
        for name, item in value.items():
            types = allowed[name]
            if not isinstance(item, types) or (isinstance(item, bool) and bool not in types):
                expected = " or ".join(t.__name__ for t in types)
                where = f"{key}.{name}" if key else str(name)
                raise self.fail(where, f"expected {expected}, got {type(item).__name__}")
        return dict(value)

    def named_call(self, value: Any, key: str) -> NamedCall:
        if isinstance(value, str):
            return NamedCall(value)
        data = self.mapping(value, key, {"name": (str,), "args": (dict,)}, required=("name",))
        return NamedCall(data["name"], dict(data.get("args") or {}))


def read_yaml(path: Path) -> Any:
    """Safe-load one YAML file; parser errors name the file and line."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TaskConfigError(f"{path}: cannot read: {exc}") from exc
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise TaskConfigError(f"{path}: {yaml_problem(exc)}") from exc


def yaml_problem(exc: yaml.YAMLError) -> str:
    """One line for a YAML error (PyYAML's own text spans several lines and quotes the source):
    where it is, and what; a tag that would build an object is named as refused."""
    mark = getattr(exc, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    problem = getattr(exc, "problem", None) or str(exc)
    tag = re.search(r"tag '(?:tag:yaml\.org,2002:)?([^']*)'", problem)
    if isinstance(exc, yaml.constructor.ConstructorError) and tag:
        return (f"YAML tag '!!{tag.group(1)}' refused{where}: task files are plain YAML "
                "(safe_load); tags that build Python objects are not allowed")
    return f"malformed YAML{where}: " + " ".join(problem.split())


def parse_task(data: Any, source: str) -> TaskConfig:
    """Validate one task mapping (already safe-loaded) and build its TaskConfig."""
    check = _Checker(source)
    top = check.mapping(data, "", {
        "task": (str,), "version": (str, int, float), "description": (str,),
        "dataset": (dict,), "output": (str,), "scorer": (str,), "choice_template": (str,), "prompt": (dict, str),
        "extract": (dict, str), "metrics": (list,), "group_by": (list,),
        "generation": (dict,), "manifest": (dict,), "protocol": (str,),
        "permutations": (str, int),
    }, required=("task", "version", "dataset", "output", "prompt", "metrics"))
    _check_safe(top["task"], f"{source}: key 'task'")

    ds = check.mapping(top["dataset"], "dataset", {
        "format": (str,), "path": (str,), "options": (dict,), "sample_builder": (str,),
    }, required=("format",))
    dataset = DatasetConfig(ds["format"], ds.get("path", ""), dict(ds.get("options") or {}),
                            ds.get("sample_builder"))

    if top["output"] not in OUTPUT_KINDS:
        raise check.fail("output", f"must be one of {', '.join(OUTPUT_KINDS)}")
    scorer = top.get("scorer", "generate")
    if scorer not in SCORERS:
        raise check.fail("scorer", f"must be one of {', '.join(SCORERS)}")
    choice_template = top.get("choice_template", "{option}")
    bare = choice_template.replace("{option}", "").replace("{letter}", "")
    if bare == choice_template or _PLACEHOLDER.sub("", bare) != bare:
        raise check.fail("choice_template", "must contain {option} (option text) and/or "
                         "{letter} (option letter) and no other placeholder")

    raw_prompt = top["prompt"]
    if isinstance(raw_prompt, str):
        raw_prompt = {"template": raw_prompt}
    pr = check.mapping(raw_prompt, "prompt", {"template": (str,), "builder": (str,),
                                              "system": (str,)})
    if ("template" in pr) == ("builder" in pr):
        raise check.fail("prompt", "give exactly one of 'template' or 'builder'")
    prompt = PromptConfig(pr.get("template"), pr.get("builder"), pr.get("system"))
    if prompt.template is not None:
        _check_template(prompt.template, check)

    if not top["metrics"]:
        raise check.fail("metrics", "at least one metric is needed")
    metrics = tuple(check.named_call(m, f"metrics[{i}]") for i, m in enumerate(top["metrics"]))
    extract = check.named_call(top.get("extract", "identity"), "extract")

    group_by = top.get("group_by", [])
    if not all(isinstance(g, str) for g in group_by):
        raise check.fail("group_by", "expected a list of meta key names")

    check.mapping(top.get("manifest", {}), "manifest",
                  {"files": (int,), "samples": (int,), "checksum": (str,)})
    gen = check.mapping(top.get("generation", {}), "generation", {
        "max_new_tokens": (int,), "temperature": (int, float), "top_p": (int, float),
        "stop": (list,),
    })
    generation = GenerationParams(
        max_new_tokens=gen.get("max_new_tokens", 32),
        temperature=float(gen.get("temperature", 0.0)),
        top_p=float(gen.get("top_p", 1.0)),
        stop=tuple(str(s) for s in gen.get("stop", ())),
    )
    permutations = top.get("permutations")
    if permutations is not None and permutations != "cyclic" and (
            isinstance(permutations, str) or permutations < 1):
        raise check.fail("permutations", f"expected 'cyclic' or a positive number of "
                         f"permutations, got {permutations!r}")
    config = TaskConfig(
        name=top["task"], version=str(top["version"]), dataset=dataset, output=top["output"],
        prompt=prompt, metrics=metrics, scorer=scorer, extract=extract,
        choice_template=choice_template,
        group_by=tuple(group_by), generation=generation,
        description=top.get("description", ""), source=source,
        manifest=dict(top.get("manifest") or {}),
        protocol=top.get("protocol"), permutations=permutations,
    )
    _check_names(config, check)
    return config


def parse_group(data: Any, source: str) -> GroupConfig:
    check = _Checker(source)
    top = check.mapping(data, "", {"group": (str,), "tasks": (list,), "description": (str,)},
                        required=("group", "tasks"))
    _check_safe(top["group"], f"{source}: key 'group'")
    if not top["tasks"] or not all(isinstance(t, str) for t in top["tasks"]):
        raise check.fail("tasks", "expected a non-empty list of task or group names")
    return GroupConfig(top["group"], tuple(top["tasks"]), top.get("description", ""), source)


def _check_safe(name: str, where: str) -> None:
    """A task or group name becomes a folder of the run: only path-safe names are accepted."""
    try:
        check_name(name, where)
    except UnsafeNameError as exc:
        raise TaskConfigError(str(exc)) from None


def _check_template(template: str, check: _Checker) -> None:
    for name in _PLACEHOLDER.findall(template):
        if name in PROMPT_FIELDS or (name.startswith("meta.") and len(name) > 5):
            continue
        allowed = ", ".join(PROMPT_FIELDS)
        raise check.fail("prompt.template",
                         f"unknown placeholder {{{name}}} (allowed: {allowed}, meta.KEY)")


def _check_names(config: TaskConfig, check: _Checker) -> None:
    """Every function a task names must be registered: a task file never imports code."""
    from healthbench.core import catalog  # names resolve lazily to their modules

    lookups = [("dataset.format", catalog.LOADERS, config.dataset.format),
               ("extract", catalog.EXTRACTORS, config.extract.name)]
    if config.dataset.sample_builder:
        lookups.append(("dataset.sample_builder", catalog.SAMPLE_BUILDERS,
                        config.dataset.sample_builder))
    if config.prompt.builder:
        lookups.append(("prompt.builder", catalog.PROMPT_BUILDERS, config.prompt.builder))
    lookups += [(f"metrics[{i}]", catalog.METRICS, m.name) for i, m in enumerate(config.metrics)]
    for key, registry, name in lookups:
        if name not in registry:
            known = ", ".join(registry.names())
            raise check.fail(key, f"unknown {registry.kind} {name!r} (registered: {known})")


def with_protocol(factory: Any, args: Mapping[str, Any], task: TaskConfig,
                  key: str) -> dict[str, Any]:
    """``args`` plus the task's ``protocol`` when the factory takes a ``protocol`` keyword; a
    metric argument that names another protocol than the task's is a config error."""
    out = dict(args)
    if task.protocol is None or not accepts_keyword(factory, "protocol"):
        return out
    if out.get("protocol", task.protocol) != task.protocol:
        raise TaskConfigError(f"{task.source}: key '{key}.args.protocol': {out['protocol']!r} "
                              f"contradicts the task's protocol {task.protocol!r}")
    out["protocol"] = task.protocol
    return out


@functools.lru_cache(maxsize=None)
def accepts_keyword(func: Any, name: str) -> bool:
    """Whether ``func`` takes keyword ``name`` (cached: extractors are called once per sample)."""
    import inspect

    try:
        params = inspect.signature(func).parameters
    except (TypeError, ValueError):
        return False
    return name in params or any(p.kind is p.VAR_KEYWORD for p in params.values())

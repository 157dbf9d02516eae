"""Turning a Sample into prompt text, from a task's template or a registered builder.

Templates use ``{placeholder}`` fields only (``str.format`` is not used: it would allow attribute
and item access from a task file). Fields: ``question``, ``options`` ("A. text" lines),
``options_list`` (Python list repr of option texts, as OmniMedVQA's official QA prompt uses),
``letters`` ("A, B, C"), ``n_options`` and ``meta.KEY``.
"""
from __future__ import annotations

import re

from healthbench.taskconfig.schema import PromptConfig
from healthbench.core.types import Sample

_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")


def options_block(sample: Sample) -> str:
    return "\n".join(f"{letter}. {text}" for letter, text in sample.options.items())


def render(prompt: PromptConfig, sample: Sample) -> tuple[str, str | None]:
    """``(prompt text, system prompt or None)`` for one sample.

    The system prompt is the task's ``prompt.system``, or what a builder returns when a
    benchmark's official prompt has a per-item system turn: a builder returns the text, or a
    ``(system, text)`` pair.
    """
    if prompt.builder is not None:
        from healthbench.core.catalog import PROMPT_BUILDERS

        built = PROMPT_BUILDERS.get(prompt.builder)(sample)
        if isinstance(built, tuple):
            system, text = built
            return text, system or prompt.system
        return built, prompt.system
    assert prompt.template is not None
    fields = {
        "question": sample.question,
        "options": options_block(sample),
        "options_list": str(list(sample.options.values())),
        "letters": ", ".join(sample.options),
        "n_options": str(len(sample.options)),
    }

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name.startswith("meta."):
            return str(sample.meta.get(name[5:], ""))
        return fields[name]

    return _PLACEHOLDER.sub(fill, prompt.template), prompt.system

"""Turning a Sample into prompt text, from a task's template or a registered builder.

Templates use ``{placeholder}`` fields only (``str.format`` is not used: it would allow attribute
and item access from a task file). Fields: ``question``, ``options`` ("A. text" lines),
``options_list`` (Python list repr of option texts, as OmniMedVQA's official QA prompt uses),
``letters`` ("A, B, C"), ``n_options`` and ``meta.KEY``.
"""
from __future__ import annotations

import re

from healthbench.taskconfig import PromptConfig
from healthbench.types import Sample

_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")


def options_block(sample: Sample) -> str:
    return "\n".join(f"{letter}. {text}" for letter, text in sample.options.items())


def render(prompt: PromptConfig, sample: Sample) -> str:
    """The prompt text for one sample (the system prompt, if any, is passed separately)."""
    if prompt.builder is not None:
        from healthbench.catalog import PROMPT_BUILDERS

        return PROMPT_BUILDERS.get(prompt.builder)(sample)
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

    return _PLACEHOLDER.sub(fill, prompt.template)

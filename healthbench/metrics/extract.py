"""Answer extractors: model text → the answer the metric compares with the target.

Each is registered by name and called as ``extract(text, sample, **args)``. An extractor that
cannot find an answer returns ``UNPARSED`` (JSON null) rather than guessing; the parse-failure rate
is reported beside accuracy.
"""
from __future__ import annotations

import re
from typing import Any

from healthbench.catalog import EXTRACTORS
from healthbench.metrics.base import UNPARSED
from healthbench.types import Sample

_WRAPPERS = (
    re.compile(r"<answer>(.*?)</answer>", re.S | re.I),
    re.compile(r"\\boxed\{([^{}]*)\}"),
)
_CUES = re.compile(
    r"(?:final answer|correct answer|the answer|answer|option|choice)\s*(?:is|:|=)?\s*"
    r"(?:option\s*)?[\(\[\*\"']*([A-Za-z])(?![A-Za-z])",
    re.I,
)


@EXTRACTORS.register("identity")
def identity(text: str, sample: Sample) -> Any:
    """The response text unchanged (stripped): free-text answers scored by text metrics."""
    return text.strip() if isinstance(text, str) else UNPARSED


def _norm(text: str) -> str:
    return re.sub(r"[\s\W_]+", " ", text.lower()).strip()


@EXTRACTORS.register("choice_letter")
def choice_letter(text: str, sample: Sample, last_mention: bool = True) -> Any:
    """The option letter a response names, or UNPARSED.

    Looks, in order, inside ``<answer>…</answer>`` or ``\\boxed{…}``; at a bare letter
    ("B", "(B)", "B.", "B) text"); after a cue ("Answer: B", "the answer is B"); at the exact text of
    one option. Only letters that are options of this sample count. Where several cues name
    letters, the last one wins when ``last_mention`` (a model's final answer usually comes last).
    """
    if not isinstance(text, str):
        return UNPARSED
    letters = {k.upper() for k in sample.options}
    for wrapper in _WRAPPERS:
        found = wrapper.findall(text)
        if found:
            text = found[-1]
            break
    stripped = text.strip()
    bare = re.fullmatch(r"[\(\[\*\s]*([A-Za-z])[\)\]\.\:\*,]*(?:\s+.*)?", stripped, re.S)
    if bare and bare.group(1).upper() in letters:
        rest = stripped[bare.end(1):]
        # "A" / "(A)" / "A." / "A) text" / "A. text" — but not an English word like "A lesion"
        if not rest or rest[0] in ").:]*," or rest.strip() == "":
            return bare.group(1).upper()
    cued = [m.group(1).upper() for m in _CUES.finditer(text) if m.group(1).upper() in letters]
    if cued:
        return cued[-1] if last_mention else cued[0]
    norm = _norm(text)
    matches = [k.upper() for k, v in sample.options.items() if _norm(str(v)) == norm]
    if len(matches) == 1:
        return matches[0]
    contained = [k.upper() for k, v in sample.options.items()
                 if _norm(str(v)) and re.search(rf"\b{re.escape(_norm(str(v)))}\b", norm)]
    if len(contained) == 1:
        return contained[0]
    return UNPARSED

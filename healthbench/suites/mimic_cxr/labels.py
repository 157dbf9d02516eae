"""The 14 CheXpert observations, their label codes, and the labeler contract.

**Label order.** Everywhere in healthbench (``parsed`` of a sample, ``target["labels"]``, metric
inputs) labels are a mapping ``{observation: code}`` in the CheXpert paper / dataset-CSV order
(``CHEXPERT_LABELS``: No Finding first). CheXbert's heads use another order (No Finding last,
``CHEXBERT_HEAD_ORDER``) and the MIMIC-CXR CSV sorts its columns alphabetically; both are
converted by name, never by position.

**Codes** (CheXbert's): 0 blank (not mentioned), 1 positive, 2 negative, 3 uncertain. "No
Finding" is only ever 0 or 1. The MIMIC-CXR ``chexpert.csv`` values map as 1.0 → 1, 0.0 → 2,
-1.0 → 3, empty → 0.

**Uncertainty conventions** are applied by the metrics, identically to prediction and reference:
"uncertain as negative" (LLaVA-Rad ``rrg``, UniX ``==1``) and "uncertain as positive"
(``rrg+``, UniX ``(x==1)|(x==3)``); blank and negative are always 0.

**Labeler contract.** A labeler is registered in ``catalog.LABELERS`` as a factory taking keyword
arguments and returning an object with ``label(texts) -> list[dict[str, int]]`` (one mapping per
text, codes as above, every one of the 14 observations present). ``get_labeler`` builds each
(name, arguments) once per process, so a BERT checkpoint is loaded once.
"""
from __future__ import annotations

import json
from typing import Any, Mapping, Protocol, Sequence

BLANK, POSITIVE, NEGATIVE, UNCERTAIN = 0, 1, 2, 3
CODE_NAMES = {BLANK: "blank", POSITIVE: "positive", NEGATIVE: "negative",
              UNCERTAIN: "uncertain"}

#: CheXpert paper / dataset CSV order: the order of every label mapping in healthbench.
CHEXPERT_LABELS: tuple[str, ...] = (
    "No Finding", "Enlarged Cardiomediastinum", "Cardiomegaly", "Lung Opacity", "Lung Lesion",
    "Edema", "Consolidation", "Pneumonia", "Atelectasis", "Pneumothorax", "Pleural Effusion",
    "Pleural Other", "Fracture", "Support Devices",
)
#: CheXbert's head order (LLaVA-Rad ``CheXbert_CONDITIONS``, UniX ``CONDITIONS``).
CHEXBERT_HEAD_ORDER: tuple[str, ...] = CHEXPERT_LABELS[1:] + ("No Finding",)
#: The five "competition" labels (``CONDITIONS_5``).
COMPETITION_LABELS: tuple[str, ...] = ("Atelectasis", "Cardiomegaly", "Consolidation", "Edema",
                                       "Pleural Effusion")
#: Observations that are not pathologies: a positive one does not rule out "No Finding".
NON_PATHOLOGY = ("No Finding", "Support Devices")

LABEL_SETS: dict[str, tuple[str, ...]] = {"14": CHEXPERT_LABELS, "5": COMPETITION_LABELS}
UNCERTAIN_POLICIES = ("negative", "positive")

#: MIMIC-CXR / CheXpert CSV cell → code.
CSV_CODES = {"1.0": POSITIVE, "1": POSITIVE, "0.0": NEGATIVE, "0": NEGATIVE,
             "-1.0": UNCERTAIN, "-1": UNCERTAIN, "": BLANK, "nan": BLANK}


class Labeler(Protocol):
    def label(self, texts: Sequence[str]) -> list[dict[str, int]]:
        ...


class LabelerError(ValueError):
    """A labeler that cannot be built (missing checkpoint, bad arguments); says what to supply."""


def blank_labels() -> dict[str, int]:
    return {name: BLANK for name in CHEXPERT_LABELS}


def check_labels(labels: Any, where: str) -> dict[str, int]:
    """A complete, valid label mapping in CHEXPERT_LABELS order, or ValueError naming ``where``."""
    if not isinstance(labels, Mapping):
        raise ValueError(f"{where}: labels must be a mapping of observation to code")
    unknown = sorted(set(labels) - set(CHEXPERT_LABELS))
    if unknown:
        raise ValueError(f"{where}: unknown observation(s) {unknown}")
    out = {}
    for name in CHEXPERT_LABELS:
        code = labels.get(name, BLANK)
        if code not in CODE_NAMES or isinstance(code, bool):
            raise ValueError(f"{where}: {name!r} has code {code!r}; expected 0 blank, "
                             "1 positive, 2 negative or 3 uncertain")
        out[name] = int(code)
    return out


def binarize(code: int, uncertain: str) -> int:
    """1 for positive (and for uncertain under the 'positive' convention), else 0."""
    if code == POSITIVE:
        return 1
    if code == UNCERTAIN:
        return 1 if uncertain == "positive" else 0
    return 0


_CACHE: dict[tuple[str, str], Labeler] = {}


def get_labeler(name: str, args: Mapping[str, Any] | None = None) -> Labeler:
    """The registered labeler ``name`` built with ``args``; built once per process."""
    from healthbench.core.catalog import LABELERS

    key = (name, json.dumps(dict(args or {}), sort_keys=True, default=str))
    if key not in _CACHE:
        _CACHE[key] = LABELERS.get(name)(**dict(args or {}))
    return _CACHE[key]


def truncate(text: str, max_chars: int | None) -> str:
    """UniX truncates report text to 512 characters before labelling; None keeps it whole."""
    return text if max_chars is None else text[:max_chars]

"""Named report-F1 protocols for MIMIC-CXR: which references, which text cut, which uncertainty
convention and which aggregate each published scorer uses.

The CheXbert labeler and the F1 formula are the same everywhere (checked against LLaVA-Rad's
``rrg_eval``, f1chexbert and UniX); what makes published numbers differ is the protocol around
them. A task names one with its ``protocol:`` key; the ``chexpert_labels`` extractor and the
``chexpert_*_f1_*`` metrics receive it, and the peer-format loaders (``peer_files.py``) apply the
same text preparation to the references.

=============  ==========================  ====================  ==============  ==============
protocol       references                  text cut              uncertain       aggregate
=============  ==========================  ====================  ==============  ==============
``healthbench``  official layout: FINDINGS  none (511 tokens,     both (_uneg,    point estimate
               of each study's report      the labeler's)        _upos)          + bootstrap CI
``llava-rad``  LLaVA-Rad's curated         none (511 tokens)     negative        + median of 500
               findings file (test, AP/PA,                       (``rrg``) and   resamples,
               rule-based)                                       positive        random_state=3
                                                                 (``rrg+``)
``unix``       UniX ``test_data.json``     512 characters, both  both            point estimate
               assistant turns, verbatim   sides, after strip()
               (``FINDINGS: …`` kept)
``f1chexbert`` official layout (the        none (511 tokens)     positive only   point estimate
               package takes any refs)                           (its ``rrg``)
=============  ==========================  ====================  ==============  ==============

Sources: microsoft/LLaVA-Rad ``llava/eval/rrg_eval/rrg_eval/chexbert.py`` (``evaluate``,
``bootstrap_confidence_interval``), ``factuality_utils.py`` (``map_to_binary``),
``llava/utils.py`` (``data_loader_mimic_reason_findings``); ZrH42/UniX
``eval/und_metrics/metrics_clinical.py`` (``mini_batch``: ``text[:512]``),
``eval/calculate_und_metrics.py`` (``str(...).replace('\\ufffd', '?').strip()``),
``eval/base/dataset.py``; PyPI f1chexbert 0.0.2 ``f1chexbert/f1chexbert.py`` (``get_label``
mode ``"rrg"``: uncertain → 1).
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ReportProtocol:
    name: str
    #: characters kept of each text before labelling (None: the labeler's 511-token cut only)
    max_chars: int | None
    #: uncertainty conventions the protocol publishes ("negative", "positive")
    conventions: tuple[str, ...]
    #: (resamples, random_state) of the bootstrap whose median the protocol publishes, or None
    bootstrap_median: tuple[int, int] | None = None


PROTOCOLS: dict[str, ReportProtocol] = {p.name: p for p in (
    ReportProtocol("healthbench", None, ("negative", "positive")),
    ReportProtocol("llava-rad", None, ("negative", "positive"), bootstrap_median=(500, 3)),
    ReportProtocol("unix", 512, ("negative", "positive")),
    ReportProtocol("f1chexbert", None, ("positive",)),
)}


def get_protocol(name: str) -> ReportProtocol:
    if name not in PROTOCOLS:
        raise ValueError(f"unknown MIMIC-CXR report protocol {name!r}; known: "
                         f"{', '.join(PROTOCOLS)}")
    return PROTOCOLS[name]


def prepare_text(text: str, protocol: str) -> str:
    """A report as the protocol's scorer hands it to the labeler (same for both sides).

    * ``unix``: ``str(x).replace('\\ufffd', '?').strip()`` (``calculate_und_metrics.py``), then
      the first 512 characters (``metrics_clinical.py`` ``mini_batch``), prefix kept;
    * ``f1chexbert``: ``l.strip()`` (``F1CheXbert.forward``);
    * ``llava-rad`` and ``healthbench``: unchanged (LLaVA-Rad strips its generations when it
      writes them; CheXbert's cleaning strips again, so this is the same text).
    """
    spec = get_protocol(protocol)
    if protocol == "unix":
        text = text.replace("\ufffd", "?").strip()
    elif protocol == "f1chexbert":
        text = text.strip()
    return text if spec.max_chars is None else text[:spec.max_chars]


def check_cut(protocol: str, max_chars: int | None) -> None:
    """A task's explicit ``max_chars`` may not contradict its protocol's cut."""
    spec = get_protocol(protocol)
    if max_chars is not None and max_chars != spec.max_chars:
        cut = "no character cut" if spec.max_chars is None else f"a {spec.max_chars}-character cut"
        raise ValueError(f"protocol {protocol!r} uses {cut}; max_chars={max_chars} contradicts it")

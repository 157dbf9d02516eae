"""MedEvalKit's scoring of VQA-RAD, SLAKE and PathVQA, reproduced for ``protocol: medevalkit``.

The reference is alibaba-damo-academy/MedEvalKit: ``utils/VQA_RAD/VQA_RAD.py``,
``utils/PATH_VQA/PATH_VQA.py`` and ``utils/SLAKE/SLAKE.py`` (``cal_metrics``) with
``utils/utils.py`` (``parse_response``, ``judge_judgement``, ``judge_close_end_vqa``,
``judge_open_end_vqa``). Reproduced as it is:

* the response is first cut to its last ``\\boxed{…}`` content (mathruler's
  ``extract_boxed_content``), else to its ``<answer>…</answer>`` spans;
* VQA-RAD / PathVQA then lower-case and strip response and answer; a question is closed iff the
  answer is "yes" or "no". SLAKE does neither: closed iff SLAKE's ``answer_type`` is not
  ``OPEN``, and within closed the yes/no test is on the answer **as written** (SLAKE's "Yes" and
  "No" are therefore scored by the exact-match rule, not the yes/no rule);
* ``parse_response`` lower-cases, cuts again to boxed/``<answer>`` content and keeps the text
  after the last occurrence of each cue ("answer is", "answer:", "final answer", …), in order;
* yes/no (``judge_judgement``): after removing newlines and periods, correct iff exactly one of
  "yes" and "no" occurs **as a substring** and the answer is a substring ("Not sure" says "no";
  "Yes, there is a nodule" says both);
* other closed (``judge_close_end_vqa``): after removing newlines and periods, equal to the
  lower-cased answer;
* open (``em``): ``parse_response(response) == answer`` — no stripping of punctuation or of the
  space a cue leaves ("The answer is liver" gives " liver", which is wrong).

Two defects are not reproduced: ``judge_open_end_vqa`` raises on an open response with no words
(ROUGE refuses an empty hypothesis and ``calculate_f1`` returns a bare 0 that is unpacked into
three names), which here scores 0; and ``cal_metrics`` divides the printed open accuracy by the
open count a second time, while here open accuracy is right/total.
"""
from __future__ import annotations

from typing import Any

from healthbench.core.types import Sample
from healthbench.scoring.medevalkit import between_tags, last_boxed, parse_response

CLOSED, OPEN = "closed", "open"


def is_slake(sample: Sample) -> bool:
    """SLAKE items carry ``q_lang`` (the SLAKE loader's meta); MedEvalKit scores them apart."""
    return "q_lang" in sample.meta


def first_cut(response: str) -> str:
    """``cal_metrics``' first step: the boxed content, else the ``<answer>`` content."""
    boxed = last_boxed(response)
    if boxed != "None":
        return boxed
    if "<answer>" in response:
        return between_tags(response, "answer")
    return response


def prepared(sample: Sample, response: str) -> tuple[str, str]:
    """(answer, response) as ``cal_metrics`` hands them to the judges."""
    cut = first_cut(response)
    if is_slake(sample):
        return str(sample.target), cut
    return str(sample.target).lower().strip(), cut.lower().strip()


def answer_type(sample: Sample) -> str:
    if is_slake(sample):
        raw = sample.meta.get("answer_type_raw")
        return OPEN if raw == "OPEN" else CLOSED
    return CLOSED if str(sample.target).lower().strip() in ("yes", "no") else OPEN


def _said(response: str) -> str:
    return parse_response(response).replace("\n", "").replace(".", "")


def closed_correct(sample: Sample, response: str) -> bool:
    answer, said = prepared(sample, response)
    if answer in ("yes", "no"):  # judge_judgement
        said = _said(said)
        return (("yes" in said) ^ ("no" in said)) and answer.lower() in said
    return _said(said) == answer.lower()  # judge_close_end_vqa


def open_correct(sample: Sample, response: str) -> bool:
    answer, said = prepared(sample, response)
    return parse_response(said) == answer.lower()


def correct(sample: Sample, response: Any) -> bool:
    """MedEvalKit's ``correct`` for one item (its total accuracy averages this)."""
    text = response if isinstance(response, str) else ""
    if answer_type(sample) == CLOSED:
        return closed_correct(sample, text)
    return open_correct(sample, text)

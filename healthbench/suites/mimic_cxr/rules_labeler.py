"""``chexpert_rules``: an offline, rule-based CheXpert labeler (mention, negation, uncertainty).

A small re-implementation of the CheXpert labeler's idea, not of its code or its exact output:

1. The report is cut into sentences, and sentences into clauses at words that end a negation's
   or a hedge's reach ("but", "however", "although", "which", ";").
2. Each observation has mention patterns (``MENTIONS``). Some phrases state an observation's
   absence outright ("heart size is normal" → Cardiomegaly negative): ``NORMAL_PHRASES``.
3. A mention is **uncertain** when its clause holds a hedge ("may", "possible", "cannot be
   excluded", "suggestive of"…), else **negative** when a negation cue comes before it in the
   clause ("no", "without", "negative for", "free of"…) or a negating phrase follows it ("is not
   seen", "has resolved", "removed"…), else **positive**. Phrases such as "no change" or "not
   changed" are not negations.
4. Per report and observation: positive if any mention is positive, else uncertain if any is
   uncertain, else negative if any is negative, else blank (the CheXpert aggregation).
5. "No Finding" is positive when no pathology (everything but Support Devices) is positive or
   uncertain and the text is not empty; otherwise blank.

It is meant for offline runs, tests and quick looks. Published MIMIC-CXR numbers use CheXbert
(``chexbert`` labeler); the two are not interchangeable.
"""
from __future__ import annotations

import re
from typing import Sequence

from healthbench.core.catalog import LABELERS
from healthbench.suites.mimic_cxr.labels import (BLANK, CHEXPERT_LABELS, NEGATIVE, NON_PATHOLOGY,
                                           POSITIVE, UNCERTAIN, blank_labels)

_W = r"(?:\s+\w+){0,3}?"  # up to three words in between

MENTIONS: dict[str, tuple[str, ...]] = {
    "Enlarged Cardiomediastinum": (
        r"enlarged cardiomediastin\w*", r"cardiomediastinal (?:silhouette|contours?) "
        r"(?:is|are|appears?)" + _W + r" (?:enlarged|widened|prominent)",
        r"widen\w* (?:of )?(?:the )?(?:superior )?mediastinum", r"mediastinal widening",
        r"mediastinum is widened", r"widened mediastinum", r"mediastinal enlargement",
        r"enlarged mediastinum"),
    "Cardiomegaly": (
        r"cardiomegaly", r"enlarged heart", r"enlarged cardiac silhouette",
        r"cardiac (?:silhouette )?enlargement", r"enlargement of the (?:cardiac silhouette|heart)",
        r"heart (?:size )?(?:is|remains)" + _W + r" (?:enlarged|increased)",
        r"cardiac silhouette (?:is|remains)" + _W + r" enlarged"),
    "Lung Opacity": (
        r"opacit(?:y|ies)", r"opacification", r"infiltrat\w*", r"air[- ]?space disease",
        r"ground[- ]glass", r"haziness", r"hazy", r"reticular\w*",
        r"interstitial (?:markings|opacit\w*|disease|pattern|abnormalit\w*)",
        r"increased (?:lung )?markings", r"densit(?:y|ies)"),
    "Lung Lesion": (
        r"nodul\w*", r"mass(?:es)?", r"lesions?", r"tumou?rs?", r"neoplasm\w*", r"metasta\w*",
        r"cavitary", r"cavitation"),
    "Edema": (
        r"o?edema", r"pulmonary (?:vascular )?congestion", r"vascular congestion",
        r"fluid overload", r"chf", r"congestive heart failure"),
    "Consolidation": (r"consolidat\w*",),
    "Pneumonia": (r"pneumoni\w*", r"infection", r"infectious process", r"aspiration"),
    "Atelectasis": (r"atelecta\w*", r"collapse", r"volume loss"),
    "Pneumothorax": (r"pneumothora\w*", r"hydropneumothorax"),
    "Pleural Effusion": (
        r"effusions?", r"pleural fluid", r"hydrothorax",
        r"blunting of the (?:\w+ )?(?:costophrenic|cp) (?:angles?|sulc\w*)",
        r"(?:costophrenic|cp) (?:angles?|sulc\w*) (?:is|are) blunted"),
    "Pleural Other": (
        r"pleural thickening", r"pleural plaques?", r"fibrothorax", r"pleural scarring",
        r"pleural calcification", r"pleural-parenchymal scarring", r"pleural abnormalit\w*"),
    "Fracture": (r"fractur\w*",),
    "Support Devices": (
        r"pacemaker", r"pacer", r"defibrillator", r"icd", r"(?:aicd|picc|ij|swan[- ]ganz)",
        r"(?:endotracheal|et|nasogastric|ng|orogastric|og|enteric|feeding|chest|"
        r"tracheostomy|dobhoff) tubes?", r"tracheostomy", r"catheters?",
        r"(?:central|venous|arterial|midline|port) (?:venous )?(?:line|catheter)s?",
        r"port-?a-?cath", r"sternotomy wires?", r"wires?", r"leads?", r"stents?",
        r"(?:surgical )?clips?", r"drains?", r"prosthe\w+ valve", r"valve replacement",
        r"hardware", r"devices?"),
}

#: Phrases that say an observation is absent without a negation word.
NORMAL_PHRASES: dict[str, tuple[str, ...]] = {
    "Cardiomegaly": (
        r"(?:normal|unremarkable) (?:heart|cardiac) (?:size|silhouette)",
        r"heart (?:size )?(?:is |appears |remains )?(?:normal|within normal limits|unremarkable)",
        r"cardiac (?:size|silhouette) (?:is |appears |remains )?(?:normal|within normal limits)"),
    "Enlarged Cardiomediastinum": (
        r"(?:normal|unremarkable) (?:cardio)?mediastinal (?:silhouettes?|contours?)",
        r"(?:cardio)?mediastinal (?:silhouettes?|contours?) (?:is |are |appears? |remains? )?"
        r"(?:normal|unremarkable|within normal limits)"),
}

_NEG_BEFORE = re.compile(
    r"\b(?:no|not|without|negative for|free of|clear of|absence of|resolution of|"
    r"resolved|rules? out|ruled out|removal of|never|neither|nor)\b")
_NEG_AFTER = re.compile(
    r"^[\w\s,-]{0,40}?\b(?:(?:is|are|was|were|has been|have been)\s+)?(?:not\s+(?:seen|"
    r"identified|visualized|present|demonstrated|appreciated|evident|noted)|absent|resolved|"
    r"removed|cleared|no longer\b)")
_UNCERTAIN = re.compile(
    r"\b(?:may|might|could|possibl[ey]|probabl[ey]|likely|unlikely|suspect\w*|suspicious|"
    r"concerning for|concern for|question of|questionabl[ey]|cannot be (?:excluded|ruled out)|"
    r"can ?not be (?:excluded|ruled out)|not (?:be )?excluded|suggest\w*|versus|vs|"
    r"differential|consider\w*|borderline|equivocal|indeterminate|presumed|presumably|"
    r"r/o|rule out|or)\b")
_NOT_NEGATION = re.compile(
    r"\b(?:no (?:significant |interval |substantial )?change\w*|not (?:significantly )?"
    r"changed|without (?:significant |interval )?change|no new|not only)\b")
_CLAUSE_BREAK = re.compile(r"\s*(?:;|\bbut\b|\bhowever\b|\balthough\b|\bthough\b|\bwhich\b|"
                           r"\bexcept\b|\bwhereas\b|\bwith the exception of\b|"
                           r"(?:,|\band\b)\s*(?=there (?:is|are|has|have)\b))\s*")
_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+|\.$")

_MENTION_RE = {name: re.compile(r"\b(?:" + "|".join(p) + r")\b")
               for name, p in MENTIONS.items()}
_NORMAL_RE = {name: re.compile(r"\b(?:" + "|".join(p) + r")\b")
              for name, p in NORMAL_PHRASES.items()}
# "or" is a hedge only between two findings ("atelectasis or pneumonia"), not in "no X or Y".
_OR_HEDGE = re.compile(r"\bor\b")


def _clauses(text: str) -> list[str]:
    out: list[str] = []
    for sentence in _SENTENCE.split(text.lower()):
        out.extend(c.strip(" .,") for c in _CLAUSE_BREAK.split(sentence) if c.strip(" .,"))
    return out


def _hedged(clause: str) -> bool:
    for match in _UNCERTAIN.finditer(clause):
        if match.group(0) != "or":
            return True
        # "no effusion or pneumothorax" lists negated findings; a bare "x or y" hedges
        if not _NEG_BEFORE.search(clause[:match.start()]):
            return True
    return False


def _mention_status(clause: str, start: int, end: int) -> int:
    if _hedged(clause):
        return UNCERTAIN
    before = _NOT_NEGATION.sub(" ", clause[:start])
    if _NEG_BEFORE.search(before):
        return NEGATIVE
    if _NEG_AFTER.search(clause[end:]):
        return NEGATIVE
    return POSITIVE


def label_report(text: str) -> dict[str, int]:
    """The 14 codes for one report (see the module docstring for the rules)."""
    labels = blank_labels()
    if not text or not text.strip():
        return labels
    found: dict[str, set[int]] = {}
    for clause in _clauses(text):
        for name, pattern in _NORMAL_RE.items():
            if pattern.search(clause):
                found.setdefault(name, set()).add(NEGATIVE)
        for name, pattern in _MENTION_RE.items():
            for match in pattern.finditer(clause):
                found.setdefault(name, set()).add(_mention_status(clause, *match.span()))
    for name, statuses in found.items():
        for code in (POSITIVE, UNCERTAIN, NEGATIVE):
            if code in statuses:
                labels[name] = code
                break
    pathologies = [n for n in CHEXPERT_LABELS if n not in NON_PATHOLOGY]
    if all(labels[n] in (BLANK, NEGATIVE) for n in pathologies):
        labels["No Finding"] = POSITIVE
    return labels


class RuleLabeler:
    """Stateless; ``label`` is a plain loop over ``label_report``."""

    def label(self, texts: Sequence[str]) -> list[dict[str, int]]:
        return [label_report(t) for t in texts]


@LABELERS.register("chexpert_rules")
def chexpert_rules() -> RuleLabeler:
    return RuleLabeler()

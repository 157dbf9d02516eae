"""LLaVA-Med's scoring of VQA-RAD, SLAKE and PathVQA, reproduced for ``protocol: llava-med``.

The reference is ``llava/eval/run_eval.py`` with ``llava/eval/eval_metrics/`` (``glossary.py``
``normalize_word``, ``evaluate_metrics.py`` ``calculate_f1score``) in microsoft/LLaVA-Med at tag
v1.0.0. Everything it does to a response is reproduced, quirks included:

* both sides are lower-cased and passed through ``normalize_word``: punctuation from its list is
  turned into spaces (or deleted when it touches a space, or everywhere once the text holds a
  "digit,digit"), periods not followed by a digit are dropped (at most 32 of them, because the
  script passes ``re.UNICODE`` where ``re.sub`` takes its count), number words up to ten become
  digits ("none" becomes "0"), the articles a/an/the are removed and its contraction table is
  applied;
* closed/open comes from the dataset's own ``answer_type`` (``CLOSED`` | ``OPEN``) where the
  files have one (SLAKE, the OSF release of VQA-RAD); a question with another type is in neither
  score. Files without the field (the Hub copies of VQA-RAD and PathVQA) use yes/no answer =
  closed: LLaVA-Med's converted test files are not published, so that split is an assumption;
* closed: a hit iff the normalised response contains "yes" or "no" **as substrings** and
  contains the normalised target as a substring ("Not sure" contains "no"; "a nodule" contains
  "no"); every closed question stays in the denominator (since LLaVA-Med #35; before it, a wrong
  answer containing yes/no was dropped from the denominator);
* open: the ``recall`` of ``calculate_f1score`` on the normalised strings (normalised once more
  inside it): the numerator counts every occurrence of a shared word *in the response*, the
  denominator adds the target's words the response lacks, and anything with no shared word is 0.

``run_eval.py`` raises ZeroDivisionError on a file without open questions (its open scores are
divided unguarded); here the closed score is reported all the same and open recall is n/a.
"""
from __future__ import annotations

import re
from collections import Counter
from typing import Any

from healthbench.core.types import Sample

CLOSED, OPEN = "closed", "open"

_MANUAL_MAP = {"none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4",
               "five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9", "ten": "10"}
_ARTICLES = ("a", "an", "the")
_PUNCT = (";", "/", "[", "]", '"', "{", "}", "(", ")", "=", "+", "\\", "_", "-", ">", "<",
          "@", "`", ",", "?", "!")
# The pattern as the script writes it: "(?!<=" is a look-ahead (a typo for a look-behind), so
# it only removes periods that are not followed by a digit.
_PERIOD = re.compile(r"(?!<=\d)(\.)(?!\d)")
_DIGIT_COMMA = re.compile(r"(\d)(\,)(\d)")
#: ``glossary.py``'s contraction table (the VQA evaluation's), as written there.
_CONTRACTIONS = dict(pair.split("=", 1) for pair in """
    aint=ain't arent=aren't cant=can't couldve=could've couldnt=couldn't couldn'tve=couldn't've
    couldnt've=couldn't've didnt=didn't doesnt=doesn't dont=don't hadnt=hadn't
    hadnt've=hadn't've hadn'tve=hadn't've hasnt=hasn't havent=haven't hed=he'd hed've=he'd've
    he'dve=he'd've hes=he's howd=how'd howll=how'll hows=how's Id've=I'd've I'dve=I'd've Im=I'm
    Ive=I've isnt=isn't itd=it'd itd've=it'd've it'dve=it'd've itll=it'll let's=let's
    maam=ma'am mightnt=mightn't mightnt've=mightn't've mightn'tve=mightn't've mightve=might've
    mustnt=mustn't mustve=must've neednt=needn't notve=not've oclock=o'clock oughtnt=oughtn't
    ow's'at='ow's'at 'ows'at='ow's'at 'ow'sat='ow's'at shant=shan't shed've=she'd've
    she'dve=she'd've she's=she's shouldve=should've shouldnt=shouldn't shouldnt've=shouldn't've
    shouldn'tve=shouldn't've somebody'd=somebodyd somebodyd've=somebody'd've
    somebody'dve=somebody'd've somebodyll=somebody'll somebodys=somebody's someoned=someone'd
    someoned've=someone'd've someone'dve=someone'd've someonell=someone'll someones=someone's
    somethingd=something'd somethingd've=something'd've something'dve=something'd've
    somethingll=something'll thats=that's thered=there'd thered've=there'd've
    there'dve=there'd've therere=there're theres=there's theyd=they'd theyd've=they'd've
    they'dve=they'd've theyll=they'll theyre=they're theyve=they've twas='twas wasnt=wasn't
    wed've=we'd've we'dve=we'd've weve=we've werent=weren't whatll=what'll whatre=what're
    whats=what's whatve=what've whens=when's whered=where'd wheres=where's whereve=where've
    whod=who'd whod've=who'd've who'dve=who'd've wholl=who'll whos=who's whove=who've
    whyll=why'll whyre=why're whys=why's wont=won't wouldve=would've wouldnt=wouldn't
    wouldnt've=wouldn't've wouldn'tve=wouldn't've yall=y'all yall'll=y'all'll y'allll=y'all'll
    yall'd've=y'all'd've y'alld've=y'all'd've y'all'dve=y'all'd've youd=you'd youd've=you'd've
    you'dve=you'd've youll=you'll youre=you're youve=you've
""".split())


def normalize_word(token: str) -> str:
    """``glossary.normalize_word``, step by step."""
    out = token
    for p in _PUNCT:
        if (p + " " in token or " " + p in token) or _DIGIT_COMMA.search(token) is not None:
            out = out.replace(p, "")
        else:
            out = out.replace(p, " ")
    token = _PERIOD.sub("", out, 32)
    words = [_MANUAL_MAP.get(w, w) for w in token.lower().split()]
    words = [_CONTRACTIONS.get(w, w) for w in words if w not in _ARTICLES]
    return " ".join(words).replace(",", "")


def prepare(text: Any) -> str:
    """What ``evaluate`` compares: ``normalize_word(text.lower())``."""
    return normalize_word(str(text).lower())


def answer_type(sample: Sample) -> str | None:
    """closed | open | None (a dataset type LLaVA-Med scores under neither)."""
    raw = sample.meta.get("answer_type_raw")
    if isinstance(raw, str) and raw.strip():
        return {"CLOSED": CLOSED, "OPEN": OPEN}.get(raw.strip().upper())
    return CLOSED if prepare(sample.target) in ("yes", "no") else OPEN


def closed_hit(target: Any, response: str) -> float:
    """``run_eval.evaluate``'s closed branch on the raw target and response."""
    gold, said = prepare(target), prepare(response)
    return 1.0 if ("yes" in said or "no" in said) and gold in said else 0.0


def open_recall(target: Any, response: str) -> float:
    """``calculate_f1score(pred, gt)[2]`` on the prepared strings (normalised again inside)."""
    said = Counter(normalize_word(prepare(response)).strip().split())
    gold = Counter(normalize_word(prepare(target)).strip().split())
    if not said or not gold:
        return 0.0
    tp = sum(n for w, n in said.items() if w in gold)
    fn = sum(n for w, n in gold.items() if w not in said)
    return 0.0 if tp == 0 else tp / (tp + fn)

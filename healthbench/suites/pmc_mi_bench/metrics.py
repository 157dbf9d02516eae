"""PMC-MI-Bench's own scorer (``benchmark/PMC_Data_Benchmark/eval_utils.py``), reproduced.

Free-text sub-tasks, per item, then averaged over items (macro, as the official summaries):

* ``pmc_mi_bleu4``: ``nltk.translate.bleu_score.sentence_bleu([ref], pred,
  weights=(0.25,)*4)``, one reference, **no smoothing**, tokens
  ``text.lower().replace(".", " .").split()``; the tables print it ×100 (we store the fraction).
* ``pmc_mi_rouge_l``: the F of PyPI ``rouge`` 1.0.1 ``Rouge().get_scores(pred.lower(),
  ref.lower())[0]["rouge-l"]`` (summary-level union-LCS over "."-split sentences, words counted
  as sets, F = 2PR/(P+R+1e-8)); any exception (an empty text) → 0, as the official bare
  ``except``. Re-implemented here so that no extra package is needed; one difference: the
  package recurses once per LCS step, so sentences of about 1,000 words make it raise and score 0
  there, while this version scores them.
* ``pmc_mi_exact_match``: ``pred.strip().lower() == ref.strip().lower()``.
* ``pmc_mi_token_f1``: F1 of the *sets* of lower-cased whitespace tokens; 0 when either is empty.

Multiple choice:

* ``pmc_mi_choice_macro_f1``: Table 4's F1 (``calculate_f1.py``): only items whose stripped raw
  answer is exactly one of the letters A–F are kept; sklearn macro F1 over the letters present in
  their targets or answers, ``zero_division=0`` (the table does not say which average it prints;
  macro is the first the script reports).
* ``pmc_mi_choice_official``: the official ``parse_options_from_prompt`` +
  ``judge_multi_choice`` (MedEvalKit's algorithm, nearest option by ``difflib`` when no letter is
  found). Reproduced with its quirks: on the scored file's "The candidate options are: A. …"
  format, the line-based option parser misses option A, so a free-text answer is matched
  against B–D with shifted letters. Letter answers are unaffected. For paper parity only; the
  strict ``accuracy`` with the ``choice_letter`` extractor is the default.

All scores use the model's raw response text, as the official scorer does.
"""
from __future__ import annotations

import difflib
import re
import warnings
from typing import Any, Sequence

from healthbench.core.catalog import METRICS
from healthbench.scoring.base import Metric
from healthbench.core.types import Response, Sample, SampleResult


def _prediction(response: Response, parsed: Any) -> str:
    if response.text is not None:
        return response.text
    return parsed if isinstance(parsed, str) else ""


def bleu_tokens(text: str) -> list[str]:
    """The official tokenisation: lower-case, detach full stops, split on whitespace."""
    return text.lower().replace(".", " .").split()


def bleu4(reference: str, prediction: str) -> float:
    from nltk.translate.bleu_score import sentence_bleu

    with warnings.catch_warnings():  # nltk warns on zero n-gram overlap; the score is 0
        warnings.simplefilter("ignore")
        return float(sentence_bleu([bleu_tokens(reference)], bleu_tokens(prediction),
                                   weights=(0.25, 0.25, 0.25, 0.25)))


# ------------------------------------------------------------------ ROUGE-L as `rouge` 1.0.1


def _sentences(text: str) -> list[str]:
    return [" ".join(part.split()) for part in text.split(".") if len(part) > 0]


def _lcs_words(x: list[str], y: list[str]) -> set[str]:
    """The set of words of the LCS of x and y, back-tracked with ``rouge``'s tie-breaking."""
    n, m = len(x), len(y)
    table = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(1, n + 1):
        xi, row, prev = x[i - 1], table[i], table[i - 1]
        for j in range(1, m + 1):
            row[j] = prev[j - 1] + 1 if xi == y[j - 1] else max(prev[j], row[j - 1])
    words: set[str] = set()
    i, j = n, m
    while i > 0 and j > 0:
        if x[i - 1] == y[j - 1]:
            words.add(x[i - 1])
            i, j = i - 1, j - 1
        elif table[i - 1][j] > table[i][j - 1]:
            i -= 1
        else:
            j -= 1
    return words


def rouge_l(reference: str, prediction: str) -> float:
    """``Rouge().get_scores(prediction.lower(), reference.lower())[0]["rouge-l"]["f"]``."""
    hyp = _sentences(prediction.lower())
    ref = _sentences(reference.lower())
    if not hyp or not ref:
        return 0.0  # the package raises "Hypothesis/Reference is empty"; the scorer gives 0
    ref_words = {w for s in ref for w in s.split(" ")}
    hyp_words = {w for s in hyp for w in s.split(" ")}
    union: set[str] = set()
    for ref_sentence in ref:
        ref_tokens = ref_sentence.split(" ")
        for hyp_sentence in hyp:
            union |= _lcs_words(ref_tokens, hyp_sentence.split(" "))
    recall = len(union) / len(ref_words)
    precision = len(union) / len(hyp_words)
    return 2.0 * ((precision * recall) / (precision + recall + 1e-8))


def exact_match(reference: str, prediction: str) -> float:
    return float(prediction.strip().lower() == reference.strip().lower())


def token_f1(reference: str, prediction: str) -> float:
    pred, ref = set(prediction.lower().split()), set(reference.lower().split())
    if not pred or not ref:
        return 0.0
    common = pred & ref
    precision, recall = len(common) / len(pred), len(common) / len(ref)
    if precision + recall == 0:
        return 0.0
    return 2 * precision * recall / (precision + recall)


def _text_metric(name: str, fn) -> Metric:
    def score(sample: Sample, response: Response, parsed: Any) -> float:
        return fn(str(sample.target), _prediction(response, parsed))

    return Metric(name, per_sample=score)


METRICS.register("pmc_mi_bleu4", lambda: _text_metric("pmc_mi_bleu4", bleu4))
METRICS.register("pmc_mi_rouge_l", lambda: _text_metric("pmc_mi_rouge_l", rouge_l))
METRICS.register("pmc_mi_exact_match", lambda: _text_metric("pmc_mi_exact_match", exact_match))
METRICS.register("pmc_mi_token_f1", lambda: _text_metric("pmc_mi_token_f1", token_f1))


# ------------------------------------------------------------------ official multiple choice


def official_options(question: str) -> list[str]:
    """``parse_options_from_prompt``: lower-cased option texts, line-based, then inline."""
    opts: list[str] = []
    buf, letter = "", None

    def flush() -> None:
        nonlocal buf, letter
        if letter is not None:
            cleaned = re.sub(r"^[A-F]\s*[\.\):\-]\s*", "", buf.strip(), flags=re.I)
            if cleaned:
                opts.append(cleaned.strip().lower())
        buf, letter = "", None

    for line in re.split(r"\n+", question or ""):
        match = re.match(r"^\s*([A-F])\s*[\.\):\-]\s*(.*)", line, flags=re.I)
        if match:
            flush()
            letter, buf = match.group(1).upper(), match.group(2)
        elif letter is not None:
            buf = (buf + " " + line.strip()).strip()
    flush()
    if opts:
        return opts
    parts = re.split(r"(?<![A-Za-z])([A-F])\s*[\.\):\-]\s*", question or "")
    return [parts[i + 1].strip().lower() for i in range(1, len(parts), 2) if i + 1 < len(parts)]


def _after_answer_cue(response: str) -> str:
    """``parse_response``: the text after the last answer cue (response already lower-case)."""
    def extract(text: str) -> str:
        m = re.search(r"<answer>(.*?)</answer>", text, flags=re.S | re.I)
        if m:
            return m.group(1)
        m = re.search(r"answer\s*[:：]\s*(.*)", text, flags=re.I)
        return m.group(1) if m else text

    if "boxed" in response or "<answer>" in response:
        response = extract(response)
    for cue in ("**answer**:", "**answer**", "*answer*:", "**answer:**", "answer is", "answer:",
                "答案:", "final answer", "final answer is"):
        if cue in response:
            response = response.split(cue)[-1]
    return response


def judge_multi_choice(choices: Sequence[str], answer: str, response: str) -> bool:
    """The official ``judge_multi_choice`` (choices without letters, answer a letter)."""
    letters = [chr(ord("a") + i) for i in range(len(choices))]
    response = response.lower()
    if response.split("\n\n")[0] in letters:
        response = response.split("\n\n")[0]
    elif response.split("\n\n")[-1].split(".")[0] in letters:
        response = response.split("\n\n")[-1].split(".")[0]
    response = _after_answer_cue(response)
    choices = [c.lower() for c in choices]
    response = response.strip().lower().replace("\n", "")
    split_response = response.split(".")[0].split(":")[-1]
    answer = answer.strip().lower()
    if split_response == answer:
        return True
    if split_response in letters:
        return choices[ord(split_response) - ord("a")] == answer
    if split_response in choices:
        return answer in letters and split_response == choices[ord(answer) - ord("a")]
    best, best_ratio = 0, 0.0
    for i, choice in enumerate(choices):
        ratio = difflib.SequenceMatcher(None, choice, response).ratio()
        if ratio > best_ratio:
            best, best_ratio = i, ratio
    return letters[best] == answer or choices[best] == answer


@METRICS.register("pmc_mi_choice_official")
def pmc_mi_choice_official() -> Metric:
    """1 when the official judge accepts the response (0 when no options parse, as upstream)."""

    def score(sample: Sample, response: Response, parsed: Any) -> float:
        choices = official_options(sample.question)
        if not choices:
            return 0.0
        return float(judge_multi_choice(choices, str(sample.target),
                                        _prediction(response, parsed)))

    return Metric("pmc_mi_choice_official", per_sample=score)


_MC_LETTERS = ("A", "B", "C", "D", "E", "F")


@METRICS.register("pmc_mi_choice_macro_f1")
def pmc_mi_choice_macro_f1() -> Metric:
    """Corpus macro-F1 over items answered with a bare letter (``calculate_f1.py``)."""

    def corpus(records: Sequence[SampleResult]) -> float:
        from sklearn.metrics import precision_recall_fscore_support

        pairs = [(str(r.target).strip(), r.response.strip()) for r in records
                 if isinstance(r.response, str) and r.response.strip() in _MC_LETTERS
                 and str(r.target).strip() in _MC_LETTERS]
        if not pairs:
            return float("nan")
        y_true, y_pred = zip(*pairs)
        labels = sorted(set(y_true) | set(y_pred), key=_MC_LETTERS.index)
        return float(precision_recall_fscore_support(y_true, y_pred, labels=labels,
                                                     average="macro", zero_division=0)[2])

    return Metric("pmc_mi_choice_macro_f1", corpus=corpus)

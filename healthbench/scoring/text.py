"""Free-text metrics: BLEU@1–4, ROUGE-L, CIDEr-D, METEOR and token precision/recall/F1.

Own implementations of the reference formulas, tested against nltk and pycocoevalcap on the
same (random) inputs (tests/test_text_metrics.py). Two BLEU conventions exist and differ on short
or non-overlapping answers, so the choice is explicit (``style``):

* ``nltk``: ``nltk.translate.bleu_score.corpus_bleu``/``sentence_bleu``; each sentence adds at
  least 1 to every n-gram denominator; no smoothing (``none``) gives 0 when an order has no match
  (nltk returns ~1e-77 with a warning); ``method1``–``method3`` are nltk's smoothing functions.
* ``coco``: pycocoevalcap ``Bleu`` (reference length "closest"); its fixed 1e-15/1e-9 epsilons
  make a missing 4-gram give a small non-zero score, as in published captioning numbers.

Tokenisers (``tokenizer``): ``treebank`` (default; pure Python, an approximation of the COCO PTB
tokeniser: lower-cased, punctuation removed), ``ptb`` (the COCO Stanford PTB tokeniser; needs
Java, corpus metrics only, run once per batch and cached), ``pmc`` (PMC-MI-Bench's
``lower().replace(".", " .").split()``), ``lower`` and ``whitespace``. SPICE is not offered (its
models are downloaded at run time). Nothing is downloaded.
"""
from __future__ import annotations

import math
from collections import Counter
from typing import Any, Callable, Sequence

from healthbench.core.catalog import METRICS
from healthbench.scoring.base import UNPARSED, Metric
from healthbench.scoring.text_backends import meteor_corpus, ptb_tokenize, treebank_tokenize
from healthbench.core.types import Response, Sample, SampleResult

Tokens = list[str]
BLEU_STYLES = ("nltk", "coco")
SMOOTHINGS = ("none", "method1", "method2", "method3")

_TOKENIZERS: dict[str, Callable[[str], Tokens]] = {
    "whitespace": str.split,
    "lower": lambda s: s.lower().split(),
    "pmc": lambda s: s.lower().replace(".", " .").split(),
    "treebank": treebank_tokenize,
}
TOKENIZERS = tuple(sorted([*_TOKENIZERS, "ptb"]))


def tokenize(texts: Sequence[str], tokenizer: str = "treebank") -> list[Tokens]:
    """Token lists for ``texts``; ``ptb`` runs Java once for the whole batch."""
    if tokenizer == "ptb":
        return ptb_tokenize(texts)
    try:
        return [_TOKENIZERS[tokenizer](t) for t in texts]
    except KeyError:
        raise ValueError(f"tokenizer must be one of {TOKENIZERS}, got {tokenizer!r}") from None


# ---- BLEU ------------------------------------------------------------------------------------

def _ngrams(tokens: Sequence[str], n: int) -> Counter:
    return Counter(tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1))


def bleu_stats(hyp: Sequence[str], refs: Sequence[Sequence[str]],
               max_n: int = 4) -> tuple[int, int, list[int], list[int]]:
    """(hypothesis length, closest reference length, clipped matches, n-gram counts) per order.

    The closest reference length breaks ties towards the shorter one (nltk and COCO agree).
    """
    ref_len = min((len(r) for r in refs), key=lambda n: (abs(n - len(hyp)), n))
    matches, totals = [], []
    for n in range(1, max_n + 1):
        counts = _ngrams(hyp, n)
        best: Counter = Counter()
        for ref in refs:
            best |= _ngrams(ref, n)
        matches.append(sum(min(c, best[g]) for g, c in counts.items()))
        totals.append(max(0, len(hyp) - n + 1))
    return len(hyp), ref_len, matches, totals


def _smoothed(num: list[float], den: list[float], smoothing: str) -> list[float]:
    if smoothing == "method1":  # add epsilon 0.1 to zero counts
        return [(m if m else 0.1) / d for m, d in zip(num, den)]
    if smoothing == "method2":  # add one to orders ≥ 2 (Lin & Och 2004)
        return [num[0] / den[0]] + [(m + 1) / (d + 1) for m, d in zip(num[1:], den[1:])]
    if smoothing == "method3":  # NIST geometric decay
        out, k = [], 1
        for m, d in zip(num, den):
            if m:
                out.append(m / d)
            else:
                k *= 2
                out.append(1 / (k * d))
        return out
    return [m / d for m, d in zip(num, den)]


def bleu_from_stats(stats: Sequence[tuple[int, int, list[int], list[int]]], n: int = 4,
                    style: str = "nltk", smoothing: str = "none") -> float:
    """Corpus BLEU@n (uniform weights) from per-sentence ``bleu_stats``; one entry = sentence."""
    c = sum(s[0] for s in stats)
    r = sum(s[1] for s in stats)
    if style == "coco":
        num = [sum(s[2][k] for s in stats) for k in range(n)]
        den = [sum(s[3][k] for s in stats) for k in range(n)]
        score = math.prod((m + 1e-15) / (d + 1e-9) for m, d in zip(num, den)) ** (1.0 / n)
        ratio = (c + 1e-15) / (r + 1e-9)
        return score * math.exp(1 - 1 / ratio) if ratio < 1 else score
    num = [sum(s[2][k] for s in stats) for k in range(n)]
    den = [sum(max(1, s[3][k]) for s in stats) for k in range(n)]
    if not stats or num[0] == 0:
        return 0.0
    precisions = _smoothed(num, den, smoothing)
    if min(precisions) <= 0:
        return 0.0
    bp = 1.0 if c > r else math.exp(1 - r / c)
    return bp * math.exp(math.fsum(math.log(p) / n for p in precisions))


def corpus_bleu(hyps: Sequence[Tokens], refs: Sequence[Sequence[Tokens]], n: int = 4,
                style: str = "nltk", smoothing: str = "none") -> float:
    """Corpus BLEU@n over token lists; ``refs[i]`` holds the references of ``hyps[i]``."""
    return bleu_from_stats([bleu_stats(h, r, n) for h, r in zip(hyps, refs)], n, style, smoothing)


def sentence_bleu(hyp: Tokens, refs: Sequence[Tokens], n: int = 4, style: str = "nltk",
                  smoothing: str = "none") -> float:
    """Sentence BLEU@n (nltk ``sentence_bleu`` / COCO's per-image score)."""
    return bleu_from_stats([bleu_stats(hyp, refs, n)], n, style, smoothing)


# ---- ROUGE-L, CIDEr-D, token overlap ----------------------------------------------------------

def _lcs(a: Sequence[str], b: Sequence[str]) -> int:
    row = [0] * (len(b) + 1)
    for x in a:
        prev_diag = 0
        for j, y in enumerate(b, start=1):
            keep = row[j]
            row[j] = prev_diag + 1 if x == y else max(row[j], row[j - 1])
            prev_diag = keep
    return row[-1]


def rouge_l(hyp: Tokens, refs: Sequence[Tokens], beta: float = 1.2) -> float:
    """ROUGE-L F as pycocoevalcap computes it: max precision and max recall over references
    (taken separately), combined with β = 1.2. An empty hypothesis scores 0."""
    if not hyp:
        return 0.0
    lcs = [_lcs(r, hyp) for r in refs]
    prec = max(m / len(hyp) for m in lcs)
    rec = max(m / max(len(r), 1) for m, r in zip(lcs, refs))
    if prec == 0 or rec == 0:
        return 0.0
    return (1 + beta ** 2) * prec * rec / (rec + beta ** 2 * prec)


def cider_d(hyps: Sequence[Tokens], refs: Sequence[Sequence[Tokens]], n: int = 4,
            sigma: float = 6.0) -> tuple[float, list[float]]:
    """(corpus CIDEr-D, per-item scores) as pycocoevalcap ``Cider`` computes them.

    Document frequencies come from the references of *this* set (so the value depends on the
    set, and a bootstrap resample re-derives them). As in the original, the length penalty uses
    the number of bigrams as "length".
    """
    ref_grams = [[_all_ngrams(r, n) for r in rs] for rs in refs]
    df: Counter = Counter()
    for grams in ref_grams:
        df.update({g for counts in grams for g in counts})
    log_n = math.log(float(len(hyps))) if hyps else 0.0

    def vector(counts: Counter) -> tuple[list[dict], list[float], int]:
        vec: list[dict] = [{} for _ in range(n)]
        norm = [0.0] * n
        for g, tf in counts.items():
            vec[len(g) - 1][g] = tf * (log_n - math.log(max(1.0, df.get(g, 0.0))))
            norm[len(g) - 1] += vec[len(g) - 1][g] ** 2
        length = sum(tf for g, tf in counts.items() if len(g) == 2)
        return vec, [math.sqrt(x) for x in norm], length

    scores = []
    for hyp, grams in zip(hyps, ref_grams):
        h_vec, h_norm, h_len = vector(_all_ngrams(hyp, n))
        total = [0.0] * n
        for counts in grams:
            r_vec, r_norm, r_len = vector(counts)
            penalty = math.exp(-((h_len - r_len) ** 2) / (2 * sigma ** 2))
            for k in range(n):
                val = sum(min(w, r_vec[k].get(g, 0.0)) * r_vec[k].get(g, 0.0)
                          for g, w in h_vec[k].items())
                if h_norm[k] and r_norm[k]:
                    val /= h_norm[k] * r_norm[k]
                total[k] += val * penalty
        scores.append(sum(total) / n / len(grams) * 10.0)
    return (sum(scores) / len(scores) if scores else float("nan")), scores


def _all_ngrams(tokens: Sequence[str], n: int) -> Counter:
    out: Counter = Counter()
    for k in range(1, n + 1):
        out.update(_ngrams(tokens, k))
    return out


def token_prf(hyp: Tokens, ref: Tokens, mode: str = "set") -> tuple[float, float, float]:
    """(precision, recall, F1) of token overlap; ``set`` as MedEvalKit/PMC-MI-Bench, ``bag``
    (multiset, SQuAD-style). Empty hypothesis or reference → zeros."""
    if mode not in ("set", "bag"):
        raise ValueError(f"mode must be 'set' or 'bag', got {mode!r}")
    if not hyp or not ref:
        return 0.0, 0.0, 0.0
    if mode == "set":
        common, n_hyp, n_ref = len(set(hyp) & set(ref)), len(set(hyp)), len(set(ref))
    else:
        common, n_hyp, n_ref = sum((Counter(hyp) & Counter(ref)).values()), len(hyp), len(ref)
    p, r = common / n_hyp, common / n_ref
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


# ---- registered metrics -----------------------------------------------------------------------

def references(target: Any, where: str) -> list[str]:
    """A target as a list of reference strings (one string or a list of them)."""
    if isinstance(target, str):
        return [target]
    if isinstance(target, (list, tuple)) and target and all(isinstance(t, str) for t in target):
        return list(target)
    raise ValueError(f"{where}: text metrics need a reference string or list of strings, "
                     f"got {type(target).__name__}")


def _hyp(parsed: Any) -> str:
    return "" if parsed is UNPARSED else str(parsed)


def _check(tokenizer: str, per_sample: bool) -> None:
    if tokenizer not in TOKENIZERS:
        raise ValueError(f"tokenizer must be one of {TOKENIZERS}, got {tokenizer!r}")
    if per_sample and tokenizer == "ptb":
        raise ValueError("tokenizer 'ptb' starts Java per call; use it with corpus metrics "
                         "(bleu, cider, meteor) or use 'treebank' for per-sample metrics")


def _corpus_tokens(records: Sequence[SampleResult],
                   tokenizer: str) -> tuple[list[Tokens], list[list[Tokens]]]:
    hyps = [_hyp(r.parsed) for r in records]
    refs = [references(r.target, f"sample {r.id!r}") for r in records]
    flat = tokenize(hyps + [x for rs in refs for x in rs], tokenizer)
    hyp_tok, rest, ref_tok = flat[:len(hyps)], flat[len(hyps):], []
    for rs in refs:
        ref_tok.append(rest[:len(rs)])
        rest = rest[len(rs):]
    return hyp_tok, ref_tok


def _check_bleu(n: int, style: str, smoothing: str, tokenizer: str, per_sample: bool) -> None:
    if not isinstance(n, int) or not 1 <= n <= 4:
        raise ValueError(f"n must be 1, 2, 3 or 4, got {n!r}")
    if style not in BLEU_STYLES:
        raise ValueError(f"style must be one of {BLEU_STYLES}, got {style!r}")
    if smoothing not in SMOOTHINGS:
        raise ValueError(f"smoothing must be one of {SMOOTHINGS}, got {smoothing!r}")
    if style == "coco" and smoothing != "none":
        raise ValueError("style 'coco' has its own fixed epsilons; smoothing must be 'none'")
    _check(tokenizer, per_sample)


@METRICS.register("bleu")
def bleu_metric(n: int = 4, style: str = "nltk", smoothing: str = "none",
                tokenizer: str = "treebank", name: str | None = None) -> Metric:
    """Corpus BLEU@n over the task's samples (name ``bleu<n>``, ``coco_bleu<n>`` for COCO)."""
    _check_bleu(n, style, smoothing, tokenizer, per_sample=False)

    def corpus(records: Sequence[SampleResult]) -> float:
        hyps, refs = _corpus_tokens(records, tokenizer)
        return corpus_bleu(hyps, refs, n, style, smoothing)

    default = f"bleu{n}" if style == "nltk" else f"coco_bleu{n}"
    return Metric(name or default, corpus=corpus)


def _per_sample(tokenizer: str, fn: Callable[[Tokens, list[Tokens]], float]):
    def score(sample: Sample, response: Response, parsed: Any) -> float:
        refs = references(sample.target, f"sample {sample.id!r}")
        toks = tokenize([_hyp(parsed), *refs], tokenizer)
        return float(fn(toks[0], toks[1:]))
    return score


@METRICS.register("sentence_bleu")
def sentence_bleu_metric(n: int = 4, style: str = "nltk", smoothing: str = "none",
                         tokenizer: str = "treebank", name: str | None = None) -> Metric:
    """Per-sample BLEU@n, averaged (PMC-MI-Bench: ``tokenizer: pmc``, no smoothing)."""
    _check_bleu(n, style, smoothing, tokenizer, per_sample=True)
    fn = _per_sample(tokenizer, lambda h, r: sentence_bleu(h, r, n, style, smoothing))
    return Metric(name or f"sentence_bleu{n}", per_sample=fn)


@METRICS.register("rouge_l")
def rouge_l_metric(tokenizer: str = "treebank", beta: float = 1.2,
                   name: str | None = None) -> Metric:
    """Per-sample ROUGE-L F (pycocoevalcap formula), averaged as COCO does."""
    _check(tokenizer, per_sample=True)
    return Metric(name or "rouge_l",
                  per_sample=_per_sample(tokenizer, lambda h, r: rouge_l(h, r, beta)))


@METRICS.register("cider")
def cider_metric(tokenizer: str = "treebank", n: int = 4, sigma: float = 6.0,
                 name: str | None = None) -> Metric:
    """Corpus CIDEr-D (pycocoevalcap ``Cider``); IDF from this set's references."""
    _check(tokenizer, per_sample=False)

    def corpus(records: Sequence[SampleResult]) -> float:
        hyps, refs = _corpus_tokens(records, tokenizer)
        return cider_d(hyps, refs, n, sigma)[0]

    return Metric(name or "cider", corpus=corpus, percent=False)  # CIDEr-D ranges 0..10


@METRICS.register("meteor")
def meteor_metric(tokenizer: str = "treebank", name: str | None = None) -> Metric:
    """Corpus METEOR 1.5 through pycocoevalcap's jar (needs Java; without it the value is NaN,
    reported as null, with a warning saying why)."""
    _check(tokenizer, per_sample=False)

    def corpus(records: Sequence[SampleResult]) -> float:
        hyps, refs = _corpus_tokens(records, tokenizer)
        return meteor_corpus([" ".join(h) for h in hyps],
                             [[" ".join(r) for r in rs] for rs in refs])

    return Metric(name or "meteor", corpus=corpus)


def _token_metric(part: int, label: str):
    def factory(tokenizer: str = "lower", mode: str = "set", name: str | None = None) -> Metric:
        _check(tokenizer, per_sample=True)
        token_prf([], [], mode)  # validates mode now, not on the first sample
        fn = _per_sample(tokenizer, lambda h, r: max(token_prf(h, x, mode)[part] for x in r))
        return Metric(name or f"token_{label}", per_sample=fn)
    factory.__doc__ = (f"Per-sample token {label} (``set`` overlap of lower-cased whitespace "
                       f"tokens by default, as MedEvalKit); best over references.")
    return factory


METRICS.register("token_precision", _token_metric(0, "precision"))
METRICS.register("token_recall", _token_metric(1, "recall"))
METRICS.register("token_f1", _token_metric(2, "f1"))

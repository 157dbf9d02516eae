"""The metrics as plain functions on arrays and strings, for people who script.

One argument order everywhere: the **reference first**, then what the model produced, as
scikit-learn (``y_true, y_pred``) and scikit-image (``image_true, image_test``) do. These are
the functions the task metrics use, so a number computed here equals the one in a run's
results.json for the same inputs. Examples: docs/api.md.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

__all__ = ["accuracy", "bleu", "cider", "label_f1", "label_precision", "label_recall", "mse",
           "psnr", "rouge_l", "ssim"]


# ---- images ------------------------------------------------------------------------------------

def ssim(reference: Any, generated: Any, *, data_range: float | Sequence[float]) -> float:
    """SSIM (Wang et al. 2004; Gaussian window σ=1.5, as ``skimage.metrics.structural_similarity``
    with ``gaussian_weights=True, use_sample_covariance=False``). ``data_range`` is the value
    range R (never guessed from the dtype), or ``[lo, hi]`` to clip both images first."""
    from healthbench.scoring.image import ssim as _ssim

    return _ssim(generated, reference, data_range)


def psnr(reference: Any, generated: Any, *, data_range: float | Sequence[float]) -> float:
    """Peak signal-to-noise ratio in dB, 10·log10(R²/MSE); ``inf`` for identical images."""
    from healthbench.scoring.image import psnr as _psnr

    return _psnr(generated, reference, data_range)


def mse(reference: Any, generated: Any, *,
        data_range: float | Sequence[float] | None = None) -> float:
    """Mean squared error in the images' own units; with ``data_range=[lo, hi]`` both images
    are clipped first (the SynthRAD convention for CT)."""
    from healthbench.scoring.image import mse as _mse

    if data_range is None:  # no clipping and no range check: the plain mean squared error
        a, b = np.asarray(reference, np.float64), np.asarray(generated, np.float64)
        if a.shape != b.shape:
            raise ValueError(f"image shapes differ: reference {a.shape} vs generated {b.shape}")
        return float(np.mean((a - b) ** 2))
    return _mse(generated, reference, data_range)


# ---- text --------------------------------------------------------------------------------------

def _token_lists(references: Sequence[str | Sequence[str]], hypotheses: Sequence[str],
                 tokenizer: str) -> tuple[list, list]:
    from healthbench.scoring.text import tokenize

    if len(references) != len(hypotheses):
        raise ValueError(f"{len(references)} references for {len(hypotheses)} hypotheses")
    ref_sets = [[r] if isinstance(r, str) else list(r) for r in references]
    flat = tokenize([r for refs in ref_sets for r in refs], tokenizer)
    out, i = [], 0
    for refs in ref_sets:
        out.append(flat[i:i + len(refs)])
        i += len(refs)
    return out, tokenize(list(hypotheses), tokenizer)


def bleu(references: Sequence[str | Sequence[str]], hypotheses: Sequence[str], *, n: int = 4,
         tokenizer: str = "treebank", style: str = "nltk", smoothing: str = "none") -> float:
    """Corpus BLEU@n in [0, 1]. ``references[i]`` is one string or a list of strings for
    ``hypotheses[i]``. ``tokenizer``: ``treebank`` (lower-cases and drops punctuation),
    ``whitespace`` (the raw strings split on spaces, as pycocoevalcap on pre-tokenised text),
    ``ptb`` (Stanford PTB via Java, as pycocoevalcap's own tokenizer), ``lower``.
    ``style``: ``nltk`` (``corpus_bleu``) or ``coco`` (pycocoevalcap's ``Bleu``)."""
    from healthbench.scoring.text import corpus_bleu

    refs, hyps = _token_lists(references, hypotheses, tokenizer)
    return corpus_bleu(hyps, refs, n, style, smoothing)


def rouge_l(references: Sequence[str | Sequence[str]], hypotheses: Sequence[str], *,
            tokenizer: str = "treebank", beta: float = 1.2) -> float:
    """Mean ROUGE-L F over the hypotheses, as pycocoevalcap's ``Rouge`` (β = 1.2)."""
    from healthbench.scoring.text import rouge_l as _rouge_l

    refs, hyps = _token_lists(references, hypotheses, tokenizer)
    return float(np.mean([_rouge_l(h, r, beta) for h, r in zip(hyps, refs)]))


def cider(references: Sequence[str | Sequence[str]], hypotheses: Sequence[str], *,
          tokenizer: str = "treebank") -> float:
    """Corpus CIDEr-D as pycocoevalcap's ``Cider`` (document frequencies from this set)."""
    from healthbench.scoring.text import cider_d

    refs, hyps = _token_lists(references, hypotheses, tokenizer)
    return cider_d(hyps, refs)[0]


# ---- labels and answers ------------------------------------------------------------------------

def _prf(y_true: Any, y_pred: Any, average: str | None, zero_division: float) -> tuple:
    from healthbench.scoring.labels import prf

    t, p = np.asarray(y_true), np.asarray(y_pred)
    if t.shape != p.shape:
        raise ValueError(f"label shapes differ: y_true {t.shape} vs y_pred {p.shape}")
    return prf(t, p, average, zero_division)


def label_f1(y_true: Any, y_pred: Any, *, average: str | None = "micro",
             zero_division: float = 0.0) -> Any:
    """F1 of binary label vectors (n_samples × n_labels, or n_samples), with scikit-learn's
    ``f1_score`` semantics for ``average`` (micro, macro, weighted, samples, binary, None)."""
    return _prf(y_true, y_pred, average, zero_division)[2]


def label_precision(y_true: Any, y_pred: Any, *, average: str | None = "micro",
                    zero_division: float = 0.0) -> Any:
    """Precision with scikit-learn's ``precision_score`` semantics (see ``label_f1``)."""
    return _prf(y_true, y_pred, average, zero_division)[0]


def label_recall(y_true: Any, y_pred: Any, *, average: str | None = "micro",
                 zero_division: float = 0.0) -> Any:
    """Recall with scikit-learn's ``recall_score`` semantics (see ``label_f1``)."""
    return _prf(y_true, y_pred, average, zero_division)[1]


def accuracy(targets: Sequence[Any], predictions: Sequence[Any | None]) -> float:
    """The share of predictions equal to their target, compared as the ``accuracy`` task metric
    compares a parsed answer: surrounding whitespace and letter case ignored. ``None`` (an
    answer that could not be parsed) counts as wrong."""
    if len(targets) != len(predictions):
        raise ValueError(f"{len(targets)} targets for {len(predictions)} predictions")
    if not targets:
        raise ValueError("accuracy of no samples is undefined")
    hits = [p is not None and str(p).strip().upper() == str(t).strip().upper()
            for t, p in zip(targets, predictions)]
    return float(np.mean(hits))

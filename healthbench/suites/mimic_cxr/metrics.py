"""CheXpert-label scoring of generated findings: the ``chexpert_labels`` extractor and F1 metrics.

Protocol (UniX, ZrH42/UniX ``eval/und_metrics/``; LLaVA-Rad, microsoft/LLaVA-Rad): the model
writes findings; a labeler turns them into 14 codes (``parsed``); the reference codes
(``target["labels"]``) come from the same labeler on the reference findings, or from
``mimic-cxr-2.0.0-chexpert.csv`` (loader option). Codes are binarised with one uncertainty
convention, identically on both sides, and F1 is computed over all reports:

* micro-F1 = 2·TP / (2·TP + FP + FN) pooled over every (report, label) cell;
* macro-F1 = mean over labels of the per-label F1, a label with no positive in either the
  reference or the prediction scoring 0 (sklearn ``zero_division=0``, as LLaVA-Rad's
  ``classification_report`` call).

Eight registered metrics: ``chexpert_{micro,macro}_f1_{14,5}_{uneg,upos}`` (14 labels or the 5
competition labels). The suffix names the uncertainty convention itself, never a scorer's mode
name, because the same mode name means opposite things: ``_uneg`` counts uncertain findings as
negative (LLaVA-Rad's ``"rrg"``, UniX ``== 1``), ``_upos`` counts them as positive
(LLaVA-Rad's ``"rrg+"``, UniX ``(x == 1) | (x == 3)``, and f1chexbert's ``"rrg"``). They are
corpus metrics: they read the records' ``parsed`` and ``target`` only, so results rebuild from
samples.jsonl.

Under a task ``protocol:`` (protocols.py) the extractor prepares text as that protocol's scorer
does, a metric whose convention the protocol does not publish is refused (f1chexbert has no
uncertain-as-negative mode), and under ``llava-rad`` each metric's results.json entry also holds
``bootstrap_median``: LLaVA-Rad's published figure, the median of 500 ``scipy.stats.bootstrap``
resamples (percentile method, ``random_state=3``), with its 95% interval, resample count and seed,
beside healthbench's own point estimate and interval.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from healthbench.core.catalog import EXTRACTORS, METRICS
from healthbench.suites.mimic_cxr.labels import (LABEL_SETS, binarize, check_labels, get_labeler,
                                           truncate)
from healthbench.suites.mimic_cxr.protocols import check_cut, get_protocol, prepare_text
from healthbench.scoring.base import Metric
from healthbench.core.types import Sample, SampleResult


@EXTRACTORS.register("chexpert_labels")
def chexpert_labels(text: str, sample: Sample, labeler: str = "chexpert_rules",
                    labeler_args: Mapping[str, Any] | None = None,
                    max_chars: int | None = None,
                    protocol: str | None = None) -> dict[str, int]:
    """The 14 CheXpert codes of a generated report (mapping in CHEXPERT_LABELS order).

    With a ``protocol`` the text is prepared as that protocol's scorer prepares it (UniX: strip,
    512 characters); an explicit ``max_chars`` must then agree with the protocol. An empty
    answer is labelled like any text (all blank with the rule labeler); a labeler that fails
    raises, so the sample becomes an error record rather than a silent zero.
    """
    text = text if isinstance(text, str) else ""
    if protocol is not None:
        check_cut(protocol, max_chars)
        text = prepare_text(text, protocol)
    else:
        text = truncate(text, max_chars)
    return get_labeler(labeler, labeler_args).label([text])[0]


def record_codes(record: SampleResult) -> tuple[dict[str, int], dict[str, int]] | None:
    """(reference codes, predicted codes) of one record, or None when it carries no labels."""
    target = record.target if isinstance(record.target, Mapping) else {}
    if not isinstance(record.parsed, Mapping) or not isinstance(target.get("labels"), Mapping):
        return None
    return (check_labels(target["labels"], f"sample {record.id} target"),
            check_labels(record.parsed, f"sample {record.id} parsed"))


def label_matrices(records: Sequence[SampleResult], labels: Sequence[str],
                   uncertain: str, memo: dict[int, Any] | None = None
                   ) -> tuple[np.ndarray, np.ndarray]:
    """(y_true, y_pred), each N×len(labels) of 0/1, from the records that carry labels.

    ``memo`` (optional) keeps each record's binarised rows, so bootstrap resamples of the same
    records are not re-validated every time.
    """
    true_rows, pred_rows = [], []
    for record in records:
        key = id(record)
        if memo is not None and key in memo and memo[key][0] is record:
            rows = memo[key][1]
        else:
            codes = record_codes(record)
            rows = None if codes is None else (
                [binarize(codes[0][n], uncertain) for n in labels],
                [binarize(codes[1][n], uncertain) for n in labels])
            if memo is not None:
                memo[key] = (record, rows)  # holding the record keeps its id unique
        if rows is not None:
            true_rows.append(rows[0])
            pred_rows.append(rows[1])
    shape = (len(true_rows), len(labels))
    return (np.asarray(true_rows, dtype=np.int64).reshape(shape),
            np.asarray(pred_rows, dtype=np.int64).reshape(shape))


def f1_scores(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[float, float]:
    """(micro-F1, macro-F1) with sklearn's ``zero_division=0`` semantics."""
    tp = (y_true & y_pred).sum(axis=0)
    fp = ((1 - y_true) & y_pred).sum(axis=0)
    fn = (y_true & (1 - y_pred)).sum(axis=0)
    denom = 2 * tp.sum() + fp.sum() + fn.sum()
    micro = float(2 * tp.sum() / denom) if denom else 0.0
    per_label = np.divide(2 * tp, 2 * tp + fp + fn, out=np.zeros(len(tp), dtype=np.float64),
                          where=(2 * tp + fp + fn) > 0)
    macro = float(per_label.mean()) if len(per_label) else 0.0
    return micro, macro


def bootstrap_median(y_true: np.ndarray, y_pred: np.ndarray, average: str, resamples: int,
                     random_state: int) -> dict[str, Any]:
    """LLaVA-Rad's published aggregate (``rrg_eval/chexbert.py``
    ``bootstrap_confidence_interval``): ``scipy.stats.bootstrap`` over report indices,
    percentile method, 95%, ``random_state`` seed; the figure is the median of the resampled
    F1 values. None values where fewer than two reports leave nothing to resample."""
    out: dict[str, Any] = {"median": None, "ci": [None, None], "resamples": resamples,
                           "random_state": random_state, "method": "percentile"}
    if y_true.shape[0] < 2:
        return out
    from scipy.stats import bootstrap

    which = 0 if average == "micro" else 1
    result = bootstrap((np.arange(y_true.shape[0]),),
                       lambda idx: f1_scores(y_true[idx], y_pred[idx])[which],
                       method="percentile", paired=False, vectorized=False,
                       confidence_level=0.95, random_state=random_state, n_resamples=resamples)
    bounds = [float(v) for v in (result.confidence_interval.low, result.confidence_interval.high)]
    out["median"] = float(np.median(result.bootstrap_distribution))
    out["ci"] = [v if np.isfinite(v) else None for v in bounds]
    return out


def _f1_metric(name: str, average: str, label_set: str, uncertain: str,
               protocol: str | None = None) -> Metric:
    labels = LABEL_SETS[label_set]
    memo: dict[int, Any] = {}
    spec = get_protocol(protocol) if protocol is not None else None
    if spec is not None and uncertain not in spec.conventions:
        raise ValueError(f"protocol {protocol!r} publishes uncertain-as-"
                         f"{' and -as-'.join(spec.conventions)} only (f1chexbert's mode 'rrg' "
                         f"counts uncertain as positive); {name} counts it as {uncertain}")

    def corpus(records: Sequence[SampleResult]) -> float:
        y_true, y_pred = label_matrices(records, labels, uncertain, memo)
        if y_true.shape[0] == 0:
            return float("nan")
        micro, macro = f1_scores(y_true, y_pred)
        return micro if average == "micro" else macro

    extra = None
    if spec is not None and spec.bootstrap_median is not None:
        resamples, seed = spec.bootstrap_median

        def extra(records: Sequence[SampleResult]) -> dict[str, Any]:
            y_true, y_pred = label_matrices(records, labels, uncertain, memo)
            return {"bootstrap_median": bootstrap_median(y_true, y_pred, average, resamples,
                                                         seed)}

    return Metric(name, corpus=corpus, extra_summary=extra)


def _register(average: str, label_set: str, convention: str) -> None:
    name = f"chexpert_{average}_f1_{label_set}_u{convention[:3]}"
    uncertain = "positive" if convention == "positive" else "negative"
    METRICS.register(name, lambda protocol=None: _f1_metric(name, average, label_set, uncertain,
                                                            protocol))


for _average in ("micro", "macro"):
    for _set in ("14", "5"):
        for _convention in ("negative", "positive"):
            _register(_average, _set, _convention)

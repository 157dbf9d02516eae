"""The metric contract: a per-sample score and/or a corpus-level aggregate.

A metric is registered as a *factory* (YAML ``args`` become its keyword arguments) returning a
``Metric``. Per-sample metrics (accuracy, SSIM…) store one float per sample in samples.jsonl and
aggregate by the mean. Corpus metrics (BLEU, micro-F1…) recompute from the stored ``parsed`` and
``target`` fields of the sample records, so the results can always be rebuilt from samples.jsonl
alone, and bootstrap intervals resample samples, not scores.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

from healthbench.core.types import Response, Sample, SampleResult

#: What an extractor returns when it cannot find an answer; stored as JSON null.
UNPARSED = None

PerSample = Callable[[Sample, Response, Any], "float | None"]
Corpus = Callable[[Sequence[SampleResult]], float]
CorpusExtra = Callable[[Sequence[SampleResult]], "dict[str, Any]"]


@dataclass(frozen=True)
class Metric:
    """One named metric. At least one of ``per_sample`` and ``corpus`` is set.

    ``per_sample(sample, response, parsed)`` returns a float, or None where the metric does not
    apply to that sample (e.g. closed-question accuracy on an open question); None values are left
    out of the mean and out of the count ``n`` for that metric.
    """

    name: str
    per_sample: PerSample | None = None
    corpus: Corpus | None = None
    higher_is_better: bool = True
    #: A fraction in [0, 1], shown as % in tables (compare margins in points); False for
    #: metrics in their own units (PSNR dB, MSE, CIDEr).
    percent: bool = True
    #: Optional figures a named protocol publishes beside healthbench's value and interval
    #: (e.g. LLaVA-Rad's bootstrap median): a mapping merged into the metric's results.json
    #: entry, computed from the same records.
    extra_summary: CorpusExtra | None = None

    def __post_init__(self) -> None:
        if self.per_sample is None and self.corpus is None:
            raise ValueError(f"metric {self.name!r} needs per_sample or corpus")


def mean_of_scores(name: str, records: Sequence[SampleResult]) -> float:
    """Mean of a per-sample score over the records that have one (NaN when none do)."""
    values = [r.scores.get(name) for r in records]
    kept = [float(v) for v in values if v is not None]
    return sum(kept) / len(kept) if kept else float("nan")


def aggregate(metric: Metric, records: Sequence[SampleResult]) -> float:
    """The metric's value over a set of sample records."""
    if metric.corpus is not None:
        return metric.corpus(records)
    return mean_of_scores(metric.name, records)

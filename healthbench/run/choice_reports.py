"""What a run adds to multiple-choice tasks beyond their metrics: option-order robustness
(``--permute-options`` / task ``permutations:``) and calibration (likelihood-scored tasks).

Kept apart from ``evaluate`` so that the run loop only calls ``plan`` before the model runs and
``ChoicePlan.report`` after: re-asked orders are added as ordinary samples, and the task's own
metrics are computed on the benchmark's original order only, so a run with permutations ranks
with (and reads like) one without. The computations live in ``scoring.robustness`` and
``scoring.calibration``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from healthbench.core.types import Sample, SampleError, SampleResult
from healthbench.scoring.calibration import calibration_summary
from healthbench.run.sample_inputs import option_order_mode
from healthbench.scoring.robustness import expand, original_records, robustness_summary
from healthbench.taskconfig.prompts import render
from healthbench.taskconfig.schema import TaskConfig


@dataclass(frozen=True)
class ChoicePlan:
    task: TaskConfig
    permutations: str | int | None
    n_not_permutable: int = 0

    def report(self, records: Sequence[SampleResult],
               seed: int) -> tuple[list[SampleResult], dict[str, Any]]:
        """(records of the original order, extra keys for the task's results.json block)."""
        originals = original_records(records)
        extra: dict[str, Any] = {}
        if self.permutations is not None:
            extra["permutations"] = self.permutations
            extra["robustness"] = robustness_summary(records, self.task.group_by, seed,
                                                     self.permutations, self.n_not_permutable)
        if self.task.scorer == "loglikelihood":
            extra["calibration"] = calibration_summary(originals, self.task.group_by, seed)
        return originals, extra


def plan(task: TaskConfig, items: Sequence[Sample | SampleError], permute_options: Any,
         seed: int) -> tuple[list[Sample | SampleError], ChoicePlan]:
    """The task's items plus their re-asked option orders (``permute_options`` from the command
    line wins over the task's ``permutations:``), and the plan that reports on them."""
    mode = option_order_mode(task, permute_options)
    if mode is None:
        return list(items), ChoicePlan(task, None)

    def order_visible(original: Sample, permuted: Sample) -> bool:
        if task.scorer == "loglikelihood":
            return True  # the options are the scored continuations, in the order given
        try:
            return render(task.prompt, original) != render(task.prompt, permuted)
        except Exception:  # a prompt that fails is recorded when the sample runs
            return False

    expanded, skipped = expand(items, mode, seed, order_visible)
    return expanded, ChoicePlan(task, mode, skipped)

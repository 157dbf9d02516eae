"""``SampleScorer`` works out a task's extractor and metrics once and then scores every sample of
the task (100k for a full-size suite): scored in any order by one scorer, each sample must give
exactly the record that scoring it on its own (``score_sample``, a fresh scorer) gives."""
from __future__ import annotations

import random

import pytest

from healthbench.core.types import Response, Sample
from healthbench.run.evaluate import build_metrics
from healthbench.run.seeds import seeded_task
from healthbench.scoring.score import SampleScorer, score_sample
from healthbench.taskconfig.index import TaskIndex

OPTIONS = {"A": "Pneumonia", "B": "Pleural effusion", "C": "Edema", "D": "Normal"}
RESPONSES = ["B", " c ", "The answer is (D).", "Pleural effusion", "I cannot tell.", "A or B",
             "<answer>C</answer>", "", "yes", "no", "Edema is seen in both lungs."]


def _text_tasks() -> list:
    index = TaskIndex.build()
    return sorted((t for t in index.tasks.values()
                   if t.scorer != "loglikelihood" and t.output != "image"), key=lambda t: t.name)


def _cases(n: int) -> list[tuple[Sample, Response]]:
    rng = random.Random(7)
    out = []
    for i in range(n):
        closed = i % 3 != 0
        target = "ABCD"[i % 4] if closed else rng.choice(["yes", "no", "edema"])
        sample = Sample(id=f"q{i}", question="What is shown?",
                        options=OPTIONS if closed else {}, target=target,
                        meta={"question_type": "multiple-choice" if closed else "open",
                              "answer_type": "CLOSED" if closed else "OPEN", "order": i,
                              "modality": rng.choice(["CT", "MRI"])})
        response = Response(text=rng.choice(RESPONSES)) if i % 10 else Response(error="timeout")
        out.append((sample, response))
    return out


@pytest.mark.parametrize("task", _text_tasks(), ids=lambda t: t.name)
def test_one_scorer_for_the_task_gives_what_each_sample_gives_alone(task) -> None:
    task = seeded_task(task, 0)
    metrics = build_metrics(task)
    cases = _cases(60)
    alone = {s.id: score_sample(task, metrics, s, r, prompt="p") for s, r in cases}
    scorer = SampleScorer(task, metrics)
    shuffled = cases[:]
    random.Random(1).shuffle(shuffled)
    for sample, response in shuffled:
        assert scorer(sample, response, "p") == alone[sample.id], sample.id
    if task.extract.name == "choice_letter":  # not only error records compared
        assert any(r.error is None and r.parsed for r in alone.values())


def test_a_bad_extractor_fails_each_sample_not_the_scorer() -> None:
    from dataclasses import replace

    task = _text_tasks()[0]
    broken = replace(task, extract=replace(task.extract, name="no_such_extractor"))
    scorer = SampleScorer(broken, build_metrics(task))  # built without raising
    for sample, response in _cases(5)[1:]:
        record = scorer(sample, response)
        assert record.error and "no_such_extractor" in record.error
        assert record == score_sample(broken, build_metrics(task), sample, response)

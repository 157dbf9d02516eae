"""Option-order robustness (circular evaluation) for multiple-choice tasks.

Each question is asked again with its options in other orders: every rotation (``cyclic``, as
MMBench's CircularEval) or ``N`` seeded permutations. A re-asked question is an ordinary Sample
with its own id (``<id>#perm<k>``), its options relabelled A, B, C… in the new order and its
target letter moved with its option, so the runner, resume, compare and the sample browser handle
it like any other sample. ``meta.permutation`` records ``{"of": original id, "index": k,
"order": [original letter shown as A, as B, …]}`` so that answers map back to the original
options.

From the records, per group (``group_by``) and overall, with bootstrap intervals over questions:

* ``original_accuracy`` — accuracy on the benchmark's own order;
* ``consistent_accuracy`` — right under every order asked (CircularEval);
* ``flip_rate`` — share of questions whose answer, mapped back to the original options, is not
  the same under every order (an unparsed answer counts as an answer of its own);
* ``position_bias`` — the letters answered vs the letters of the targets over every order asked,
  with a χ² goodness-of-fit test of the answers against the target shares (flagged at p < 0.05).

Only questions with at least two options and a target among their letters are permuted, and only
where the order is visible to the model: the rendered prompt changes, or the task scores option
likelihoods. A question whose options are fixed inside its text (PMC-MI-Bench's multiple choice)
is asked once and counted as ``n_not_permutable``. docs/robustness.md has the formulas.
"""
from __future__ import annotations

import hashlib
import itertools
import math
import random
from collections import Counter, defaultdict
from dataclasses import replace
from typing import Any, Mapping, Sequence

from healthbench.core.types import Sample, SampleError, SampleResult
from healthbench.scoring.aggregate import group_values
from healthbench.scoring.stats import bootstrap_mean_ci

PERMUTATION_KEY = "permutation"
ID_SUFFIX = "#perm"
BIAS_ALPHA = 0.05


def parse_permutations(value: Any, where: str = "permutations") -> str | int | None:
    """``cyclic`` | a positive count N | None (``none``/``0``/absent: ask once)."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "none")):
        return None
    if isinstance(value, str) and value.strip().lower() == "cyclic":
        return "cyclic"
    try:
        count = int(value) if not isinstance(value, bool) else -1
    except (TypeError, ValueError):
        count = -1
    if count < 0 or (isinstance(value, float) and value != count):
        raise ValueError(f"{where}: expected 'cyclic' or a number of permutations, got {value!r}")
    return count or None


def orders(n_options: int, mode: str | int, seed: int, sample_id: str) -> list[tuple[int, ...]]:
    """The orders a question is re-asked in (the original order excluded): each order lists the
    original option index shown at each position. Seeded by (seed, sample id), so a resumed or
    repeated run asks the same orders."""
    identity = tuple(range(n_options))
    if mode == "cyclic":
        return [tuple((i + s) % n_options for i in range(n_options)) for s in range(1, n_options)]
    count = int(mode)
    if math.factorial(n_options) - 1 <= count:
        return [p for p in itertools.permutations(identity) if p != identity]
    digest = hashlib.sha256(f"{seed}\0{sample_id}".encode("utf-8")).digest()
    rng = random.Random(int.from_bytes(digest[:8], "little"))
    picked: list[tuple[int, ...]] = []
    while len(picked) < count:
        order = tuple(rng.sample(identity, n_options))
        if order != identity and order not in picked:
            picked.append(order)
    return picked


def permutable(sample: Sample) -> bool:
    letters = list(sample.options)
    return len(letters) >= 2 and str(sample.target).strip().upper() in {
        str(k).upper() for k in letters}


def permute(sample: Sample, order: Sequence[int], index: int) -> Sample:
    """``sample`` with its options shown in ``order``; letters stay A, B, C… by position."""
    letters = list(sample.options)
    texts = [sample.options[letters[i]] for i in order]
    target_index = [str(k).upper() for k in letters].index(str(sample.target).strip().upper())
    return replace(
        sample, id=f"{sample.id}{ID_SUFFIX}{index}",
        options=dict(zip(letters, texts)), target=letters[list(order).index(target_index)],
        meta={**sample.meta, PERMUTATION_KEY: {"of": sample.id, "index": index,
                                               "order": [letters[i] for i in order]}})


def expand(items: Sequence[Sample | SampleError], mode: str | int | None, seed: int,
           order_visible: Any) -> tuple[list[Sample | SampleError], int]:
    """Each question followed by its re-asked orders; ``order_visible(original, permuted)``
    says whether the model can see the change. Returns (items, questions not permutable)."""
    if mode is None:
        return list(items), 0
    out: list[Sample | SampleError] = []
    skipped = 0
    for item in items:
        out.append(item)
        if isinstance(item, SampleError) or not item.options:
            continue
        extra = [permute(item, order, k) for k, order in
                 enumerate(orders(len(item.options), mode, seed, item.id), start=1)] \
            if permutable(item) else []
        if not extra or not order_visible(item, extra[0]):
            skipped += 1
            continue
        out.extend(extra)
    return out, skipped


def is_permuted(record: SampleResult) -> bool:
    return isinstance(record.meta.get(PERMUTATION_KEY), Mapping)


def original_records(records: Sequence[SampleResult]) -> list[SampleResult]:
    """The records of the benchmark's own order: what the task's metrics are computed on."""
    return [r for r in records if not is_permuted(r)]


def _letter(value: Any) -> str | None:
    return None if value is None else str(value).strip().upper() or None


def _mapped_answer(record: SampleResult) -> str | None:
    """The answer as the original option's letter (None: unparsed)."""
    answer = _letter(record.parsed)
    info = record.meta.get(PERMUTATION_KEY)
    if answer is None or not isinstance(info, Mapping):
        return answer
    letters = [str(k).upper() for k in (record.inputs.get("options") or {})]
    order = list(info.get("order") or [])
    return order[letters.index(answer)] if answer in letters and \
        letters.index(answer) < len(order) else f"?{answer}"


def _question(rows: list[SampleResult]) -> dict[str, Any]:
    rows = sorted(rows, key=lambda r: (r.meta.get(PERMUTATION_KEY) or {}).get("index", 0))
    right = [_letter(r.parsed) is not None and _letter(r.parsed) == _letter(r.target)
             for r in rows]
    answers = [_mapped_answer(r) for r in rows]
    return {"original": float(right[0]), "consistent": float(all(right)),
            "flipped": float(len(set(answers)) > 1), "record": rows[0],
            "answers": Counter(_letter(r.parsed) for r in rows if _letter(r.parsed)),
            "targets": Counter(_letter(r.target) for r in rows)}


def position_bias(answers: Counter, targets: Counter) -> dict[str, Any]:
    """Answer letters vs target letters, χ² goodness of fit of the answers against the target
    shares (scipy.stats.chisquare). A letter answered that no target has makes χ² infinite:
    reported as ``chi2: null, p_value: 0``."""
    from scipy.stats import chisquare

    letters = sorted(set(answers) | set(targets))
    n_answers, n_targets = sum(answers.values()), sum(targets.values())
    out: dict[str, Any] = {"answers": {k: answers.get(k, 0) for k in letters},
                           "targets": {k: targets.get(k, 0) for k in letters},
                           "chi2": None, "dof": None, "p_value": None, "flagged": False}
    if n_answers == 0 or n_targets == 0:
        return out
    expected = {k: n_answers * targets.get(k, 0) / n_targets for k in letters}
    if any(expected[k] == 0 and answers.get(k, 0) > 0 for k in letters):
        out.update(p_value=0.0, flagged=True, dof=len(letters) - 1)
        return out
    kept = [k for k in letters if expected[k] > 0]
    if len(kept) < 2:
        return out
    stat, p = chisquare([answers.get(k, 0) for k in kept], f_exp=[expected[k] for k in kept])
    out.update(chi2=float(stat), dof=len(kept) - 1, p_value=float(p),
               flagged=bool(p < BIAS_ALPHA))
    return out


def _summary(questions: list[dict[str, Any]], seed: int) -> dict[str, Any]:
    out: dict[str, Any] = {"n_questions": len(questions)}
    for name, key in (("original_accuracy", "original"), ("consistent_accuracy", "consistent"),
                      ("flip_rate", "flipped")):
        values = [q[key] for q in questions]
        out[name] = {"value": sum(values) / len(values) if values else None,
                     "ci": bootstrap_mean_ci(values, seed=seed), "n": len(values)}
    out["position_bias"] = position_bias(sum((q["answers"] for q in questions), Counter()),
                                         sum((q["targets"] for q in questions), Counter()))
    return out


def robustness_summary(records: Sequence[SampleResult], group_by: Sequence[str], seed: int,
                       mode: str | int, n_not_permutable: int = 0) -> dict[str, Any]:
    """The ``robustness`` block of a task in results.json (see the module docstring)."""
    by_question: dict[str, list[SampleResult]] = defaultdict(list)
    for record in records:
        info = record.meta.get(PERMUTATION_KEY)
        by_question[str(info.get("of")) if isinstance(info, Mapping) else record.id].append(record)
    asked = [rows for rows in by_question.values()
             if any(is_permuted(r) for r in rows) and any(not is_permuted(r) for r in rows)]
    clean = [rows for rows in asked if not any(r.error for r in rows)]
    questions = [_question(rows) for rows in clean]
    block: dict[str, Any] = {"permutations": mode, "n_not_permutable": n_not_permutable,
                             "n_excluded": len(asked) - len(clean),
                             "n_orders": sum(len(rows) for rows in clean),
                             **_summary(questions, seed), "groups": {}}
    for key in group_by:
        buckets: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for question in questions:
            for value in group_values(question["record"], key):
                buckets[value].append(question)
        block["groups"][key] = {value: _summary(members, seed)
                                for value, members in sorted(buckets.items())}
    return block

"""tables.md sections for the robustness and calibration blocks of a task (when present):
option-order robustness (``--permute-options``) and calibration (likelihood-scored tasks).
Definitions in docs/robustness.md; the numbers come from ``scoring.robustness`` and
``scoring.calibration`` via results.json."""
from __future__ import annotations

from typing import Any, Mapping


def _pct(entry: Mapping[str, Any] | None) -> str:
    value = (entry or {}).get("value")
    if value is None:
        return "–"
    lo, hi = (list((entry or {}).get("ci") or []) + [None, None])[:2]
    text = f"{value * 100:.1f}"
    return text + (f" [{lo * 100:.1f}, {hi * 100:.1f}]" if lo is not None and hi is not None
                   else "")


def _num(entry: Mapping[str, Any] | None) -> str:
    value = (entry or {}).get("value")
    if value is None:
        return "–"
    lo, hi = (list((entry or {}).get("ci") or []) + [None, None])[:2]
    return f"{value:.3f}" + (f" [{lo:.3f}, {hi:.3f}]" if lo is not None and hi is not None
                             else "")


def _bias(bias: Mapping[str, Any]) -> str:
    p = bias.get("p_value")
    if p is None:
        return "–"
    answers = bias.get("answers") or {}
    total = sum(answers.values()) or 1
    shares = " ".join(f"{k}:{v / total * 100:.0f}%" for k, v in answers.items())
    return f"p={p:.3g}{' **biased**' if bias.get('flagged') else ''} ({shares})"


def _rows(block: Mapping[str, Any], row: Any) -> list[str]:
    lines = [row("overall", "all", block)]
    for key, groups in (block.get("groups") or {}).items():
        lines += [row(key, value, group) for value, group in groups.items()]
    return lines


def robustness_lines(robust: Mapping[str, Any] | None) -> list[str]:
    """The option-order section for a task block's ``robustness`` (none without one)."""
    if not robust:
        return []

    def row(key: str, value: str, b: Mapping[str, Any]) -> str:
        return (f"| {key} | {value} | {b.get('n_questions', 0)} | "
                f"{_pct(b.get('original_accuracy'))} | {_pct(b.get('consistent_accuracy'))} | "
                f"{_pct(b.get('flip_rate'))} | {_bias(b.get('position_bias') or {})} |")

    return [f"Option order ({robust['permutations']}; {robust['n_orders']} answers to "
            f"{robust['n_questions']} questions; {robust['n_not_permutable']} not permutable, "
            f"{robust['n_excluded']} left out for an error):", "",
            "| group | value | questions | original acc | consistent acc | flip rate | "
            "position bias (χ² vs targets) |", "|---|---|---:|---:|---:|---:|---|",
            *_rows(robust, row), ""]


def calibration_lines(calib: Mapping[str, Any] | None) -> list[str]:
    """The calibration section for a task block's ``calibration`` (none without one)."""
    if not calib:
        return []
    coverages = list(calib.get("accuracy_at_coverage") or {})

    def row(key: str, value: str, b: Mapping[str, Any]) -> str:
        cover = b.get("accuracy_at_coverage") or {}
        return (f"| {key} | {value} | {b.get('n', 0)} | {_num(b.get('ece'))} | "
                f"{_num(b.get('brier'))} | " +
                " | ".join(_pct(cover.get(c)) for c in coverages) + " |")

    return [f"Calibration ({calib.get('bins_rule', '')}; confidence = softmax of the option "
            "scores at the chosen option):", "",
            "| group | value | n | ECE | Brier | " +
            " | ".join(f"acc @ {float(c) * 100:.0f}% coverage" for c in coverages) + " |",
            "|---|---|---:|---:|---:|" + "---:|" * len(coverages), *_rows(calib, row), ""]

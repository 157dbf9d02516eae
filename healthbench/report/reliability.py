"""The HTML site's calibration and option-order sections: a reliability diagram (inline SVG) per
run of a likelihood-scored task, and a table of the option-order numbers of runs made with
``--permute-options``. Read from results.json blocks (``calibration``, ``robustness``); the
definitions are in docs/robustness.md.

A reliability diagram plots, per equal-mass bin of confidence, the accuracy (bar, spanning the
bin's confidence range) and the mean confidence (dot) against the diagonal of perfect
calibration: bars below the diagonal are over-confidence.
"""
from __future__ import annotations

from html import escape
from typing import Any, Mapping, Sequence

from healthbench.report.leaderboard import Table

SIZE, PAD = 240, 36


def reliability_svg(bins: Sequence[Mapping[str, Any]], title: str) -> str:
    """An ``<svg class="reliability">``: accuracy per confidence bin, with the diagonal."""
    if not bins:
        return ""
    plot = SIZE - 2 * PAD

    def x(value: float) -> float:
        return PAD + plot * max(0.0, min(1.0, value))

    def y(value: float) -> float:
        return SIZE - PAD - plot * max(0.0, min(1.0, value))

    parts = [f'<svg class="reliability" width="{SIZE}" height="{SIZE + 16}" '
             f'viewBox="0 0 {SIZE} {SIZE + 16}" role="img" aria-label="{escape(title)}">',
             f'<text x="{PAD}" y="14" class="plot-title">{escape(title[:40])}</text>',
             f'<rect x="{PAD}" y="{PAD}" width="{plot}" height="{plot}" class="frame"/>']
    for tick in (0.0, 0.5, 1.0):
        parts.append(f'<text x="{x(tick):.1f}" y="{SIZE - PAD + 14}" text-anchor="middle" '
                     f'class="tick">{tick:g}</text>')
        parts.append(f'<text x="{PAD - 4}" y="{y(tick) + 4:.1f}" text-anchor="end" '
                     f'class="tick">{tick:g}</text>')
    parts.append(f'<text x="{SIZE / 2}" y="{SIZE - 4}" text-anchor="middle" '
                 'class="tick">confidence</text>')
    parts.append(f'<text transform="translate(10,{SIZE / 2}) rotate(-90)" text-anchor="middle" '
                 'class="tick">accuracy</text>')
    for b in bins:
        lo, hi = float(b["conf_lo"]), float(b["conf_hi"])
        left, width = x(lo), max(2.0, x(hi) - x(lo))
        tip = (f"confidence {lo:.2f}–{hi:.2f} (mean {b['confidence']:.2f}): accuracy "
               f"{b['accuracy']:.2f}, n={b['n']}")
        parts.append(f'<rect x="{left:.1f}" y="{y(b["accuracy"]):.1f}" width="{width:.1f}" '
                     f'height="{y(0) - y(b["accuracy"]):.1f}" class="bin">'
                     f'<title>{escape(tip)}</title></rect>')
        parts.append(f'<circle cx="{x(b["confidence"]):.1f}" cy="{y(b["accuracy"]):.1f}" '
                     'r="2.5" class="mean"/>')
    parts.append(f'<line x1="{x(0)}" y1="{y(0)}" x2="{x(1)}" y2="{y(1)}" class="diagonal"/>')
    parts.append("</svg>")
    return "".join(parts)


def _pct(entry: Mapping[str, Any] | None) -> str:
    value = (entry or {}).get("value")
    if value is None:
        return "–"
    lo, hi = (list((entry or {}).get("ci") or []) + [None, None])[:2]
    ci = f" ({lo * 100:.1f}–{hi * 100:.1f})" if lo is not None and hi is not None else ""
    return f"{value * 100:.1f}{ci}"


def _robustness_table(table: Table) -> str:
    rows = []
    for _, entry in table.ranked():
        robust = entry.block.robustness
        if not robust:
            continue
        bias = robust.get("position_bias") or {}
        p = bias.get("p_value")
        rows.append("<tr>" + "".join(f"<td>{escape(str(cell))}</td>" for cell in (
            entry.run.model.name, entry.run.run_id, robust.get("permutations"),
            robust.get("n_questions"), _pct(robust.get("original_accuracy")),
            _pct(robust.get("consistent_accuracy")), _pct(robust.get("flip_rate")),
            "–" if p is None else f"p={p:.3g}" + (" biased" if bias.get("flagged") else ""))) +
            "</tr>")
    if not rows:
        return ""
    head = "".join(f"<th>{h}</th>" for h in ("model", "run", "orders", "questions",
                                             "original acc", "consistent acc", "flip rate",
                                             "position bias (χ²)"))
    return (f'<table class="robustness"><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table>")


def render_choice_reports(table: Table) -> str:
    """The option-order table and one reliability diagram per run with a calibration block;
    empty when no run of the table has either."""
    figures = []
    for _, entry in table.ranked():
        calib = entry.block.calibration
        if not calib or not calib.get("bins"):
            continue
        ece, brier = calib.get("ece") or {}, calib.get("brier") or {}
        caption = (f"{entry.run.model.name} · {entry.run.run_id}: ECE "
                   f"{(ece.get('value') or 0):.3f}, Brier {(brier.get('value') or 0):.3f}, "
                   f"n={calib.get('n')} ({calib.get('bins_rule', '')})")
        figures.append(f'<figure class="reliability-box">'
                       f"{reliability_svg(calib['bins'], str(entry.run.run_id))}"
                       f"<figcaption>{escape(caption)}</figcaption></figure>")
    robustness = _robustness_table(table)
    if not figures and not robustness:
        return ""
    return ('<details open class="choice-reports"><summary>Option order and calibration '
            "(docs/robustness.md)</summary>" + robustness +
            f'<div class="reliability-row">{"".join(figures)}</div></details>')


CSS = """
.reliability-row{display:flex;flex-wrap:wrap;gap:12px}
figure.reliability-box{margin:8px 0;background:#fff;border:1px solid #dde1e7;padding:4px}
figure.reliability-box figcaption{font-size:12px;color:#445;max-width:240px}
svg.reliability .frame{fill:#fff;stroke:#dde1e7}svg.reliability .bin{fill:#3366cc;opacity:.75}
svg.reliability .mean{fill:#111}svg.reliability .diagonal{stroke:#dc3912;stroke-dasharray:4 3}
svg.reliability .tick{font-size:11px;fill:#445}svg.reliability .plot-title{font-size:12px;
font-weight:600;fill:#1d2330}
"""

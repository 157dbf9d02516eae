"""Inline SVG plots for the static site: no plotting library, no external resources.

``grouped_bars`` draws one group of bars per category (e.g. per modality), one bar per series
(a run), with whiskers for the interval. Values are in display units (% for fractions).
"""
from __future__ import annotations

from dataclasses import dataclass
from html import escape
from typing import Sequence

LEGEND_W = 200  # px per legend entry: a swatch and up to 28 characters at 11 px
PALETTE = ("#3366cc", "#dc3912", "#ff9900", "#109618", "#990099", "#0099c6", "#dd4477",
           "#66aa00")


@dataclass(frozen=True)
class Bar:
    value: float | None
    lo: float | None = None
    hi: float | None = None
    n: int | None = None


def grouped_bars(categories: Sequence[str], series: Sequence[tuple[str, Sequence[Bar]]],
                 y_max: float | None = None, y_label: str = "", title: str = "") -> str:
    """An ``<svg>`` element: ``series`` is ``[(name, [Bar per category])]``."""
    if not categories or not series:
        return ""
    tops = [b.hi if b.hi is not None else b.value for _, bars in series for b in bars
            if b.value is not None]
    top = y_max if y_max is not None else max([t for t in tops if t is not None] + [1e-9]) * 1.1
    left, right, top_pad, bottom = 48, 12, 28, 70
    group_w = max(40, 14 * len(series) + 16)
    width = max(left + right + group_w * len(categories), 380)
    per_row = max(1, (width - left - right) // LEGEND_W)
    legend_h = 18 * ((len(series) + per_row - 1) // per_row)
    height = 240 + legend_h
    plot_h = height - top_pad - bottom - legend_h

    def y(value: float) -> float:
        return top_pad + plot_h * (1 - max(0.0, min(value, top)) / top)

    parts = [f'<svg class="plot" width="{width}" '
             f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
             f'aria-label="{escape(title or y_label)}">']
    if title:
        parts.append(f'<text x="{left}" y="16" class="plot-title">{escape(title)}</text>')
    for i in range(5):
        tick = top * i / 4
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y(tick):.1f}" '
                     f'y2="{y(tick):.1f}" class="grid"/>')
        parts.append(f'<text x="{left - 4}" y="{y(tick) + 4:.1f}" text-anchor="end" '
                     f'class="tick">{tick:.0f}</text>')
    if y_label:
        parts.append(f'<text transform="translate(12,{top_pad + plot_h / 2:.0f}) rotate(-90)" '
                     f'text-anchor="middle" class="tick">{escape(y_label)}</text>')
    bar_w = (group_w - 16) / len(series)
    for ci, category in enumerate(categories):
        x0 = left + ci * group_w + 8
        for si, (name, bars) in enumerate(series):
            bar = bars[ci] if ci < len(bars) else Bar(None)
            if bar.value is None:
                continue
            x = x0 + si * bar_w
            colour = PALETTE[si % len(PALETTE)]
            tip = f"{name} · {category}: {bar.value:.1f}"
            if bar.lo is not None and bar.hi is not None:
                tip += f" ({bar.lo:.1f}–{bar.hi:.1f})"
            if bar.n is not None:
                tip += f", n={bar.n}"
            parts.append(f'<rect x="{x:.1f}" y="{y(bar.value):.1f}" width="{bar_w - 2:.1f}" '
                         f'height="{y(0) - y(bar.value):.1f}" fill="{colour}">'
                         f'<title>{escape(tip)}</title></rect>')
            if bar.lo is not None and bar.hi is not None:
                cx = x + (bar_w - 2) / 2
                parts.append(f'<path d="M{cx:.1f},{y(bar.lo):.1f}V{y(bar.hi):.1f}'
                             f'M{cx - 3:.1f},{y(bar.lo):.1f}h6M{cx - 3:.1f},{y(bar.hi):.1f}h6" '
                             'class="whisker"/>')
        label_x = x0 + (group_w - 16) / 2
        parts.append(f'<text x="{label_x:.1f}" y="{top_pad + plot_h + 14}" text-anchor="end" '
                     f'transform="rotate(-30 {label_x:.1f} {top_pad + plot_h + 14})" '
                     f'class="tick">{escape(category)}</text>')
    legend_y = height - legend_h + 4
    for si, (name, _) in enumerate(series):
        lx = left + (si % per_row) * LEGEND_W
        ly = legend_y + (si // per_row) * 18
        parts.append(f'<rect x="{lx}" y="{ly}" width="10" height="10" '
                     f'fill="{PALETTE[si % len(PALETTE)]}"/>')
        parts.append(f'<text x="{lx + 14}" y="{ly + 9}" class="tick">{escape(name[:28])}</text>')
    parts.append("</svg>")
    return "".join(parts)

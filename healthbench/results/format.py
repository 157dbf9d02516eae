"""The one value formatter of every report: tables.md, leaderboard.md, the HTML site, compare.

The scale comes from the metric's declared ``MetricInfo.percent`` (fractions in [0, 1] are shown
as %), never from its name. Two styles, because two committed formats exist and stay
byte-identical: ``"table"`` (tables.md: ``36.4 [18.2, 54.5]``, a raw unit with 4 significant
digits) and ``"report"`` (leaderboard, site, compare: ``36.4 (18.2–54.5)``, a raw unit with 2
decimals).
"""
from __future__ import annotations

from typing import Literal, Sequence

Style = Literal["table", "report"]


def format_value(value: float | None, ci: Sequence[float | None] | None = None, *,
                 percent: bool, style: Style = "report") -> str:
    """``value`` (and its interval when both ends are known) in display units; "–" when None."""
    if value is None:
        return "–"
    scale = 100.0 if percent else 1.0
    spec = ".1f" if percent else (".4g" if style == "table" else ".2f")
    text = f"{value * scale:{spec}}"
    lo, hi = (list(ci or []) + [None, None])[:2]
    if lo is not None and hi is not None:
        lo_text, hi_text = f"{lo * scale:{spec}}", f"{hi * scale:{spec}}"
        text += f" [{lo_text}, {hi_text}]" if style == "table" else f" ({lo_text}–{hi_text})"
    return text

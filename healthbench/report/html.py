"""The static leaderboard site: ``index.html`` plus ``thumbs/`` and ``strips/``, opened from disk.

Everything the page needs is inline (CSS, JS, SVG plots, the sample data as JSON); the only files
it loads are the input-image thumbnails and generation strips copied beside it, so it makes no
network request and needs no server. A Content-Security-Policy meta tag makes the browser refuse
anything else.

* leaderboard tables (the same content as leaderboard.md), sortable by clicking a header;
* per-group bar charts with interval whiskers (inline SVG), one above each per-group table;
* a sample browser: filter by run, task, group and correctness, or search text; each card shows
  the question, options, response, parsed answer, target, scores and the input thumbnails, and
  for image-output tasks the input | output | reference strip.

Model output is untrusted text: it is only ever put into the page as JSON data and inserted with
``textContent``, never as HTML.

This module renders the tables, plots and the page's content; ``html_page.py`` holds the page
template with its CSS and JS, and ``browser.py`` the sample browser's data.
"""
from __future__ import annotations

from datetime import datetime, timezone
from html import escape
from pathlib import Path
from typing import Any

from healthbench.core.version import __version__
from healthbench.report.browser import Strips, Thumbnails, _json_for_script, sample_rows
from healthbench.report.html_page import CSP, CSS, JS, PAGE
from healthbench.report.leaderboard import Leaderboard, Table, format_metric
from healthbench.report.references import format_reference
from healthbench.report.reliability import CSS as RELIABILITY_CSS, render_choice_reports
from healthbench.report.runs import model_size, model_variant
from healthbench.results.schema import MetricInfo, MetricValue
from healthbench.report.svg import Bar, grouped_bars
from healthbench.results.samples import atomic_write_text

MAX_PLOT_SERIES = 8


# --- tables and plots ------------------------------------------------------------------------

def _td(text: str, sort: Any = None, cls: str = "") -> str:
    attrs = f' data-sort="{escape(str(sort))}"' if sort is not None else ""
    attrs += f' class="{cls}"' if cls else ""
    return f"<td{attrs}>{escape(text)}</td>"


def _th(text: str, numeric: bool = False) -> str:
    kind = "num" if numeric else "text"
    return f'<th data-type="{kind}" tabindex="0" title="click to sort">{escape(text)}</th>'


def _sort_key(value: float | None) -> str:
    return "" if value is None else f"{value:.6f}"


def _metric_td(metric: MetricValue | None, info: MetricInfo, n: int | None = None) -> str:
    value = None if metric is None else metric.value
    text = format_metric(metric, info)
    if n is not None:
        text += f" n={n}"
    return _td(text, _sort_key(value), "num")


def render_table(table: Table) -> str:
    keys = table.group_keys
    out = [f'<h3 id="{escape(table.anchor)}">{escape(table.title)} '
           f'<span class="metric">— {escape(table.metric)}</span></h3>']
    if table.entries:
        head = ([_th("rank", True), _th("model"), _th("variant"), _th("size"),
                 _th("micro", True)] + [_th(f"macro ({k})", True) for k in keys] +
                [_th("n", True), _th("errors", True), _th("harness"), _th("run")])
        rows = []
        for rank, entry in table.ranked():
            run = entry.run
            rows.append(
                "<tr>" + _td(str(rank or "–"), rank if rank else 10 ** 6, "num") +
                _td(run.model.name) + _td(model_variant(run.model) or "–") +
                _td(model_size(run.model) or "–") +
                _metric_td(entry.metric(table.metric), table.info) +
                "".join(_metric_td(entry.macro(k, table.metric), table.info) for k in keys) +
                _td(str(entry.block.n), entry.block.n, "num") +
                _td(str(entry.block.n_errors), entry.block.n_errors, "num") +
                _td(run.harness_version) + _td(run.run_id) + "</tr>")
        out.append(f'<table class="sortable leaderboard" data-task="{escape(table.task)}">'
                   f"<thead><tr>{''.join(head)}</tr></thead><tbody>{''.join(rows)}</tbody>"
                   "</table>")
    else:
        out.append('<p class="muted">No run of this task in the results folder.</p>')
    for key in keys:
        out.append(render_group_table(table, key))
    out.append(render_choice_reports(table))  # option order, reliability diagrams (reliability.py)
    if table.references:
        out.append(render_references(table))
    return "\n".join(out)


def render_plot(table: Table, key: str) -> str:
    values = table.group_values(key)
    scale = 100.0 if table.info.percent else 1.0
    series = []
    for _, entry in table.ranked()[:MAX_PLOT_SERIES]:
        bars = []
        for value in values:
            group = entry.group(key, value)
            metric = None if group is None else group.metrics.get(table.metric)
            v = None if metric is None else metric.value
            lo, hi = (None, None) if metric is None else metric.bounds
            bars.append(Bar(None if v is None else v * scale,
                            None if lo is None else lo * scale,
                            None if hi is None else hi * scale,
                            None if group is None else group.n))
        series.append((f"{entry.run.model.name} · {entry.run.run_id}", bars))
    for ref in table.references:
        if ref.metric == table.metric and key in ref.groups and len(series) < MAX_PLOT_SERIES:
            series.append((f"{ref.model} † paper", [
                Bar(None if ref.groups[key].get(v) is None else ref.groups[key][v] * scale)
                for v in values]))
    svg = grouped_bars(values, series, y_max=100.0 if scale == 100.0 else None,
                       y_label=table.metric + (" (%)" if scale == 100.0 else ""),
                       title=f"{table.metric} by {key} (95% interval whiskers)")
    return f'<figure class="plot-box">{svg}</figure>' if svg else ""


def render_group_table(table: Table, key: str) -> str:
    values = table.group_values(key)
    refs = [r for r in table.references if key in r.groups and r.metric == table.metric]
    if not values or not (table.entries or refs):
        return ""
    head = [_th("model"), _th("run")] + [_th(v, True) for v in values]
    rows = []
    for _, entry in table.ranked():
        cells = []
        for value in values:
            group = entry.group(key, value)
            cells.append(_metric_td(None if group is None else group.metrics.get(table.metric),
                                    table.info, None if group is None else group.n))
        rows.append("<tr>" + _td(entry.run.model.name) +
                    _td(entry.run.run_id) + "".join(cells) + "</tr>")
    for ref in refs:
        rows.append('<tr class="ref">' + _td(f"{ref.model} †") + _td("paper") + "".join(
            _td(format_reference(ref.groups[key].get(v), ref.info),
                _sort_key(ref.groups[key].get(v)), "num") for v in values) + "</tr>")
    return (f'<details open><summary>By {escape(key)}</summary>{render_plot(table, key)}'
            f'<table class="sortable groups" data-key="{escape(key)}"><thead><tr>'
            f"{''.join(head)}</tr></thead><tbody>{''.join(rows)}</tbody></table></details>")


def render_references(table: Table) -> str:
    rows = []
    for ref in table.references:
        source = escape(ref.source)
        if ref.url:
            source = (f'<a href="{escape(ref.url)}" rel="noopener noreferrer" '
                      f'referrerpolicy="no-referrer">{source}</a>')
        rows.append('<tr class="ref">' + _td(f"{ref.model} †") + _td(ref.variant or "–") +
                    _td(ref.size or "–") + _td(ref.metric) +
                    _td(format_reference(ref.value, ref.info), _sort_key(ref.value), "num") +
                    _td("–" if ref.n is None else str(ref.n), ref.n or 0, "num") +
                    f"<td>{source}</td>" + _td(ref.protocol) + "</tr>")
    head = "".join(_th(h, h in ("overall", "n")) for h in
                   ("model", "variant", "size", "metric", "overall", "n", "source", "protocol"))
    return ('<div class="refs"><p><strong>† Reported in papers — not reproduced here, not '
            "ranked.</strong> Their prompts, splits and scorers may differ from this task's."
            f'</p><table class="sortable references"><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table></div>")


# --- the page --------------------------------------------------------------------------------

def render_page(board: Leaderboard, samples_json: str, n_samples: int) -> str:
    nav, sections = [], []
    for suite, tables in board.suites().items():
        nav.append(f'<li><a href="#suite-{escape(suite)}">{escape(suite)}</a></li>')
        sections.append(f'<section class="suite" id="suite-{escape(suite)}">'
                        f"<h2>{escape(suite)}</h2>" +
                        "\n".join(render_table(t) for t in tables) + "</section>")
    generated = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return PAGE.format(
        csp=CSP, css=CSS + RELIABILITY_CSS, js=JS, version=escape(__version__),
        generated=generated,
        n_runs=len(board.runs), n_samples=n_samples, nav="".join(nav),
        sections="\n".join(sections) or '<p class="muted">No runs found.</p>',
        samples_json=samples_json)


def write_site(board: Leaderboard, site: Path, max_samples: int = 300) -> Path:
    """Write ``site/index.html``, ``site/thumbs/`` and (for image-output tasks)
    ``site/strips/``; returns the page's path."""
    site = Path(site)
    site.mkdir(parents=True, exist_ok=True)
    thumbs = Thumbnails(site)
    runs, samples, truncated = sample_rows(board.runs, board.tables, thumbs, max_samples,
                                           Strips(site))
    data = _json_for_script({"runs": runs, "samples": samples, "truncated": truncated})
    page = site / "index.html"
    atomic_write_text(page, render_page(board, data, len(samples)))
    return page

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
"""
from __future__ import annotations

from datetime import datetime, timezone
from html import escape
from pathlib import Path
from typing import Any, Mapping

from healthbench.core.version import __version__
from healthbench.report.browser import Strips, Thumbnails, _json_for_script, sample_rows
from healthbench.report.leaderboard import Leaderboard, Table, format_metric
from healthbench.report.references import format_reference
from healthbench.report.reliability import CSS as RELIABILITY_CSS, render_choice_reports
from healthbench.report.runs import model_size, model_variant
from healthbench.results.format import format_value
from healthbench.results.schema import MetricInfo, MetricValue
from healthbench.report.svg import Bar, grouped_bars
from healthbench.results.samples import atomic_write_text

MAX_PLOT_SERIES = 8

CSP = ("default-src 'none'; img-src 'self' file: data:; style-src 'unsafe-inline'; "
       "script-src 'unsafe-inline'; base-uri 'none'; form-action 'none'")


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
    return _td(text, "" if value is None else f"{value:.6f}", "num")


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


PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{csp}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>healthbench leaderboard</title>
<style>{css}</style></head>
<body>
<header><h1>healthbench leaderboard</h1>
<p class="muted">healthbench {version} · generated {generated} · {n_runs} run(s) ·
values are % for fraction metrics with 95% bootstrap intervals · click a column header to sort ·
only runs of the same task version and data are ranked together · † = reported in a paper, not
reproduced here</p>
<nav><ul>{nav}<li><a href="#samples">sample browser</a></li></ul></nav></header>
<main>
{sections}
<section id="samples"><h2>Sample browser</h2>
<div class="filters">
<label>run <select id="f-run"><option value="">all</option></select></label>
<label>task <select id="f-task"><option value="">all</option></select></label>
<label>group <select id="f-group"><option value="">all</option></select></label>
<label>answer <select id="f-correct"><option value="">all</option>
<option value="correct">correct</option><option value="wrong">wrong</option>
<option value="unparsed">unparsed</option><option value="error">error</option>
<option value="n/a">no 0/1 score</option></select></label>
<label>search <input id="f-text" type="search" placeholder="question, response, id"></label>
</div>
<p id="sb-count" class="muted"></p><p id="sb-truncated" class="muted"></p>
<div id="sb-list"></div>
<p><button id="sb-more" type="button" hidden>show more</button></p>
</section>
</main>
<script id="hb-samples" type="application/json">{samples_json}</script>
<script>{js}</script>
</body></html>
"""

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d2330;
background:#f6f7f9}
header{background:#1f3a5f;color:#fff;padding:14px 24px}header h1{margin:0 0 4px;font-size:22px}
header .muted{color:#d5deea}nav ul{list-style:none;padding:0;margin:6px 0 0;display:flex;
flex-wrap:wrap;gap:14px}nav a{color:#fff}
main{padding:8px 24px 40px;max-width:1400px}
h2{border-bottom:2px solid #1f3a5f;padding-bottom:4px;margin-top:28px}
h3{margin:22px 0 8px}.metric{font-weight:normal;color:#556}
.muted{color:#667}
table{border-collapse:collapse;background:#fff;margin:6px 0 12px;font-size:13px;
box-shadow:0 1px 2px rgba(0,0,0,.08)}
th,td{border:1px solid #dde1e7;padding:4px 8px;text-align:left;white-space:nowrap}
td.num{text-align:right;font-variant-numeric:tabular-nums}
th{background:#eef1f5;cursor:pointer;user-select:none;position:relative;padding-right:18px}
th[aria-sort=ascending]::after{content:"▲";position:absolute;right:4px;font-size:10px}
th[aria-sort=descending]::after{content:"▼";position:absolute;right:4px;font-size:10px}
tr.ref td{background:#fff8e6;font-style:italic}
details summary{cursor:pointer;color:#1f3a5f;margin:4px 0}
.refs p{margin:8px 0 2px}
figure.plot-box{margin:8px 0;overflow-x:auto}
svg.plot{background:#fff;border:1px solid #dde1e7}
svg .grid{stroke:#e3e6eb}svg .tick{font-size:11px;fill:#445}svg .plot-title{font-size:12px;
font-weight:600;fill:#1d2330}svg .whisker{stroke:#111;stroke-width:1.2;fill:none}
.filters{display:flex;flex-wrap:wrap;gap:12px;align-items:center;background:#fff;padding:10px;
border:1px solid #dde1e7}
.filters select,.filters input{font:inherit;padding:2px 4px;max-width:260px}
#sb-list{display:grid;grid-template-columns:repeat(auto-fill,minmax(340px,1fr));gap:10px}
.card{background:#fff;border:1px solid #dde1e7;border-left:5px solid #999;padding:8px 10px;
font-size:13px;overflow-wrap:anywhere}
.card.correct{border-left-color:#2e8540}.card.wrong{border-left-color:#cd2026}
.card.unparsed{border-left-color:#e58a00}.card.error{border-left-color:#6b2d8f}
.card .head{display:flex;justify-content:space-between;gap:6px;color:#556;font-size:12px}
.card .badge{font-weight:600;text-transform:uppercase;font-size:11px;white-space:nowrap;
flex-shrink:0}
.card .q{font-weight:600;margin:4px 0}
.card .thumbs{display:flex;gap:6px;flex-wrap:wrap;margin:4px 0}
.card .thumbs img{max-width:150px;max-height:150px;border:1px solid #ccd;background:#000}
.card figure.strip{margin:6px 0}.card .strip img{max-width:100%;height:auto;display:block;
border:1px solid #ccd;background:#000}.card .strip figcaption{font-size:11px}
.card dl{display:grid;grid-template-columns:max-content 1fr;gap:2px 8px;margin:4px 0 0}
.card dt{color:#667}.card dd{margin:0;white-space:pre-wrap}
.card ul.options{margin:2px 0;padding-left:4px;list-style:none}
.card li.target{color:#2e8540;font-weight:600}.card li.chosen{text-decoration:underline}
"""

JS = r"""
(function () {
  "use strict";
  // Sortable tables: click (or Enter on) a header; numbers sort by data-sort, blanks last.
  function cellKey(row, i) {
    var cell = row.cells[i];
    if (!cell) return "";
    var v = cell.getAttribute("data-sort");
    return v === null ? cell.textContent.trim() : v;
  }
  function sortBy(th) {
    var table = th.closest("table"), idx = th.cellIndex;
    var numeric = th.getAttribute("data-type") === "num";
    var dir = th.getAttribute("aria-sort") === "descending" ? "ascending" :
      (th.getAttribute("aria-sort") === "ascending" ? "descending" :
       (numeric ? "descending" : "ascending"));
    var ths = table.tHead.rows[0].cells;
    for (var i = 0; i < ths.length; i++) ths[i].removeAttribute("aria-sort");
    th.setAttribute("aria-sort", dir);
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = cellKey(a, idx), y = cellKey(b, idx);
      if (x === "" && y === "") return 0;
      if (x === "") return 1;
      if (y === "") return -1;
      var c = numeric ? (parseFloat(x) - parseFloat(y)) : x.localeCompare(y);
      return dir === "ascending" ? c : -c;
    });
    rows.forEach(function (r) { body.appendChild(r); });
  }
  document.querySelectorAll("table.sortable th").forEach(function (th) {
    th.addEventListener("click", function () { sortBy(th); });
    th.addEventListener("keydown", function (e) { if (e.key === "Enter") sortBy(th); });
  });

  // Sample browser.
  var data = JSON.parse(document.getElementById("hb-samples").textContent);
  var samples = data.samples, runs = data.runs, PAGE = 60, shown = PAGE;
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function addOptions(select, values, label) {
    values.forEach(function (v) {
      var o = document.createElement("option");
      o.value = v; o.textContent = label ? label(v) : v; select.appendChild(o);
    });
  }
  var fRun = document.getElementById("f-run"), fTask = document.getElementById("f-task"),
      fGroup = document.getElementById("f-group"), fCorrect = document.getElementById("f-correct"),
      fText = document.getElementById("f-text");
  addOptions(fRun, runs.map(function (r, i) { return String(i); }),
             function (i) { return runs[i].id + " (" + runs[i].model + ")"; });
  var tasks = {}, groups = {};
  samples.forEach(function (s) {
    tasks[s.t] = 1;
    Object.keys(s.g).forEach(function (k) {
      s.g[k].forEach(function (v) { groups[k + "=" + v] = 1; });
    });
  });
  addOptions(fTask, Object.keys(tasks).sort());
  addOptions(fGroup, Object.keys(groups).sort());
  var truncated = Object.keys(data.truncated);
  if (truncated.length) {
    document.getElementById("sb-truncated").textContent = "Subsampled for this page: " +
      truncated.map(function (k) { return k + " (" + data.truncated[k] + " samples)"; }).join(", ");
  }
  function matches(s) {
    if (fRun.value !== "" && String(s.r) !== fRun.value) return false;
    if (fTask.value && s.t !== fTask.value) return false;
    if (fGroup.value) {
      var cut = fGroup.value.indexOf("="), key = fGroup.value.slice(0, cut);
      if ((s.g[key] || []).indexOf(fGroup.value.slice(cut + 1)) < 0) return false;
    }
    if (fCorrect.value && s.c !== fCorrect.value) return false;
    var q = fText.value.trim().toLowerCase();
    if (q && (s.id + " " + s.q + " " + s.resp + " " + s.target).toLowerCase().indexOf(q) < 0)
      return false;
    return true;
  }
  function field(dl, name, value) {
    if (value === "" || value === undefined || value === null) return;
    dl.appendChild(el("dt", "", name)); dl.appendChild(el("dd", "", value));
  }
  function card(s) {
    var c = el("article", "card " + s.c.replace("/", ""));
    c.setAttribute("data-correct", s.c);
    c.setAttribute("data-task", s.t);
    var head = el("div", "head");
    head.appendChild(el("span", "", runs[s.r].id + " · " + s.t + " · " + s.id));
    head.appendChild(el("span", "badge", s.c));
    c.appendChild(head);
    if (s.q) c.appendChild(el("div", "q", s.q));
    var thumbs = el("div", "thumbs");
    s.img.forEach(function (src) {
      var img = document.createElement("img");
      img.src = src; img.alt = "input image of " + s.id; img.loading = "eager";
      thumbs.appendChild(img);
    });
    if (s.nimg > s.img.length) thumbs.appendChild(el("span", "muted",
      (s.nimg - s.img.length) + " image(s) not available"));
    var hasStrip = s.strip && s.strip !== "missing";  // its first tile is the input already
    if (s.nimg && !hasStrip) c.appendChild(thumbs);
    if (s.strip === "missing") {
      c.appendChild(el("div", "strip muted", "generation strip not available"));
    } else if (s.strip) {
      var fig = el("figure", "strip");
      var strip = document.createElement("img");
      strip.src = s.strip; strip.loading = "eager";
      strip.alt = "input | output | reference of " + s.id;
      fig.appendChild(strip);
      fig.appendChild(el("figcaption", "muted", "input | output | reference"));
      c.appendChild(fig);
    }
    var letters = Object.keys(s.o);
    if (letters.length) {
      var ul = el("ul", "options");
      letters.forEach(function (k) {
        var li = el("li", "", k + ". " + s.o[k]);
        if (k === s.target) { li.className = "target"; li.textContent += "  ✓ target"; }
        if (k === s.parsed) { li.className += " chosen"; li.textContent += "  ← answered"; }
        ul.appendChild(li);
      });
      c.appendChild(ul);
    }
    var dl = el("dl");
    field(dl, "response", s.resp); field(dl, "parsed", s.parsed);
    field(dl, "target", s.target); field(dl, "error", s.err);
    var groupsText = Object.keys(s.g).map(function (k) {
      return k + "=" + s.g[k].join(" | ");
    }).join(", ");
    field(dl, "groups", groupsText);
    var scores = Object.keys(s.s).map(function (k) { return k + "=" + s.s[k]; }).join(", ");
    field(dl, "scores", scores);
    c.appendChild(dl);
    return c;
  }
  function render() {
    var list = document.getElementById("sb-list");
    list.textContent = "";
    var hits = samples.filter(matches);
    hits.slice(0, shown).forEach(function (s) { list.appendChild(card(s)); });
    document.getElementById("sb-count").textContent = hits.length + " of " + samples.length +
      " samples match" + (hits.length > shown ? "; showing " + shown : "");
    document.getElementById("sb-more").hidden = hits.length <= shown;
  }
  [fRun, fTask, fGroup, fCorrect].forEach(function (f) {
    f.addEventListener("change", function () { shown = PAGE; render(); });
  });
  fText.addEventListener("input", function () { shown = PAGE; render(); });
  document.getElementById("sb-more").addEventListener("click", function () {
    shown += PAGE; render();
  });
  render();
})();
"""

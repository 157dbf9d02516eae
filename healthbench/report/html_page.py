"""The leaderboard page's fixed parts: the HTML template, its CSS, its JS and the
Content-Security-Policy that keeps it offline.

``html.py`` renders the tables, plots and sample data that go into the template; this module is
the page around them. The JS sorts tables and drives the sample browser; it reads the sample data
from a JSON script block and inserts model output with ``textContent`` only, never as HTML.
"""
from __future__ import annotations

CSP = ("default-src 'none'; img-src 'self' file: data:; style-src 'unsafe-inline'; "
       "script-src 'unsafe-inline'; base-uri 'none'; form-action 'none'")

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

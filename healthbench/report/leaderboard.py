"""leaderboard.md (and, with ``--html``, a static site) from every ``results/<run-id>/``.

One section per suite (the task folder under ``tasks/``), one table per task in it, runs as rows:
overall micro and macro per group key, intervals, n, model variant and size, harness version.
Runs are ranked together only when they ran the same task version on the same data (same
checksum and sample count): anything else gets a separate table. Numbers from papers (a
``--references`` YAML file) are listed apart, with source and protocol, and never ranked.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

from healthbench.report.references import Reference, format_reference
from healthbench.report.runs import Run, model_size, model_variant, suite_of
from healthbench.results.format import format_value
from healthbench.results.schema import RAW, GroupResult, MetricInfo, MetricValue, TaskResult

PRIMARY = ("accuracy", "micro_f1", "macro_f1", "bleu4", "ssim", "psnr", "exact_match")


def primary_metric(metrics: Iterable[str]) -> str:
    names = list(metrics)
    for name in PRIMARY:
        if name in names:
            return name
    return names[0] if names else "accuracy"


@dataclass(frozen=True)
class Entry:
    """One run's block for one task."""

    run: Run
    task: str
    block: TaskResult

    def metric(self, name: str) -> MetricValue | None:
        return self.block.metric(name)

    def macro(self, key: str, name: str) -> MetricValue | None:
        return self.block.macro_metric(key, name)

    def group(self, key: str, value: str) -> GroupResult | None:
        return self.block.group(key, value)

    def value(self, name: str) -> float | None:
        metric = self.metric(name)
        return None if metric is None else metric.value


@dataclass
class Table:
    """Runs that may be ranked together: one task, one version, one data checksum and size."""

    suite: str
    task: str
    version: str
    data_checksum: str = ""
    n_total: int | None = None
    metric: str = "accuracy"
    entries: list[Entry] = field(default_factory=list)
    references: list[Reference] = field(default_factory=list)
    variant_of_task: bool = False  # another table has the same task and version (other data)
    judge: str = ""  # tasks.<task>.judge.fingerprint: runs judged differently are never ranked
    protocol: str = ""  # tasks.<task>.protocol: runs scored by different protocols never ranked

    @property
    def anchor(self) -> str:
        suffix = f"-{self.data_checksum.split(':')[-1][:8]}" if self.variant_of_task else ""
        suffix += f"-judge-{self.judge[:8]}" if self.judge else ""
        suffix += f"-protocol-{self.protocol}" if self.protocol else ""
        suffix += "" if self.entries else f"-{self.metric}"  # paper numbers only: one per metric
        return f"{self.task}-v{self.version}{suffix}".replace(".", "_")

    @property
    def title(self) -> str:
        text = f"{self.task} (v{self.version})" if self.version != "?" else self.task
        if self.protocol:
            text += f" — protocol {self.protocol}"
        if self.variant_of_task:
            text += f" — data {self.data_checksum.split(':')[-1][:10]}, {self.n_total} samples"
        if self.judge:
            text += f" — judge {self.judge[:10]}"
        return text

    @property
    def metric_info(self) -> dict[str, MetricInfo]:
        """What the runs declared about their metrics (scale, direction)."""
        info: dict[str, MetricInfo] = {}
        for entry in self.entries:
            info.update(entry.block.metric_info)
        return info

    @property
    def info(self) -> MetricInfo:
        """The ranked metric's declaration; a table of paper numbers alone has only theirs."""
        declared = self.metric_info.get(self.metric)
        if declared is None:
            declared = next((r.info for r in self.references if r.metric == self.metric), RAW)
        return declared

    @property
    def group_keys(self) -> list[str]:
        keys: list[str] = []
        for entry in self.entries:
            for key in entry.block.group_keys:
                if key not in keys:
                    keys.append(key)
        for ref in self.references:
            keys += [key for key in ref.groups if key not in keys]
        return keys

    def group_values(self, key: str) -> list[str]:
        values: set[str] = set()
        for entry in self.entries:
            values |= set(entry.block.groups.get(key, {}))
        for ref in self.references:
            values |= set(ref.groups.get(key, {}))
        return sorted(values)

    def ranked(self) -> list[tuple[int | None, Entry]]:
        """Entries best first; equal values share a rank (1, 1, 3); runs without a value for
        the metric come last, unranked."""
        sign = -1.0 if self.info.higher_is_better else 1.0
        scored = [e for e in self.entries if e.value(self.metric) is not None]
        rest = [e for e in self.entries if e.value(self.metric) is None]
        scored.sort(key=lambda e: (sign * e.value(self.metric), e.run.run_id))
        ranked: list[tuple[int | None, Entry]] = []
        for i, entry in enumerate(scored, 1):
            tied = ranked and scored[i - 2].value(self.metric) == entry.value(self.metric)
            ranked.append((ranked[-1][0] if tied else i, entry))
        return ranked + [(None, e) for e in rest]


@dataclass
class Leaderboard:
    tables: list[Table]

    def suites(self) -> dict[str, list[Table]]:
        out: dict[str, list[Table]] = defaultdict(list)
        for table in self.tables:
            out[table.suite].append(table)
        return dict(sorted(out.items()))

    @property
    def runs(self) -> list[Run]:
        seen: dict[str, Run] = {}
        for table in self.tables:
            for entry in table.entries:
                seen.setdefault(str(entry.run.path), entry.run)
        return list(seen.values())


def build_leaderboard(runs: Sequence[Run], references: Sequence[Reference] = ()) -> Leaderboard:
    grouped: dict[tuple[str, str, str, Any, str, str], list[Entry]] = defaultdict(list)
    # Runs in a fixed order (not the caller's), so the rendering depends only on their content.
    for run in sorted(runs, key=lambda r: (r.run_id, str(r.path))):
        for task, block in run.tasks.items():
            key = (task, block.version, block.data_checksum,
                   block.n if block.n_total is None else block.n_total,
                   block.judge_fingerprint, block.protocol or "")
            grouped[key].append(Entry(run, task, block))
    tables: list[Table] = []
    per_version: dict[tuple[str, str], set] = defaultdict(set)
    for task, version, checksum, n_total, _, _ in grouped:
        per_version[(task, version)].add((checksum, n_total))
    for (task, version, checksum, n_total, judge, protocol), entries in sorted(
            grouped.items(), key=lambda kv: str(kv[0])):
        metric = primary_metric(entries[0].block.metrics)
        tables.append(Table(suite=suite_of(task, entries[0].block), task=task, version=version,
                            data_checksum=checksum, n_total=n_total, metric=metric,
                            entries=entries, judge=judge, protocol=protocol,
                            variant_of_task=len(per_version[(task, version)]) > 1))
    for ref in references:
        homes = [t for t in tables if t.entries and t.task == ref.task
                 and (ref.task_version is None or ref.task_version == t.version)]
        if not homes:  # no run of the task: one table of paper numbers per task and metric
            homes = [t for t in tables if not t.entries and t.task == ref.task
                     and t.metric == ref.metric and t.version == (ref.task_version or "?")]
        if not homes:
            home = Table(suite=ref.suite or ref.task, task=ref.task,
                         version=ref.task_version or "?", metric=ref.metric)
            tables.append(home)
            homes = [home]
        for table in homes:
            table.references.append(ref)
    tables.sort(key=lambda t: (t.suite, t.task, t.version, t.data_checksum, t.judge, t.protocol))
    return Leaderboard(tables)


# --- markdown --------------------------------------------------------------------------------

def format_metric(metric: MetricValue | None, info: MetricInfo) -> str:
    """A stored metric (value and interval) as every report shows it; "–" when absent."""
    return "–" if metric is None else format_value(metric.value, metric.ci,
                                                   percent=info.percent)


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _run_facts(entry: Entry) -> list[str]:
    run = entry.run
    return [_cell(run.model.name), _cell(model_variant(run.model) or "–"),
            _cell(model_size(run.model) or "–")]


def render_table(table: Table) -> list[str]:
    lines = [f"### {table.title} — {table.metric}", ""]
    keys = table.group_keys
    if table.entries:
        header = (["rank", "model", "variant", "size", "micro"] +
                  [f"macro ({k})" for k in keys] + ["n", "errors", "harness", "run"])
        lines += ["| " + " | ".join(header) + " |",
                  "|" + "|".join("---:" if h in ("rank", "n", "errors") or h.startswith(
                      ("micro", "macro")) else "---" for h in header) + "|"]
        for rank, entry in table.ranked():
            cells = ([str(rank) if rank else "–"] + _run_facts(entry) +
                     [format_metric(entry.metric(table.metric), table.info)] +
                     [format_metric(entry.macro(k, table.metric), table.info) for k in keys] +
                     [str(entry.block.n), str(entry.block.n_errors),
                      _cell(entry.run.harness_version), f"`{_cell(entry.run.run_id)}`"])
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    else:
        lines += ["No run of this task" + (" version" if table.version != "?" else "") +
                  " in the results folder.", ""]
    for key in keys:
        lines += render_group_table(table, key)
    if table.references:
        lines += render_references(table)
    return lines


def render_group_table(table: Table, key: str) -> list[str]:
    """Runs (in rank order) × the values of one group key; paper numbers below, marked †."""
    values = table.group_values(key)
    refs = [r for r in table.references if key in r.groups and r.metric == table.metric]
    if not values or not (table.entries or refs):
        return []
    lines = [f"By **{key}** ({table.metric}; interval and n per cell):", "",
             "| model | run | " + " | ".join(_cell(v) for v in values) + " |",
             "|---|---|" + "---:|" * len(values)]
    for _, entry in table.ranked():
        cells = []
        for value in values:
            group = entry.group(key, value)
            text = format_metric(None if group is None else group.metrics.get(table.metric),
                                 table.info)
            cells.append(text + (f" n={group.n}" if group is not None else ""))
        lines.append(f"| {_cell(entry.run.model.name)} | "
                     f"`{_cell(entry.run.run_id)}` | " + " | ".join(cells) + " |")
    for ref in refs:
        lines.append(f"| {_cell(ref.model)} † | paper | " + " | ".join(
            format_reference(ref.groups[key].get(v), ref.info) for v in values) + " |")
    return lines + [""]


def render_references(table: Table) -> list[str]:
    lines = ["† Reported in papers — **not reproduced here, not ranked** (their prompts, splits "
             "and scorers may differ from this task's):", "",
             "| model | variant | size | metric | overall | n | source | protocol |",
             "|---|---|---|---|---:|---:|---|---|"]
    for ref in table.references:
        source = f"[{_cell(ref.source)}]({ref.url})" if ref.url else _cell(ref.source)
        lines.append(f"| {_cell(ref.model)} † | {_cell(ref.variant or '–')} | "
                     f"{_cell(ref.size or '–')} | {ref.metric} | "
                     f"{format_reference(ref.value, ref.info)} | "
                     f"{ref.n if ref.n is not None else '–'} | {source} | "
                     f"{_cell(ref.protocol)} |")
    return lines + [""]


def render_markdown(board: Leaderboard) -> str:
    lines = ["# healthbench leaderboard", "",
             "Generated by `healthbench leaderboard` from run folders. Values are % for fraction "
             "metrics, with 95% bootstrap intervals in parentheses; *micro* is over all samples, "
             "*macro (key)* the unweighted mean over that key's groups; n counts scored samples. "
             "Only runs of the same task version on the same data are ranked together. "
             "† marks numbers reported in papers, not reproduced here.", ""]
    if not board.tables:
        lines += ["No runs found.", ""]
    for suite, tables in board.suites().items():
        lines += [f"## {suite}", ""]
        for table in tables:
            lines += render_table(table)
    return "\n".join(lines) + "\n"

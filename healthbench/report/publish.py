"""Publishing a leaderboard: leaderboard.md, and with ``--html`` the static site, from every
``<results>/<run-id>/``. The one place that knows both renderers (markdown in ``leaderboard``,
HTML in ``html``), so neither imports the other's caller."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from healthbench.report.html import write_site
from healthbench.report.leaderboard import build_leaderboard, render_markdown
from healthbench.report.references import load_references, shipped_reference_files
from healthbench.report.runs import load_runs
from healthbench.results.samples import atomic_write_text


def write_leaderboard(results_dir: Path, out: Path, html: Path | None = None,
                      references: Path | None = None, max_samples: int = 300,
                      shipped_references: bool = True) -> Path:
    """Write leaderboard.md (and the HTML site when ``html`` is given); returns ``out``.

    Paper numbers: the files healthbench ships (``references/*.yaml``, the HealthGPT paper's
    tables) unless ``shipped_references`` is False, plus the user's ``references`` file."""
    files = shipped_reference_files() if shipped_references else []
    files += [Path(references)] if references is not None else []
    refs = [ref for path in files for ref in load_references(path)]
    board = build_leaderboard(load_runs(results_dir), refs)
    atomic_write_text(out, render_markdown(board))
    if html is not None:
        write_site(board, html, max_samples=max_samples)
    return out


def main(args: Any) -> int:
    """``healthbench leaderboard RESULTS [--out FILE] [--html DIR] [--references FILE]
    [--no-shipped-references]``."""
    if not Path(args.results).is_dir():
        raise FileNotFoundError(f"{args.results}: no results folder")
    html = getattr(args, "html", None)
    if getattr(args, "max_samples", 300) < 0:
        raise ValueError(f"--max-samples: expected a count >= 0, got {args.max_samples}")
    out = write_leaderboard(args.results, args.out, html=html,
                            references=getattr(args, "references", None),
                            max_samples=getattr(args, "max_samples", 300),
                            shipped_references=not getattr(args, "no_shipped_references", False))
    print(f"wrote {out}" + (f" and {Path(html) / 'index.html'}" if html else ""))
    return 0

"""The ``healthbench`` command: run | tasks | models | show | leaderboard | compare.

Flags follow lm-eval's habits (``--model NAME --model-args k=v,k=v --tasks a,b``). Exit codes:
0 done, 2 bad input (unknown task, malformed YAML, bad model args, missing data, a model lacking a
needed capability), 1 anything else. Errors are one clear line, not a traceback (``--debug``
shows it).
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Sequence

DEFAULT_TASKS = "samples"
DEFAULT_MODEL = "healthgpt"


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _add_run_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=DEFAULT_MODEL,
                   help="registered model name (default: healthgpt; without --model-args its "
                        "tiny random-weight variant)")
    p.add_argument("--model-args", default="", help="k=v,k=v passed to the model plugin")
    p.add_argument("--tasks", default=DEFAULT_TASKS,
                   help="comma-separated task or group names (default: the bundled samples)")
    p.add_argument("--data-root", type=Path, default=None,
                   help="folder holding the benchmarks (default: $HEALTHBENCH_DATA or "
                        "~/.cache/healthbench/data)")
    p.add_argument("--output-path", type=Path, default=None,
                   help="folder of runs (default: results); a run writes nothing outside it")
    p.add_argument("--run-id", default=None,
                   help="re-using a run id resumes that run (letters, digits, '._-')")
    p.add_argument("--resume", type=Path, default=None, metavar="RUN_DIR",
                   help="resume the run in RUN_DIR (skips samples already written)")
    p.add_argument("--batch-size", default="auto", help="N or 'auto'")
    p.add_argument("--limit", type=positive_int, default=None,
                   help="first N samples of each task")
    p.add_argument("--subsample", type=positive_int, default=None, metavar="N",
                   help="deterministic random N samples per task (seeded by --seed)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--permute-options", default=None, metavar="cyclic|N",
                   help="re-ask each multiple-choice question with its options rotated "
                        "(cyclic) or in N seeded permutations; reports consistent accuracy, "
                        "flip rate and position bias (docs/robustness.md)")
    p.add_argument("--device", default=None, help="e.g. cpu, cuda, cuda:1")
    p.add_argument("--include-path", type=Path, action="append", default=[],
                   help="an extra folder of task YAML files (repeatable)")
    p.add_argument("--lmeval-include-path", type=Path, action="append", default=[],
                   help="an extra folder of lm-eval task YAML files, for lmeval:<task> names "
                        "(repeatable)")
    p.add_argument("--allow-task-code", action="store_true",
                   help="let lm-eval task YAML run Python code (!function); only for task "
                        "folders you trust")
    p.add_argument("--allow-download", action="store_true",
                   help="let lm-eval tasks fetch their datasets from the Hugging Face hub")
    p.add_argument("--judge", default=None, metavar="MODEL",
                   help="model plugin that grades open answers for llm_judge metrics, e.g. "
                        "openai (default: none; open answers are reported as not scored)")
    p.add_argument("--judge-args", default="", help="k=v,k=v passed to the judge plugin")
    p.add_argument("--judge-cache", type=Path, default=None, metavar="DIR",
                   help="judge reply cache (default: <output-path>/.judge_cache)")
    p.add_argument("--workers", type=int, default=4, help="image-decoding threads")
    p.add_argument("--no-progress", action="store_true")
    board = p.add_mutually_exclusive_group()
    board.add_argument("--leaderboard", type=Path, default=None, metavar="FILE",
                       help="refresh this leaderboard file from --output-path after the run")
    board.add_argument("--no-leaderboard", action="store_true",
                       help="write no leaderboard (run_eval.py writes one by default)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="healthbench", description=__doc__.split("\n")[0])
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_run_args(sub.add_parser("run", help="evaluate a model on tasks"))
    p = sub.add_parser("tasks", help="list tasks and groups")
    p.add_argument("--include-path", type=Path, action="append", default=[])
    sub.add_parser("models", help="list model plugins (built-in and installed)")
    p = sub.add_parser("show", help="show a task's config, or a run's tables")
    p.add_argument("name", help="task name or run directory")
    p.add_argument("--include-path", type=Path, action="append", default=[])
    p = sub.add_parser("leaderboard", help="write leaderboard.md from a results folder")
    p.add_argument("results", type=Path, nargs="?", default=Path("results"))
    p.add_argument("--out", type=Path, default=Path("leaderboard.md"))
    p.add_argument("--html", type=Path, default=None, metavar="DIR",
                   help="also write a static HTML site (tables, plots, sample browser) here")
    p.add_argument("--references", type=Path, default=None, metavar="FILE",
                   help="YAML of numbers reported in papers, shown apart and marked as such "
                        "(added to the shipped HealthGPT paper tables)")
    p.add_argument("--no-shipped-references", action="store_true",
                   help="leave out the paper numbers healthbench ships (references/*.yaml)")
    p.add_argument("--max-samples", type=int, default=300,
                   help="samples per run and task in the HTML sample browser (default 300)")
    p = sub.add_parser("compare", help="paired comparison of two runs: the CI regression gate "
                                       "(exit 0 pass, 1 regression, 2 not comparable)")
    p.add_argument("baseline", type=Path, help="baseline run directory")
    p.add_argument("new", type=Path, help="new run directory")
    p.add_argument("--margin", type=float, default=1.0,
                   help="drop (points on the %% scale; metric units if not a fraction) that "
                        "fails the gate when significant (default 1.0)")
    p.add_argument("--alpha", type=float, default=0.05, help="family-wise level (Holm)")
    p.add_argument("--junit", type=Path, default=None, help="write JUnit XML here")
    p.add_argument("--markdown", type=Path, default=None, help="write the summary here")
    p.add_argument("--metrics", default=None, help="comma-separated metrics to gate (default all)")
    p.add_argument("--tasks", default=None, help="comma-separated tasks (default: the baseline's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resamples", type=int, default=None, help="bootstrap resamples")
    return parser


def cmd_run(args: argparse.Namespace) -> int:
    from healthbench.data.paths import default_data_root
    from healthbench.run.evaluate import RunSpec, default_run_id, evaluate
    from healthbench.run.lmeval import split_task_names
    from healthbench.models.base import parse_model_args
    from healthbench.run.runner import RunSettings
    from healthbench.scoring.robustness import parse_permutations
    from healthbench.taskconfig.index import TaskIndex

    names, lmeval_tasks = split_task_names(t.strip() for t in args.tasks.split(",") if t.strip())
    index = TaskIndex.build(args.include_path)
    tasks = index.resolve(names)
    from healthbench.core.names import check_name

    if args.resume is not None:
        args.output_path, args.run_id = args.resume.parent, args.resume.name
        if not args.resume.is_dir():
            raise FileNotFoundError(f"--resume: no run directory at {args.resume}")
        check_name(args.run_id, "--resume: the run folder's name")
    elif args.run_id is not None:
        check_name(args.run_id, "--run-id")
    leaderboard = _leaderboard_file(args)
    if args.output_path is None:
        args.output_path = Path("results")
    if args.batch_size != "auto":
        try:
            batch_size: int | str = int(args.batch_size)
            if batch_size < 1:
                raise ValueError
        except ValueError:
            raise ValueError(f"--batch-size: expected a positive integer or 'auto', got "
                             f"{args.batch_size!r}") from None
    else:
        batch_size = "auto"
    from healthbench.run.distributed import rank_and_world

    if args.run_id is None and rank_and_world()[1] > 1:
        raise ValueError("--run-id is required under torchrun/accelerate: every process must "
                         "write to the same run folder")
    spec = RunSpec(
        model=args.model, model_args=parse_model_args(args.model_args), tasks=tasks,
        data_root=args.data_root or default_data_root(), output_path=args.output_path,
        run_id=args.run_id or default_run_id(args.model), seed=args.seed, limit=args.limit,
        subsample=args.subsample,
        device=args.device,
        lmeval_tasks=lmeval_tasks, lmeval_include_paths=args.lmeval_include_path,
        lmeval_allow_task_code=args.allow_task_code, lmeval_allow_download=args.allow_download,
        judge=args.judge, judge_args=parse_model_args(args.judge_args),
        judge_cache=args.judge_cache,
        permute_options=parse_permutations(args.permute_options, "--permute-options"),
        settings=RunSettings(batch_size=batch_size, workers=args.workers,
                             progress=not args.no_progress and sys.stderr.isatty()),
    )
    payload = evaluate(spec)
    if rank_and_world()[0] != 0:
        return 0  # rank 0 reports for the whole sharded run
    run_dir = spec.output_path / spec.run_id
    print((run_dir / "tables.md").read_text(encoding="utf-8"))
    from healthbench.scoring.judge import not_scored_notes

    for note in not_scored_notes(payload):
        print(note)
    errors = sum(t["n_errors"] for t in payload["tasks"].values())
    print(f"run {spec.run_id}: {len(payload['tasks'])} task(s), "
          f"{sum(t['n'] for t in payload['tasks'].values())} samples scored, {errors} errors; "
          f"written to {run_dir}")
    if leaderboard is not None:
        from healthbench.report.publish import write_leaderboard

        print(f"leaderboard: {write_leaderboard(spec.output_path, leaderboard)}")
    failed = [name for name, t in payload["tasks"].items() if t["n"] == 0 and t["n_errors"]]
    if failed:  # nothing scored is a failed run, whatever was written
        print(f"healthbench: error: every sample failed in {', '.join(failed)}; see the "
              f"'error' field in {run_dir}/<task>/samples.jsonl", file=sys.stderr)
        return 1
    return 0


def _leaderboard_file(args: argparse.Namespace) -> Path | None:
    """Where the run's leaderboard goes: ``--leaderboard FILE``; none with ``--no-leaderboard``
    or under plain ``healthbench run``. ``run_eval.py`` (``auto_leaderboard``) refreshes the
    repository's ``leaderboard.md`` only for the default output folder ``results/``; a run with
    ``--output-path DIR`` (or ``--resume DIR/RUN``) gets ``DIR/leaderboard.md``, so it never
    replaces the committed leaderboard with one holding only that run."""
    if args.no_leaderboard:
        return None
    if args.leaderboard is not None or not getattr(args, "auto_leaderboard", False):
        return args.leaderboard
    if args.output_path is None:
        return Path("leaderboard.md")
    return args.output_path / "leaderboard.md"


def cmd_tasks(args: argparse.Namespace) -> int:
    from healthbench.taskconfig.index import TaskIndex

    index = TaskIndex.build(args.include_path)
    for name, task in sorted(index.tasks.items()):
        print(f"{name:28s} v{task.version:6s} {task.output:5s} {task.dataset.format:14s} "
              f"{task.description}")
    for name, group in sorted(index.groups.items()):
        print(f"{name:28s} group  {', '.join(group.tasks)}")
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from healthbench.core.catalog import MODELS

    for name in MODELS.names():
        try:
            cls = MODELS.get(name)
            caps = ", ".join(sorted(getattr(cls, "capabilities", ())))
            doc = (cls.__doc__ or "").strip().split("\n")[0]
        except Exception as exc:  # a broken third-party plugin must not hide the others
            caps, doc = "?", f"(failed to load: {exc})"
        print(f"{name:12s} [{caps}] {doc}")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    path = Path(args.name)
    if path.is_dir() and (path / "tables.md").exists():
        print((path / "tables.md").read_text(encoding="utf-8"))
        return 0
    from healthbench.taskconfig.index import TaskIndex

    index = TaskIndex.build(args.include_path)
    if args.name in index.groups:
        group = index.groups[args.name]
        print(f"group {group.name} ({group.source}): {', '.join(group.tasks)}")
        return 0
    task = index.resolve([args.name])[0]
    print(Path(task.source).read_text(encoding="utf-8"))
    return 0


def cmd_leaderboard(args: argparse.Namespace) -> int:
    from healthbench.report.publish import main

    return main(args)


def cmd_compare(args: argparse.Namespace) -> int:
    from healthbench.report.compare import main

    return main(args)


COMMANDS = {"run": cmd_run, "tasks": cmd_tasks, "models": cmd_models, "show": cmd_show,
            "leaderboard": cmd_leaderboard, "compare": cmd_compare}


def _one_line(exc: BaseException) -> str:
    """An error as one line: a message that spans lines (a library's) is joined, never cut."""
    return " ".join(line.strip() for line in str(exc).splitlines() if line.strip())


def run_eval(argv: Sequence[str]) -> int:
    """``run_eval.py``: ``healthbench run`` that also refreshes a leaderboard (see
    ``_leaderboard_file`` for where)."""
    return main(["run", *argv], auto_leaderboard=True)


def main(argv: Sequence[str] | None = None, auto_leaderboard: bool = False) -> int:
    args = build_parser().parse_args(argv)
    args.auto_leaderboard = auto_leaderboard
    logging.basicConfig(level=logging.INFO if args.debug else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if not args.debug:  # library chatter (deprecations, fallbacks) is not for the user
        import warnings

        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        warnings.filterwarnings("ignore", category=FutureWarning)
        warnings.filterwarnings("ignore", category=DeprecationWarning)
    from healthbench.data.paths import DatasetMissingError, UnsafePathError
    from healthbench.models.base import ModelArgsError
    from healthbench.core.registry import UnknownNameError
    from healthbench.run.runner import CapabilityError
    from healthbench.taskconfig.schema import TaskConfigError

    user_errors = (TaskConfigError, ModelArgsError, UnknownNameError, CapabilityError,
                   DatasetMissingError, UnsafePathError, FileNotFoundError, ValueError)
    try:
        return COMMANDS[args.command](args)
    except BrokenPipeError:  # `healthbench show … | head`: the reader left, nothing is wrong
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except user_errors as exc:
        if args.debug:
            raise
        print(f"healthbench: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except OSError as exc:  # disk full, permissions: one clear line, earlier samples intact
        if args.debug:
            raise
        print(f"healthbench: error: {_one_line(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("healthbench: interrupted; rerun the same command (or --resume) to continue",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

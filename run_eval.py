#!/usr/bin/env python
"""One command: ``python run_eval.py --model NAME --model-args ... --tasks ...``.

A thin wrapper over ``healthbench run``. With no arguments it runs the bundled sample suites on the
built-in tiny model on CPU (about a minute), writes a run under ``results/`` and refreshes
``leaderboard.md``.
"""
import sys
from pathlib import Path

from healthbench.cli import main

if __name__ == "__main__":
    argv = sys.argv[1:]
    if "--leaderboard" not in argv and not any(a.startswith("--leaderboard=") for a in argv):
        argv += ["--leaderboard", str(Path("leaderboard.md"))]
    sys.exit(main(["run", *argv]))

#!/usr/bin/env python
"""One command: ``python run_eval.py --model NAME --model-args ... --tasks ...``.

A thin wrapper over ``healthbench run``. With no arguments it runs the bundled sample suites on the
built-in tiny model on CPU (about a minute), writes a run under ``results/`` and refreshes
``leaderboard.md`` from ``results/``. With ``--output-path DIR`` everything, the leaderboard
included (``DIR/leaderboard.md``), stays inside DIR unless ``--leaderboard FILE`` says otherwise;
``--no-leaderboard`` writes none.
"""
import sys

from healthbench.cli import run_eval

if __name__ == "__main__":
    sys.exit(run_eval(sys.argv[1:]))

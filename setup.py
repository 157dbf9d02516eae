"""Build hook: ships the repository's top-level ``tasks/`` folder inside the package.

``tasks/`` stays the single source of truth in the repository; a (non-editable) build copies
every ``tasks/**/*.yaml`` into ``healthbench/_tasks/`` in the build tree, so wheels carry the task
files as package data. An editable install copies nothing: ``healthbench.taskconfig.index`` reads the
repository's ``tasks/`` folder directly. All other metadata lives in setup.cfg.
"""
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

TASKS_SRC = Path(__file__).resolve().parent / "tasks"
TASKS_PKG_DIR = ("healthbench", "_tasks")
# the paper numbers the default leaderboard shows (healthbench.report.references), shipped alike
REFERENCES_SRC = Path(__file__).resolve().parent / "references"
REFERENCES_PKG_DIR = ("healthbench", "_references")


class build_py_with_tasks(build_py):
    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return
        if not TASKS_SRC.is_dir():
            raise SystemExit(f"{TASKS_SRC}: task folder missing from the source tree")
        dest = Path(self.build_lib, *TASKS_PKG_DIR)
        # start clean: a task deleted from tasks/ must not linger from an earlier build in build/
        shutil.rmtree(dest, ignore_errors=True)
        for path in sorted(TASKS_SRC.rglob("*.yaml")):
            target = dest / path.relative_to(TASKS_SRC)
            self.mkpath(str(target.parent))
            self.copy_file(str(path), str(target))
        refs = Path(self.build_lib, *REFERENCES_PKG_DIR)
        shutil.rmtree(refs, ignore_errors=True)
        for path in sorted(REFERENCES_SRC.glob("*.yaml")):
            self.mkpath(str(refs))
            self.copy_file(str(path), str(refs / path.name))


setup(cmdclass={"build_py": build_py_with_tasks})

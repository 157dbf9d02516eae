"""``healthbench.evaluate``: the Python entry point for people who script, the same run as
``healthbench run`` / ``run_eval.py`` (results.json, samples.jsonl and tables.md are written to
``output_path/run_id``), returning the results as they were written: a typed
:class:`healthbench.results.schema.Results`, the same object ``healthbench.read_results`` gives
for a run folder."""
from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

if TYPE_CHECKING:
    from healthbench.results.schema import Results


def evaluate(model: str, tasks: Sequence[str], *, model_args: Mapping[str, Any] | str | None = None,
             data_root: str | os.PathLike | None = None,
             output_path: str | os.PathLike = "results", run_id: str | None = None,
             seed: int = 0, limit: int | None = None, subsample: int | None = None,
             batch_size: int | str = "auto", device: str | None = None,
             include_paths: Sequence[str | os.PathLike] = ()) -> Results:
    """Run ``model`` on ``tasks`` (task or group names, as ``--tasks`` takes them) and return
    the run's results, typed as results.json's schema (``results.tasks[name].metrics`` …).

    ``model_args`` is a mapping or the CLI's ``"k=v,k=v"`` text. ``data_root`` defaults to
    ``$HEALTHBENCH_DATA`` (then ``./data``), as on the command line. A run folder that exists
    is resumed: samples already in it are not asked again.
    """
    from healthbench.data.paths import default_data_root
    from healthbench.models.base import parse_model_args
    from healthbench.run.evaluate import RunSpec, default_run_id, evaluate_results
    from healthbench.run.runner import RunSettings
    from healthbench.taskconfig.index import TaskIndex

    if isinstance(tasks, str):
        raise TypeError("tasks: expected a list of task names, got one string "
                        f"({tasks!r}); write [{tasks!r}]")
    args = parse_model_args(model_args) if isinstance(model_args, str) or model_args is None \
        else dict(model_args)
    configs = TaskIndex.build([Path(p) for p in include_paths]).resolve(list(tasks))
    spec = RunSpec(model=model, model_args=args, tasks=configs,
                   data_root=Path(data_root) if data_root is not None else default_data_root(),
                   output_path=Path(output_path), run_id=run_id or default_run_id(model),
                   seed=seed, limit=limit, subsample=subsample, device=device,
                   settings=RunSettings(batch_size=batch_size, progress=False),
                   command=f"healthbench.evaluate(model={model!r}, tasks={list(tasks)!r})")
    return evaluate_results(spec)

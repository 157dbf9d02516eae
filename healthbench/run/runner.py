"""Running one task on one model: batch, prefetch images, call the model, stream results.

Flow per task: load samples → skip those already in samples.jsonl (resume) → render prompts →
sort by length (less padding) → batches whose images are decoded by worker threads while the
model works on the previous batch → model call → score → append to samples.jsonl (fsync per
batch). A batch that raises is retried one sample at a time, so one bad sample costs only itself.
"""
from __future__ import annotations

import logging
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterator, Sequence

from healthbench.core.names import require_inside
from healthbench.data.bulk import gc_relaxed
from healthbench.data.images import ImageError, check_image, load_image
from healthbench.data.readahead import advise_reading
from healthbench.run.batching import BatchCaller
from healthbench.run.distributed import barrier, rank_and_world, rank_path, shard_paths
from healthbench.scoring.base import Metric
from healthbench.models.base import Model
from healthbench.taskconfig.prompts import render
from healthbench.results.samples import SamplesWriter, read_samples, rewrite_samples
from healthbench.scoring.score import MODEL_ERROR, SampleScorer, error_result
from healthbench.taskconfig.schema import TaskConfig
from healthbench.core.types import Request, Response, Sample, SampleError, SampleResult

log = logging.getLogger("healthbench")


class CapabilityError(ValueError):
    """The model cannot produce what the task needs; raised before anything runs."""


def check_capabilities(model: Model | frozenset[str], model_name: str,
                       tasks: Sequence[TaskConfig]) -> None:
    """Refuse a task whose output the model cannot produce. ``model`` is a loaded plugin, or
    the capabilities a plugin declares for its arguments (``Model.capabilities_for``) when
    checking before any weight is read."""
    offered = set(model if isinstance(model, frozenset) else model.capabilities)
    for task in tasks:
        needed = {task.output} | ({"loglikelihood"} if task.scorer == "loglikelihood" else set())
        missing = needed - offered
        if missing:
            raise CapabilityError(
                f"model {model_name!r} cannot run task {task.name!r} ({task.source}): it needs "
                f"{', '.join(sorted(missing))} but the model offers "
                f"{', '.join(sorted(offered)) or 'nothing with these arguments'}")


@dataclass
class Pending:
    sample: Sample
    prompt: str
    system: str | None = None


@dataclass
class RunSettings:
    batch_size: int | str = "auto"
    workers: int = 4
    progress: bool = True


def _prepare(task: TaskConfig, items: Sequence[Sample | SampleError], done: set[str],
             writer: SamplesWriter) -> list[Pending]:
    """Pending samples with rendered prompts; loader errors and bad prompts are recorded now."""
    pending: list[Pending] = []
    for item in items:
        if item.id in done:
            continue
        if isinstance(item, SampleError):
            writer.write(error_result(task.name, item, f"bad input: {item.describe()}"))
            continue
        try:
            text, system = render(task.prompt, item)
            pending.append(Pending(item, text, system))
        except Exception as exc:
            writer.write(error_result(task.name, item, f"prompt failed: {exc}"))
    writer.sync()
    return pending


def _batches(pending: list[Pending], size: int) -> list[list[Pending]]:
    ordered = sorted(pending, key=lambda p: (-(len(p.prompt) + 600 * len(p.sample.images)),
                                             p.sample.id))
    return [ordered[i:i + size] for i in range(0, len(ordered), size)]


def _load_batch(task: TaskConfig, batch: list[Pending],
                decode: bool = True) -> list[tuple[Pending, Request | str]]:
    """Decode images (runs in a worker thread); a failing sample carries its error message.

    Without ``decode`` (a model that never looks at pixels) each image's header is checked and
    the request carries no images."""
    out: list[tuple[Pending, Request | str]] = []
    for item in batch:
        try:
            if decode:
                images = tuple(load_image(src) for src in item.sample.images)
            else:
                images = ()
                for src in item.sample.images:
                    check_image(src)
        except ImageError as exc:
            out.append((item, f"bad input: {exc}"))
            continue
        out.append((item, Request(
            task=task.name, sample_id=item.sample.id, prompt=item.prompt, images=images,
            output=task.output, generation=task.generation,  # type: ignore[arg-type]
            choices=tuple(task.choice_template.replace("{letter}", str(letter))
                          .replace("{option}", str(option))
                          for letter, option in item.sample.options.items())
            if task.scorer == "loglikelihood" else (),
            options=dict(item.sample.options), meta=dict(item.sample.meta),
            system=item.system)))
    return out


def _call(model: Model, task: TaskConfig, requests: list[Request]) -> list[Response]:
    fn = model.score_choices if task.scorer == "loglikelihood" else model.generate
    responses = fn(requests)
    if len(responses) != len(requests):
        raise RuntimeError(f"model returned {len(responses)} responses for {len(requests)} "
                           "requests")
    return list(responses)


def _advise(batch: list[Pending], headers_only: bool = False) -> None:
    advise_reading([src for item in batch for src in item.sample.images], headers_only)


def _prefetched(task: TaskConfig, batches: list[list[Pending]], workers: int,
                decode: bool = True) -> Iterator[list[tuple[Pending, Request | str]]]:
    """Yield decoded batches, keeping the next ones decoding in threads meanwhile.

    Header checks (``decode=False``) run inline: they are Python work that holds the GIL, so
    threads only made the main thread wait for it between its writes. The disk reads ahead
    instead: a batch's files are requested (``advise_reading``) a batch before they are
    checked, or as its decoding is queued, so they arrive while earlier batches are worked on."""
    if not batches:
        return
    if not decode:
        _advise(batches[0], headers_only=True)
        for i, batch in enumerate(batches):
            if i + 1 < len(batches):
                _advise(batches[i + 1], headers_only=True)
            yield _load_batch(task, batch, decode)
        return

    def queue(batch: list[Pending]) -> Future:
        _advise(batch)
        return pool.submit(_load_batch, task, batch, decode)

    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="hb-images") as pool:
        ahead = 2
        futures: list[Future] = [queue(b) for b in batches[:ahead]]
        for i in range(len(batches)):
            result = futures[i].result()
            if i + ahead < len(batches):
                futures.append(queue(batches[i + ahead]))
            futures[i] = None  # type: ignore[call-overload]  # free decoded images early
            yield result


def run_task(task: TaskConfig, model: Model, metrics: Sequence[Metric],
             items: Sequence[Sample | SampleError], samples_path: Path,
             settings: RunSettings) -> list[SampleResult]:
    """Run the pending samples of one task; return every record of the task, in dataset order.

    Under torchrun/accelerate each rank runs its share into its own shard file, and rank 0 merges
    the shards into samples.jsonl (see ``healthbench.run.distributed``); other ranks return [].
    """
    rank, world = rank_and_world()
    if world == 1:
        return _run_single(task, model, metrics, items, samples_path, settings)
    if rank == 0:
        _drop_model_errors(samples_path, read_samples(samples_path, repair=True))
    barrier()
    done = set(read_samples(samples_path, repair=rank == 0))
    for shard in shard_paths(samples_path):
        done |= set(read_samples(shard, repair=shard == rank_path(samples_path, rank)))
    mine = [item for i, item in enumerate(items) if i % world == rank]
    _run_items(task, model, metrics, mine, done, rank_path(samples_path, rank), settings)
    barrier()
    if rank == 0:
        _merge_shards(samples_path)
    barrier()
    if rank != 0:
        return []
    return _in_order(read_samples(samples_path), items)


def _run_single(task: TaskConfig, model: Model, metrics: Sequence[Metric],
                items: Sequence[Sample | SampleError], samples_path: Path,
                settings: RunSettings) -> list[SampleResult]:
    """One process: samples.jsonl is read once; the lines this run appends are kept as they
    are written, each exactly as reading it back would give it (``SamplesWriter(keep=...)``)."""
    records = _drop_model_errors(samples_path, read_samples(samples_path, repair=True))
    done = set(records).union(*(read_samples(s) for s in shard_paths(samples_path)))
    _run_items(task, model, metrics, items, done, samples_path, settings, keep=records)
    return _in_order(records, items)


def _in_order(records: dict[str, SampleResult],
              items: Sequence[Sample | SampleError]) -> list[SampleResult]:
    order = {item.id: i for i, item in enumerate(items)}
    return sorted((r for r in records.values() if r.id in order), key=lambda r: order[r.id])


def _drop_model_errors(samples_path: Path,
                       records: dict[str, SampleResult]) -> dict[str, SampleResult]:
    """On resume, samples that failed in the model (a timeout, a dropped connection, an OOM at
    batch 1) are retried: their records are removed before the run continues. Bad inputs and
    scoring failures are deterministic and stay recorded. Returns the records kept."""
    keep = {k: r for k, r in records.items() if not (r.error or "").startswith(MODEL_ERROR)}
    if len(keep) < len(records):
        log.warning("%s: retrying %d sample(s) that failed in the model", samples_path,
                    len(records) - len(keep))
        rewrite_samples(samples_path, keep.values())
    return keep


def _merge_shards(samples_path: Path) -> None:
    """samples.jsonl + every shard → samples.jsonl (atomic), then the shards are removed."""
    merged = read_samples(samples_path)
    shards = shard_paths(samples_path)
    for shard in shards:
        for sample_id, record in read_samples(shard).items():
            merged.setdefault(sample_id, record)
    rewrite_samples(samples_path, merged.values())
    for shard in shards:
        shard.unlink()


def _run_items(task: TaskConfig, model: Model, metrics: Sequence[Metric],
               items: Sequence[Sample | SampleError], done: set[str], samples_path: Path,
               settings: RunSettings, keep: dict[str, SampleResult] | None = None) -> int:
    """Run the items not in ``done``; returns how many records were appended (and adds them
    to ``keep`` when given)."""
    # image outputs keep their inputs: the saved strip shows input | output | reference
    decode = getattr(model, "needs_pixels", True) or task.output == "image"
    # a pixel-free model (replay, random) allocates next to nothing itself: collections only
    # rescan the records piling up (data.bulk.gc_relaxed)
    with (nullcontext() if decode else gc_relaxed()), SamplesWriter(samples_path) as writer:
        writer.keep = keep
        pending = _prepare(task, items, done, writer)
        size = settings.batch_size
        if size == "auto":
            size = model.auto_batch_size([])
        batches = _batches(pending, int(size))
        bar = _progress(task.name, len(pending), settings.progress)
        call = BatchCaller(lambda requests: _call(model, task, requests))
        score = SampleScorer(task, metrics)
        for loaded in _prefetched(task, batches, settings.workers, decode):
            runnable = [(item, req) for item, req in loaded if isinstance(req, Request)]
            for item, req in loaded:
                if isinstance(req, str):
                    writer.write(error_result(task.name, item.sample, req, item.prompt))
            responses = call([req for _, req in runnable]) if runnable else []
            if len(responses) != len(runnable):  # never let zip() drop a sample silently
                raise RuntimeError(f"{len(responses)} responses for {len(runnable)} requests")
            for (item, request), response in zip(runnable, responses):
                if task.output == "image" and response.image is not None:
                    response = _with_strip(samples_path.parent, item.sample, request, response)
                writer.write(score(item.sample, response, item.prompt))
            writer.sync()
            if bar is not None:
                bar.update(len(loaded))
        if bar is not None:
            bar.close()
    return writer.written


def _with_strip(task_dir: Path, sample: Sample, request: Request,
                response: Response) -> Response:
    """Save the generated image losslessly (so the run can be re-scored with ``replay``) and an
    input | output | reference strip for people; note both paths in the response."""
    from healthbench.results.images import save_output, safe_name, save_strip
    from healthbench.core.types import ImageSource

    name = safe_name(sample.id)
    extra = dict(response.extra)
    try:
        require_inside(task_dir, task_dir / "images")  # a symlink there must not lead out
        extra["output"] = str(save_output(task_dir / "images", name, response.image)
                              .relative_to(task_dir))
    except Exception as exc:
        log.warning("could not save the generated image for %s: %s", sample.id, exc)
    rel = Path("images") / f"{name}.png"
    try:
        reference = load_image(sample.target) if isinstance(sample.target, ImageSource) else None
        save_strip(require_inside(task_dir, task_dir / rel), [request.images[0] if request.images else None,
                                    response.image, reference])
        extra["strip"] = str(rel)
    except Exception as exc:  # a strip is a convenience: never fail the sample for it
        log.warning("could not save the image strip for %s: %s", sample.id, exc)
    return replace(response, extra=extra)


def _progress(name: str, total: int, enabled: bool):  # -> tqdm | None
    if not enabled or total == 0:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=name, unit="sample", dynamic_ncols=True)

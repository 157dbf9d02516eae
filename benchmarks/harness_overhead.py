"""What the harness costs over the disk: healthbench with ``replay`` vs. a minimal loop (issue 18).

In one process, for each size n (default 10k and 100k questions of an OmniMedVQA-layout set,
written once under ``--workdir``):

(a) **minimal loop**: reads the same annotation JSONs and the replay responses, extracts the
    answer letter, appends one JSONL line per question with one fsync per batch of 256 —
    the least any harness must do; (a') the same, also reading the first 64 bytes of each
    image (what reporting a missing or unreadable image per sample costs at least), each QA
    file's images requested from the disk at once first (``advise_paths``, as (b) does);
(b) **healthbench** end to end (``run.evaluate.evaluate``, the builtin ``omnimedvqa`` task, the
    ``replay`` model): loading and path checks, prompts, image header checks, the model call,
    answer extraction and scoring, fsync'd samples.jsonl, aggregation with bootstrap intervals
    per modality / question type / access level, results.json and tables;
(c) **resume** of the finished run (the same command again);
(d) with ``--report``: a second run (other responses), then the time to read both runs'
    samples files, ``compare`` of the two runs and ``leaderboard --html`` over them.

Printed and written to ``--out`` (JSON): seconds per phase, the ratio (b)/(a), peak RSS per
phase (sampled every 5 ms; absolute RSS of this process) and the per-stage split of (b).
Images are tiny valid PNGs (the replay model never decodes them; their headers are checked).
Before (a') and (b) the images are dropped from the page cache (``posix_fadvise``, these files
only): both read them from the disk, as a first run does; ``--cache warm`` reads them into the
cache instead, as a repeated run finds them.

    python benchmarks/harness_overhead.py --sizes 10000,100000 --report \\
        --out benchmarks/results/harness_overhead.json
"""
from __future__ import annotations

import argparse
import functools
import io
import json
import os
import platform
import random
import re
import shutil
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

TASK = "omnimedvqa"
BATCH = 256
FILES = 40  # source datasets (QA JSON files / image folders); Open-access has 42
MODALITIES = ["CT(Computed Tomography)", "MR (Mag-netic Resonance Imaging)", "X-Ray",
              "ultrasound", "Dermoscopy", "Fundus Photography",
              "OCT (Optical Coherence Tomography", "Microscopy Images"]
QTYPES = ["Disease Diagnosis", "Anatomy Identification", "Modality Recognition",
          "Other Biological Attributes", "Lesion Grading"]
WORDS = ("lesion nodule opacity fracture effusion edema mass cyst tumor normal benign malignant "
         "left right upper lower lobe region retina skin cell tissue grade stage").split()


def _png() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (32, 32), (90, 120, 150)).save(buf, format="PNG")
    return buf.getvalue()


def write_dataset(root: Path, n: int, seed: int = 0) -> tuple[Path, Path, Path]:
    """``root/data/OmniMedVQA`` with n questions in FILES files, and two replay files."""
    data = root / "data"
    base = data / "OmniMedVQA"
    done = root / "complete"
    replays = (root / "responses_a.jsonl", root / "responses_b.jsonl")
    if done.exists():
        return data, *replays
    shutil.rmtree(root, ignore_errors=True)
    rng = random.Random(seed)
    png = _png()
    qa = base / "QA_information" / "Open-access"
    qa.mkdir(parents=True)
    fhs = [open(p, "w", encoding="utf-8") for p in replays]
    for f in range(FILES):
        name = f"Synth-{f:02d}"
        (base / "Images" / name).mkdir(parents=True)
        rows = []
        for i in range(n // FILES + (f < n % FILES)):
            k = rng.choice((2, 3, 4, 4))
            options = rng.sample(WORDS, k)
            answer = rng.randrange(k)
            image = f"Images/{name}/{i:06d}.png"
            (base / image).write_bytes(png)
            row = {"question": " ".join(rng.choices(WORDS, k=12)) + "?",
                   "gt_answer": options[answer], "image_path": image,
                   "modality_type": MODALITIES[f % len(MODALITIES)],
                   "question_type": rng.choice(QTYPES)}
            row.update({f"option_{'ABCD'[j]}": text for j, text in enumerate(options)})
            rows.append(row)
            for fh, skill in zip(fhs, (0.7, 0.6)):
                pick = answer if rng.random() < skill else rng.randrange(k)
                letter = "ABCD"[pick]
                style = rng.randrange(4)
                response = (letter, f"The answer is ({letter}).", options[pick],
                            "I cannot tell from this image.")[style]
                fh.write(json.dumps({"task": TASK, "id": f"Open-access/{name}/{i}",
                                     "response": response}) + "\n")
        (qa / f"{name}.json").write_text(json.dumps(rows), encoding="utf-8")
    for fh in fhs:
        fh.close()
    done.write_text("ok")
    return data, *replays


_LETTER = re.compile(r"\b([A-D])\b")


def set_image_cache(data: Path, cache: str) -> None:
    """``cold``: drop this dataset's image files from the page cache (``posix_fadvise``, these
    files only), so that the next phase reads them from the disk, as a first run does;
    ``warm``: read them all, as a repeated run finds them. A file written moments ago (a fresh
    dataset) is synced first: the kernel keeps dirty pages whatever the advice."""
    for path in (data / "OmniMedVQA" / "Images").rglob("*.png"):
        if cache == "warm":
            path.read_bytes()
        else:
            drop_from_cache(path)


def drop_from_cache(path: Path) -> None:
    """Sync ``path`` and drop it from the page cache (only this file)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fdatasync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def minimal_loop(data: Path, responses: Path, out: Path, images: bool = False) -> float:
    """(a): annotation JSONs + responses in, one JSONL line per question out; returns accuracy.
    With ``images`` (a'), also reads the first 64 bytes of each question's image: the least a
    harness that must report missing or unreadable images per sample reads. Each QA file's
    images are requested from the disk before its rows are read (the kernel reads them all at
    once), so (a') stays the fastest way to read them and (b)/(a') stays a fair ratio."""
    from healthbench.data.readahead import advise_paths

    folder = data / "OmniMedVQA"

    answers: dict[str, str] = {}
    with open(responses, encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            answers[row["id"]] = row["response"]
    correct = total = pending = 0
    with open(out, "w", encoding="utf-8") as sink:
        for path in sorted((data / "OmniMedVQA/QA_information/Open-access").glob("*.json")):
            rows = json.loads(path.read_text(encoding="utf-8"))
            if images:  # the disk reads this file's headers at once, as healthbench's do
                advise_paths([f"{folder}/{row['image_path']}" for row in rows], 64)
            for i, row in enumerate(rows):
                sid = f"Open-access/{path.stem}/{i}"
                options = {k: row[f"option_{k}"] for k in "ABCD" if f"option_{k}" in row}
                target = next(k for k, v in options.items() if v == row["gt_answer"])
                response = answers.get(sid, "")
                if images:
                    with open(f"{folder}/{row['image_path']}", "rb") as fh:
                        fh.read(64)
                found = _LETTER.search(response)
                parsed = found.group(1) if found else None
                correct += parsed == target
                total += 1
                sink.write(json.dumps({"id": sid, "target": target, "response": response,
                                       "parsed": parsed,
                                       "scores": {"accuracy": float(parsed == target)}}) + "\n")
                pending += 1
                if pending == BATCH:
                    sink.flush()
                    os.fsync(sink.fileno())
                    pending = 0
        sink.flush()
        os.fsync(sink.fileno())
    return correct / max(1, total)


class RssSampler:
    """Peak resident memory of this process, sampled in a thread (Linux /proc)."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    @staticmethod
    def now() -> int:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.now())
            time.sleep(0.005)

    def reset(self) -> None:
        self.peak = self.now()


class Stages:
    """Seconds spent in named functions of healthbench, by patching their module globals."""

    TARGETS = [("healthbench.run.evaluate", "load_task_data", "load + path checks"),
               ("healthbench.run.evaluate", "create_model", "model init (replay file)"),
               ("healthbench.run.evaluate", "run_task", "run task (total)"),
               ("healthbench.run.runner", "read_samples", "  samples.jsonl reads"),
               ("healthbench.run.runner", "_prepare", "  prompts"),
               ("healthbench.scoring.score", "SampleScorer.__call__", "  extract + score"),
               ("healthbench.run.runner", "_load_batch", "  image checks + requests"),
               ("healthbench.run.runner", "_call", "  model calls"),
               ("healthbench.run.evaluate", "summarize_task", "aggregate + bootstrap"),
               ("healthbench.run.evaluate", "write_results", "results.json"),
               ("healthbench.run.evaluate", "write_tables", "tables")]

    def __init__(self) -> None:
        import importlib

        self.seconds: dict[str, float] = {}
        for module_name, attr, label in self.TARGETS:
            owner: Any = importlib.import_module(module_name)
            *path, name = attr.split(".")  # "Class.method" patches the class
            for part in path:
                owner = getattr(owner, part)
            if hasattr(owner, name):
                setattr(owner, name, self._timed(getattr(owner, name), label))

    def _timed(self, fn: Callable, label: str) -> Callable:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds[label] = self.seconds.get(label, 0.0) + time.perf_counter() - t0
        return wrapper

    def take(self) -> dict[str, float]:
        out, self.seconds = {k: round(v, 3) for k, v in self.seconds.items()}, {}
        return out


@contextmanager
def phase(results: dict, name: str, rss: RssSampler) -> Iterator[dict]:
    rss.reset()
    row: dict[str, Any] = {"rss_start_mb": round(rss.now() / 2**20)}
    t0 = time.perf_counter()
    yield row
    row["seconds"] = round(time.perf_counter() - t0, 3)
    time.sleep(0.01)
    row["peak_rss_mb"] = round(rss.peak / 2**20)
    results[name] = row
    print(f"  {name:<22} {row['seconds']:8.2f} s   peak RSS {row['peak_rss_mb']:6d} MB",
          flush=True)


def run_size(n: int, workdir: Path, rss: RssSampler, stages: Stages, report: bool,
             cache: str = "cold") -> dict:
    from healthbench.results.samples import read_samples
    from healthbench.run.evaluate import RunSpec, evaluate
    from healthbench.run.runner import RunSettings
    from healthbench.taskconfig.index import TaskIndex

    root = workdir / f"n{n}"
    t0 = time.perf_counter()
    data, replay_a, replay_b = write_dataset(root, n)
    print(f"n = {n}: dataset ready ({time.perf_counter() - t0:.1f} s)", flush=True)
    out = root / "results"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    task = TaskIndex.build().resolve([TASK])

    def spec(run_id: str, responses: Path) -> Any:
        return RunSpec(model="replay", model_args={"path": str(responses)}, tasks=task,
                       data_root=data, output_path=out, run_id=run_id, command="benchmark",
                       settings=RunSettings(batch_size="auto", progress=False))

    res: dict[str, Any] = {"n": n, "image_cache": cache}
    with phase(res, "minimal_loop", rss) as row:
        row["accuracy"] = minimal_loop(data, replay_a, root / "minimal.jsonl")
    set_image_cache(data, cache)
    with phase(res, "minimal_loop_with_images", rss) as row:
        row["accuracy"] = minimal_loop(data, replay_a, root / "minimal.jsonl", images=True)
    set_image_cache(data, cache)
    stages.take()
    with phase(res, "healthbench", rss) as row:
        payload = evaluate(spec("a", replay_a))
        row["accuracy"] = payload["tasks"][TASK]["metrics"]["accuracy"]["value"]
    res["healthbench"]["stages"] = stages.take()
    with phase(res, "resume_finished", rss):
        evaluate(spec("a", replay_a))
    res["resume_finished"]["stages"] = stages.take()
    if report:
        from healthbench.report.compare import run_compare
        from healthbench.report.publish import write_leaderboard

        evaluate(spec("b", replay_b))
        stages.take()
        with phase(res, "read_both_samples", rss):
            for run_id in ("a", "b"):
                read_samples(out / run_id / TASK / "samples.jsonl")
        with phase(res, "compare", rss):
            run_compare(out / "a", out / "b", markdown=root / "compare.md")
        with phase(res, "leaderboard_html", rss):
            write_leaderboard(out, root / "leaderboard.md", html=root / "site")
    a, b = res["minimal_loop"]["seconds"], res["healthbench"]["seconds"]
    res["ratios"] = {"healthbench_over_minimal": round(b / a, 2),
                     "healthbench_over_minimal_with_images": round(
                         b / res["minimal_loop_with_images"]["seconds"], 2),
                     "resume_over_run": round(res["resume_finished"]["seconds"] / b, 3)}
    if report:
        base = res["read_both_samples"]["seconds"]
        res["ratios"].update(compare_over_reading=round(res["compare"]["seconds"] / base, 2),
                             leaderboard_over_reading=round(
                                 res["leaderboard_html"]["seconds"] / base, 2))
    print(f"  ratios: {res['ratios']}", flush=True)
    return res


def machine() -> dict[str, Any]:
    import subprocess

    info: dict[str, Any] = {"python": platform.python_version(), "platform": platform.platform(),
                            "cpus": os.cpu_count()}
    try:
        model = [ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo")
                 if ln.startswith("model name")]
        info["cpu"] = model[0] if model else platform.processor()
        mem = [ln for ln in open("/proc/meminfo") if ln.startswith("MemTotal")]
        info["memory_gb"] = round(int(mem[0].split()[1]) / 2**20, 1)
        info["load_average"] = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        pass
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True,
                             text=True, timeout=10).stdout.strip()
        info["git_sha"] = sha or "unknown"
    except (OSError, subprocess.SubprocessError):
        info["git_sha"] = "unknown"
    return info


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10000,100000", help="comma-separated n")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/healthbench_overhead"))
    parser.add_argument("--report", action="store_true", help="also time compare/leaderboard")
    parser.add_argument("--out", type=Path, default=None, help="write the JSON here")
    parser.add_argument("--cache", choices=("cold", "warm"), default="cold",
                        help="images dropped from (cold) or read into (warm) the page cache "
                             "before (a') and (b)")
    args = parser.parse_args(argv)
    import logging

    logging.getLogger("healthbench").setLevel(logging.ERROR)
    rss = RssSampler()
    stages = Stages()
    result = {"machine": machine(), "batch": BATCH, "task": TASK, "sizes": []}
    for n in (int(s) for s in args.sizes.split(",")):
        result["sizes"].append(run_size(n, args.workdir, rss, stages, args.report, args.cache))
    result["peak_rss_mb_process"] = round(
        __import__("resource").getrusage(__import__("resource").RUSAGE_SELF).ru_maxrss / 1024)
    write_json(args.out, result)
    return result


def write_json(out: Path | None, result: dict[str, Any]) -> None:
    """The benchmark's record as indented JSON at ``out`` (nothing when None)."""
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()

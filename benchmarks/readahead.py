"""What asking the disk ahead (``healthbench.data.readahead``) saves on image reads (issue 18).

The runner's own image stage (``run.runner._prefetched``) with the hint switched off and on,
alternating the two twice, each cold (the files dropped from the page cache, as on a first run)
and warm:

* **headers**: each image of ``harness_overhead.py``'s OmniMedVQA-layout set (written there if
  missing) checked by its header, in batches of 256, as for models that never look at pixels;
* **decoding**: ``--decode-n`` 512×512 PNGs decoded by the runner's 4 threads, batches of 16.

    python benchmarks/readahead.py --out benchmarks/results/readahead.json
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from harness_overhead import (drop_from_cache, machine, write_dataset,  # noqa: E402
                              write_json)

BATCH = 256


def _timed(fn: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    fn()
    return round(time.perf_counter() - t0, 3)


def runner_reads(paths: list[str], batch: int, decode: bool) -> dict[str, dict[str, list[float]]]:
    """The runner's own image stage (``run.runner._prefetched``: header checks inline, or
    decoding in 4 threads) over ``paths`` in batches of ``batch``, the hint off and on."""
    from healthbench.core.types import ImageSource, Sample
    from healthbench.run import runner

    class Task:  # what _load_batch reads of a task
        name, output, generation, scorer, choice_template = "t", "text", None, "generate", ""

    items = [runner.Pending(Sample(id=str(i), question="q", images=(ImageSource(path=Path(p)),),
                                   options={}, target="A", meta={}), "q")
             for i, p in enumerate(paths)]
    batches = [items[i:i + batch] for i in range(0, len(items), batch)]
    real = runner.advise_reading

    def run(advise: Callable[..., None]) -> Callable[[], None]:
        def go() -> None:
            runner.advise_reading = advise
            try:
                stage = runner._prefetched(Task, batches, 4, decode)  # type: ignore[arg-type]
                for loaded in stage:
                    assert all(not isinstance(req, str) for _, req in loaded)
            finally:
                runner.advise_reading = real
        return go

    return _alternate({"hint off": run(lambda *a, **k: None), "hint on": run(real)}, paths)


def _alternate(ways: dict[str, Callable[[], None]],
               paths: list[str]) -> dict[str, dict[str, list[float]]]:
    out: dict[str, dict[str, list[float]]] = {name: {"cold": [], "warm": []} for name in ways}
    for _ in range(2):
        for name, fn in ways.items():
            for path in paths:
                drop_from_cache(Path(path))
            out[name]["cold"].append(_timed(fn))
            out[name]["warm"].append(_timed(fn))
            print(f"  {name:<9} cold {out[name]['cold'][-1]:6.2f} s   warm "
                  f"{out[name]['warm'][-1]:6.2f} s", flush=True)
    return out


def decode_images(root: Path, n: int) -> list[Path]:
    import numpy as np
    from PIL import Image

    root.mkdir(parents=True, exist_ok=True)
    base = (np.random.default_rng(0).random((512, 512)) * 255).astype(np.uint8)
    paths = []
    for i in range(n):
        path = root / f"{i}.png"
        if not path.exists():
            Image.fromarray(np.roll(base, i, axis=0)).save(path)
        paths.append(path)
    return paths


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/healthbench_overhead"))
    parser.add_argument("--n", type=int, default=100_000, help="images for the header reads")
    parser.add_argument("--decode-n", type=int, default=2000, help="images to decode")
    parser.add_argument("--out", type=Path, default=None, help="write the JSON here")
    args = parser.parse_args(argv)
    data, _, _ = write_dataset(args.workdir / f"n{args.n}", args.n)
    images = sorted(str(p) for p in (data / "OmniMedVQA" / "Images").rglob("*.png"))
    print(f"headers of {len(images)} images", flush=True)
    result: dict[str, Any] = {"machine": machine(), "batch": BATCH,
                              "headers": {"n": len(images),
                                          **runner_reads(images, BATCH, decode=False)}}
    decoded = decode_images(args.workdir / "decode", args.decode_n)
    print(f"decoding {len(decoded)} images of {decoded[0].stat().st_size} bytes", flush=True)
    result["decoding"] = {"n": len(decoded), "bytes_each": decoded[0].stat().st_size,
                          **runner_reads([str(p) for p in decoded], 16, decode=True)}
    write_json(args.out, result)
    return result


if __name__ == "__main__":
    main()

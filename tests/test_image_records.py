"""Input images are recorded in samples.jsonl as data (file, frame, window, transform), and the
sample browser builds thumbnails from those records: a super-resolution input (down-scaled) and
a windowed DICOM slice get thumbnails of what the model saw."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from healthbench.core.types import ImageSource, Sample, SampleResult
from healthbench.data.images import load_image
from healthbench.report.browser import Thumbnails, legacy_source, sample_rows
from healthbench.report.runs import load_run
from healthbench.results.samples import SamplesWriter
from healthbench.scoring.score import summarize_inputs


def _sources(tmp_path: Path) -> dict[str, ImageSource]:
    from pydicom.data import get_testdata_file

    png = tmp_path / "data" / "lowres.png"
    png.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (64, 48), dtype=np.uint8)).save(png)
    return {"sr": ImageSource(path=png, downscale=4, label="input"),
            "ct": ImageSource(path=Path(get_testdata_file("CT_small.dcm")), frame=0,
                              window=(-160.0, 240.0))}


def test_image_records_round_trip(tmp_path: Path) -> None:
    for source in _sources(tmp_path).values():
        record = json.loads(json.dumps(source.to_record()))
        assert ImageSource.from_record(record) == source
    sr = _sources(tmp_path)["sr"].to_record()
    assert sr["transform"] == {"downscale": 4} and sr["file"].endswith("lowres.png")
    assert ImageSource.from_record({"file": None, "bytes": 12}) is None


def _run_with(tmp_path: Path, sources: dict[str, ImageSource]) -> Path:
    run_dir = tmp_path / "out" / "r"
    records = []
    for sample_id, source in sources.items():
        sample = Sample(id=sample_id, question="?", images=(source,), target="x")
        records.append(SampleResult(id=sample_id, task="t", target="x", response="x",
                                    parsed="x", scores={}, meta={},
                                    inputs=summarize_inputs(sample, "?")))
    with SamplesWriter(run_dir / "t" / "samples.jsonl") as writer:
        writer.write_all(records)
    (run_dir / "results.json").write_text(json.dumps(
        {"schema_version": 1, "run_id": "r", "model": {"name": "m", "args": {}},
         "harness": {"version": "0"}, "tasks": {"t": {"version": "1", "n": 2}}}))
    return run_dir


def test_super_resolution_and_windowed_dicom_inputs_get_thumbnails(tmp_path: Path) -> None:
    sources = _sources(tmp_path)
    run_dir = _run_with(tmp_path, sources)
    stored = [json.loads(line) for line in
              (run_dir / "t" / "samples.jsonl").read_text().splitlines()]
    assert all(isinstance(image, dict) for row in stored for image in row["inputs"]["images"])
    site = tmp_path / "site"
    thumbs = Thumbnails(site)
    _, rows, _ = sample_rows([load_run(run_dir)], [], thumbs, max_samples=10)
    urls = {row["id"]: row["img"] for row in rows}
    assert all(len(u) == 1 for u in urls.values()) and thumbs.failed == 0
    # each thumbnail is the image the model got: the x4 down-scaled input, the windowed slice
    for sample_id, source in sources.items():
        with Image.open(site / urls[sample_id][0]) as thumb:
            shown = np.asarray(thumb.convert("RGB"))
        expected = load_image(source)
        expected.thumbnail((192, 192))
        assert shown.shape[:2] == (expected.height, expected.width)
        assert np.array_equal(shown, np.asarray(expected.convert("RGB")))
    with Image.open(site / urls["sr"][0]) as thumb:
        assert thumb.size == (12, 16)  # 48 x 64 down-scaled x4
    unwindowed = np.asarray(load_image(ImageSource(path=sources["ct"].path, frame=0)))
    assert not np.array_equal(np.asarray(Image.open(site / urls["ct"][0]).convert("RGB")),
                              unwindowed)
    # the old display text could not be parsed back: these inputs got no thumbnail
    assert all(legacy_source(s.describe()) is None for s in sources.values())

"""Full-size suites at the speed of the disk (issue 18): the fast paths give the old answers.

Each fast path is checked against the straightforward computation it replaces: cached path
checks against ``Path.resolve`` per row, the header-only image check against a full decode.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from healthbench.data import paths
from healthbench.data.paths import UnsafePathError, resolve_inside


def _old_resolve_inside(root: Path, relative: str) -> Path:
    """resolve_inside before issue 18: the whole path resolved on every row."""
    root_real = root.resolve()
    full = (root / relative).resolve()
    if full != root_real and root_real not in full.parents:
        raise UnsafePathError("outside")
    return full


def _tree(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    (root / "Images" / "a").mkdir(parents=True)
    (root / "Images" / "a" / "x.png").write_bytes(b"x")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "s.png").write_bytes(b"s")
    (root / "Images" / "in_link").symlink_to(root / "Images" / "a")
    (root / "Images" / "out_link").symlink_to(tmp_path / "outside")
    (root / "Images" / "a" / "file_in.png").symlink_to(root / "Images" / "a" / "x.png")
    (root / "Images" / "a" / "file_out.png").symlink_to(tmp_path / "outside" / "s.png")
    (root / "Images" / "a" / "chain.png").symlink_to("file_out.png")
    return root


RELATIVES = ["Images/a/x.png", "Images/in_link/x.png", "Images/out_link/s.png",
             "Images/a/file_in.png", "Images/a/file_out.png", "Images/a/chain.png",
             "Images/a/missing.png", "Images/nofolder/y.png", "top.png", ".", "Images/./a/x.png"]


@pytest.mark.parametrize("relative", RELATIVES)
def test_cached_path_checks_give_the_old_answers(tmp_path: Path, relative: str) -> None:
    root = _tree(tmp_path)
    for _ in range(2):  # the second call is served from the cache
        try:
            expected: Path | str = _old_resolve_inside(root, relative)
        except UnsafePathError:
            expected = "refused"
        try:
            got: Path | str = resolve_inside(root, relative, "f.json item 0")
        except UnsafePathError as exc:
            assert "resolves outside the data root" in str(exc)
            got = "refused"
        assert got == expected


def test_a_folder_swapped_for_an_outside_link_is_refused_after_caching(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    assert resolve_inside(root, "Images/a/x.png", "w") == (root / "Images/a/x.png").resolve()
    os.rename(root / "Images" / "a", tmp_path / "moved")
    (root / "Images" / "a").symlink_to(tmp_path / "outside")
    with pytest.raises(UnsafePathError, match="outside the data root"):
        resolve_inside(root, "Images/a/s.png", "w")


def test_each_folder_is_resolved_once(tmp_path: Path, monkeypatch) -> None:
    root = tmp_path / "root"
    for folder in ("a", "b", "c"):
        (root / folder).mkdir(parents=True)
    paths._REAL_DIRS.clear()
    calls = []
    realpath = os.path.realpath
    monkeypatch.setattr(os.path, "realpath", lambda p, *a, **k: calls.append(p) or
                        realpath(p, *a, **k))
    for i in range(300):
        resolve_inside(root, f"{'abc'[i % 3]}/{i}.png", "w")
    assert len(calls) == 4  # the root and three folders


# ---- models that never look at pixels ----------------------------------------------------------

def _toy_run(tmp_path: Path, model, run_id: str, extra_rows: tuple[str, ...] = ()) -> list[dict]:
    """Records of a run of ``model`` on 13 images: 10 good, one missing, one garbage, one cut
    short; ``extra_rows``: image paths of further rows, without files (first run only)."""
    import json

    from healthbench.run.evaluate import RunSpec, evaluate
    from healthbench.run.runner import RunSettings
    from healthbench.taskconfig.index import TaskIndex
    from tests.helpers import omnimed_item, task_yaml, write_omnimed

    data = tmp_path / "data"
    if not (data / "OmniMedVQA").exists():
        names = [f"Images/x/{i}.png" for i in range(10)] + ["Images/x/missing.png",
                                                              "Images/x/garbage.png",
                                                              "Images/x/truncated.png"]
        base = write_omnimed(data, [omnimed_item(n) for n in names + list(extra_rows)],
                             images=False)
        from tests.helpers import write_png

        for name in names[:10]:
            write_png(base / name, seed=len(name))
        (base / "Images/x/garbage.png").write_bytes(b"not an image at all")
        write_png(base / "Images/x/truncated.png", seed=1, size=(200, 200))
        full = (base / "Images/x/truncated.png").read_bytes()
        (base / "Images/x/truncated.png").write_bytes(full[: len(full) // 2])
        (tmp_path / "tasks").mkdir()
        (tmp_path / "tasks" / "toy.yaml").write_text(task_yaml())
    tasks = TaskIndex.build([tmp_path / "tasks"], builtin=False).resolve(["toy"])
    evaluate(RunSpec(model="random", model_args={}, tasks=tasks, data_root=data,
                     output_path=tmp_path / "out", run_id=run_id,
                     settings=RunSettings(batch_size=4, progress=False)), model=model)
    lines = (tmp_path / "out" / run_id / "toy" / "samples.jsonl").read_text().splitlines()
    return sorted((json.loads(line) for line in lines), key=lambda r: r["id"])


def test_pixel_free_models_get_no_images_and_the_same_results(tmp_path: Path,
                                                              monkeypatch) -> None:
    from healthbench.models.baselines import RandomModel
    from healthbench.run import runner

    class Looking(RandomModel):
        needs_pixels = True

    decoded = _toy_run(tmp_path, Looking(), "decoded")
    seen: list[tuple] = []

    class Blind(RandomModel):
        def generate(self, requests):
            seen.extend(r.images for r in requests)
            return super().generate(requests)

    def no_decoding(src):
        raise AssertionError("a pixel-free model's images were decoded")

    monkeypatch.setattr(runner, "load_image", no_decoding)
    checked = _toy_run(tmp_path, Blind(), "checked")
    assert seen and all(images == () for images in seen)
    by_id = {r["id"]: r for r in checked}
    truncated = [r["id"] for r in decoded if "truncated" in str(r.get("error"))]
    assert len(truncated) == 1
    # Documented difference: damage past a readable header is only seen by decoding models.
    assert by_id[truncated[0]]["error"] is None
    for record in decoded:
        if record["id"] not in truncated:
            assert by_id[record["id"]] == record
    errors = {r["id"]: r["error"] for r in checked if r["error"]}
    assert len(errors) == 2 and all("missing.png" in e or "garbage.png" in e
                                    for e in errors.values())


def test_headers_are_requested_a_batch_ahead_of_their_checks(tmp_path: Path,
                                                             monkeypatch) -> None:
    """The disk reads ahead for pixel-free models: when batch k is checked, the headers of
    batch k+1 have been requested too (13 samples, batches of 4)."""
    from healthbench.models.baselines import RandomModel
    from healthbench.run import runner

    events: list[tuple[str, str]] = []
    real_advise, real_check = runner.advise_reading, runner.check_image

    def advise(sources, headers_only=False):
        assert headers_only
        sources = list(sources)
        events.extend(("advise", str(s.path)) for s in sources)
        real_advise(sources, headers_only)

    def check(src):
        events.append(("check", str(src.path)))
        real_check(src)

    monkeypatch.setattr(runner, "advise_reading", advise)
    monkeypatch.setattr(runner, "check_image", check)
    _toy_run(tmp_path, RandomModel(), "ahead")
    checked = [path for kind, path in events if kind == "check"]
    assert len(checked) == 13
    for k in range(0, 13, 4):  # the first check of batch k/4
        before = {path for kind, path in events[:events.index(("check", checked[k]))]
                  if kind == "advise"}
        assert set(checked[:k + 8]) <= before, k  # this batch and the next one


def test_decoded_batches_are_requested_as_their_decoding_is_queued(tmp_path: Path,
                                                                   monkeypatch) -> None:
    from healthbench.data import images
    from healthbench.models.baselines import RandomModel
    from healthbench.run import runner

    class Looking(RandomModel):
        needs_pixels = True

    events: list[tuple[str, str]] = []

    def advise(sources, headers_only=False):
        assert not headers_only  # whole files: they are decoded
        events.extend(("advise", str(s.path)) for s in sources)

    def load(src):
        events.append(("load", str(src.path)))
        return images.load_image(src)

    monkeypatch.setattr(runner, "advise_reading", advise)
    monkeypatch.setattr(runner, "load_image", load)
    _toy_run(tmp_path, Looking(), "decoded")
    loaded = [path for kind, path in events if kind == "load"]
    assert len(loaded) == 13  # every sample, the missing image too (its load fails)
    for path in loaded:
        assert events.index(("advise", path)) < events.index(("load", path))


def test_advising_skips_what_it_cannot_open(tmp_path: Path, monkeypatch) -> None:
    from healthbench.core.types import ImageSource
    from healthbench.data import readahead

    if readahead._WILLNEED is None:
        pytest.skip("no posix_fadvise on this platform")
    (tmp_path / "a.png").write_bytes(b"x")
    (tmp_path / "v.nii.gz").write_bytes(b"x")
    calls: list[tuple[int, int, int]] = []
    monkeypatch.setattr(os, "posix_fadvise",
                        lambda fd, offset, length, advice: calls.append((offset, length, advice)))
    nul = ImageSource(path=tmp_path / "nul\0byte.png")  # os.open raises ValueError, not OSError
    assert readahead._all_cached([nul.path, tmp_path / "absent.png"]) is False  # none opened
    monkeypatch.setattr(readahead, "_all_cached", lambda paths: False)
    sources = [ImageSource(path=tmp_path / "a.png"), ImageSource(path=tmp_path / "absent.png"),
               ImageSource(data=b"bytes"), ImageSource(path=tmp_path), nul,
               ImageSource(path=tmp_path / "v.nii.gz")]
    readahead.advise_reading(sources, headers_only=True)
    # the files and the folder (its advice is refused by the kernel, not by us), nothing else
    assert calls == [(0, readahead.HEADER_BYTES, os.POSIX_FADV_WILLNEED)] * 3
    calls.clear()
    readahead.advise_reading(sources)  # whole files, but not a NIfTI volume
    assert calls == [(0, 0, os.POSIX_FADV_WILLNEED)] * 2


@pytest.mark.parametrize("pixels", [False, True])
def test_an_image_path_with_a_nul_byte_costs_only_its_sample(tmp_path: Path, monkeypatch,
                                                             pixels: bool) -> None:
    """The hint runs (as on a cold cache) over a path no file can have; the run goes on and
    the sample is recorded as bad input, as without the hint."""
    from healthbench.data import readahead
    from healthbench.models.baselines import RandomModel

    class Model(RandomModel):
        needs_pixels = pixels

    monkeypatch.setattr(readahead, "_all_cached", lambda paths: False)
    records = _toy_run(tmp_path, Model(), "nul", extra_rows=("Images/x/a\0b.png",))
    errors = [r["error"] for r in records]
    # 10 good images, and the truncated one where only its header is checked
    assert len(errors) == 14 and sum(e is None for e in errors) == (10 if pixels else 11)
    assert sum(bool(e) and "null byte" in e for e in errors) == 1


def test_a_batch_found_in_the_page_cache_is_not_advised(tmp_path: Path, monkeypatch) -> None:
    """The probe: files just read are cached and cost no hint (the real kernel's answer); one
    probed file whose read would wait gets the batch advised (that answer simulated: a real
    uncached file is timing-dependent, as the probe itself starts reading it back)."""
    import errno

    from healthbench.core.types import ImageSource
    from healthbench.data import readahead

    if readahead._WILLNEED is None or readahead._NOWAIT is None:
        pytest.skip("no posix_fadvise / RWF_NOWAIT on this platform")
    paths = [tmp_path / f"{i}.png" for i in range(5)]
    for path in paths:
        path.write_bytes(b"x" * 100)
        path.read_bytes()
    fd = os.open(paths[0], os.O_RDONLY)
    try:
        os.preadv(fd, [bytearray(1)], 0, readahead._NOWAIT)
    except OSError as exc:  # tmpfs, for one, refuses it: every batch is advised there
        pytest.skip(f"this file system refuses RWF_NOWAIT reads ({exc})")
    finally:
        os.close(fd)
    advised: list[int] = []
    monkeypatch.setattr(os, "posix_fadvise",
                        lambda fd, offset, length, advice: advised.append(advice))
    sources = [ImageSource(path=p) for p in paths]
    readahead.advise_reading(sources, headers_only=True)
    assert advised == []

    opened: dict[int, Path] = {}
    real_open, real_preadv = readahead._open, os.preadv

    def tracked_open(path):
        fd = real_open(path)
        if fd is not None:
            opened[fd] = Path(path)
        return fd

    def preadv(fd, buffers, offset, flags):
        if opened.get(fd) == paths[2]:  # the middle file, one of the three probed
            raise BlockingIOError(errno.EAGAIN, "the read would wait for the disk")
        return real_preadv(fd, buffers, offset, flags)

    monkeypatch.setattr(readahead, "_open", tracked_open)
    monkeypatch.setattr(os, "preadv", preadv)
    readahead.advise_reading(sources, headers_only=True)
    assert advised == [os.POSIX_FADV_WILLNEED] * 5


def test_header_check_accepts_what_decoding_accepts_for_dicom_and_nifti(tmp_path: Path) -> None:
    import nibabel as nib
    import numpy as np
    from pydicom.data import get_testdata_file

    from healthbench.core.types import ImageSource
    from healthbench.data.images import ImageError, check_image, load_image

    nii = tmp_path / "v.nii.gz"
    nib.save(nib.Nifti1Image(np.arange(60, dtype=np.float32).reshape(3, 4, 5), np.eye(4)), nii)
    for path in (Path(get_testdata_file("CT_small.dcm")), nii):
        load_image(ImageSource(path=path))
        check_image(ImageSource(path=path))
    for bad in (tmp_path / "absent.dcm", tmp_path / "junk.nii"):
        if bad.name == "junk.nii":
            bad.write_bytes(b"junk")
        with pytest.raises(ImageError):
            check_image(ImageSource(path=bad))
        with pytest.raises(ImageError):
            load_image(ImageSource(path=bad))


# ---- answer parsing without per-response regex compilation ---------------------------------------

def _old_option_text_matches(text: str, options: dict[str, str]) -> list[str]:
    """``extract._option_text_matches`` before issue 18 (a regex built per option and call)."""
    import re

    def norm_(t: str) -> str:
        return re.sub(r"[\s\W_]+", " ", str(t).lower()).strip()

    norm = norm_(text)
    if not norm:
        return []
    exact = [k for k, v in options.items() if norm_(v) and norm_(v) == norm]
    if exact:
        return exact
    hits = {k: norm_(v) for k, v in options.items()
            if norm_(v) and re.search(rf"(?<!\w){re.escape(norm_(v))}(?!\w)", norm)}
    return [k for k, v in hits.items()
            if not any(v != w and re.search(rf"(?<!\w){re.escape(v)}(?!\w)", w)
                       for w in hits.values())]


def test_option_text_matching_agrees_with_the_regex_version() -> None:
    import random

    from healthbench.scoring.extract import _option_text_matches

    rng = random.Random(18)
    words = ["pneumonia", "viral", "viral pneumonia", "CT", "MRI", "x-ray", "X_ray", "Ödem",
             "İris", "naïve", "c++", "3.5cm", "a", "", "  ", "T1/T2", "no finding", "edema",
             "ß", "ǅ", "١٢", "over", "the"]
    seps = [" ", ", ", ". ", "-", "_", "\n", "(", ")", "**", " / ", ""]
    checked = 0
    for _ in range(3000):
        options = {letter: rng.choice(words) for letter in "ABCD"[:rng.randint(2, 4)]}
        text = "".join(rng.choice(words) + rng.choice(seps) for _ in range(rng.randint(0, 6)))
        assert _option_text_matches(text, options) == _old_option_text_matches(text, options), \
            (text, options)
        checked += bool(_old_option_text_matches(text, options))
    assert checked > 500  # the fuzz reaches the matching branches, not only empty answers


def test_plain_rows_are_written_as_the_converting_path_writes_them() -> None:
    import json

    import numpy as np

    from healthbench.results import samples

    def converting(row):
        return json.dumps(samples._finite(json.loads(json.dumps(row, default=samples._json_default))),
                          ensure_ascii=False, allow_nan=False)

    rows = [{"id": "a/1", "scores": {"accuracy": 1.0, "x": 0.1 + 0.2}, "meta": {"k": [1, "é", None]},
             "target": ("A", 2), "response": "naïve \u2028 \"q\"", "parsed": True, 3: 4},
            {"id": "b", "scores": {"ssim": float("nan"), "psnr": float("inf")}},
            {"id": "c", "scores": {"n": np.int64(3), "f": np.float32(0.5), "b": np.bool_(True)},
             "arr": np.arange(3), "path": __import__("pathlib").Path("x/y"), "s": {1}}]
    for row in rows:
        assert samples.dumps(row) == converting(row)


# ---- resume of a finished run ------------------------------------------------------------------

def test_resume_of_a_finished_run_is_a_no_op_that_says_so(tmp_path: Path, monkeypatch,
                                                          caplog) -> None:
    import logging

    from healthbench.models.baselines import RandomModel
    from healthbench.results import samples as samples_io
    from healthbench.run import evaluate as evaluate_module
    from healthbench.run import runner

    _toy_run(tmp_path, RandomModel(), "r")
    run_dir = tmp_path / "out" / "r"
    results = (run_dir / "results.json").read_bytes()
    tables_mtime = (run_dir / "tables.md").stat().st_mtime_ns
    reads: list[int] = []
    real_read = samples_io.read_samples

    def counting_read(path, repair=False, offset=0):
        reads.append(offset)
        return real_read(path, repair=repair, offset=offset)

    def no_aggregation(*args, **kwargs):
        raise AssertionError("a current results.json was aggregated again")

    monkeypatch.setattr(runner, "read_samples", counting_read)
    monkeypatch.setattr(evaluate_module, "summarize_task", no_aggregation)
    with caplog.at_level(logging.WARNING, logger="healthbench"):
        payload = _toy_run(tmp_path, RandomModel(), "r") and \
            __import__("json").loads((run_dir / "results.json").read_text())
    assert reads == []  # recognised as finished without parsing samples.jsonl (nor loading
    # the dataset: tests/test_finished_resume.py)
    assert "nothing to do" in caplog.text
    assert (run_dir / "results.json").read_bytes() == results
    assert (run_dir / "tables.md").stat().st_mtime_ns == tables_mtime
    assert payload["tasks"]["toy"]["n_total"] == 13


def test_resume_with_new_samples_aggregates_again_like_a_clean_run(tmp_path: Path) -> None:
    import json

    from healthbench.models.baselines import RandomModel

    _toy_run(tmp_path, RandomModel(), "clean")
    _toy_run(tmp_path, RandomModel(), "cut")
    samples = tmp_path / "out" / "cut" / "toy" / "samples.jsonl"
    lines = samples.read_text().splitlines(keepends=True)
    samples.write_text("".join(lines[:5]))  # as if killed after five samples
    _toy_run(tmp_path, RandomModel(), "cut")

    def metrics(run_id: str) -> dict:
        block = json.loads((tmp_path / "out" / run_id / "results.json").read_text())["tasks"]
        return {k: block["toy"][k] for k in ("n", "n_errors", "metrics", "groups", "macro")}

    assert metrics("cut") == metrics("clean")


# ---- records kept as written -------------------------------------------------------------------

def test_kept_records_equal_what_reading_back_gives(tmp_path: Path) -> None:
    """The writer's kept records are what ``read_samples`` builds from the same lines, with the
    same types, for plain rows and for every kind of row JSON changes on the way."""
    import numpy as np

    from healthbench.core.types import SampleResult
    from healthbench.results.samples import SamplesWriter, read_samples

    def rec(i: int, **kw) -> SampleResult:
        base = dict(id=f"s{i}", task="t", target="A", response="A", parsed="A",
                    scores={"accuracy": 1.0}, meta={"g": "x", "n": [1, 2.5, None, True]},
                    error=None, inputs={"options": {"A": "yes"}, "images": []})
        return SampleResult(**{**base, **kw})

    records = [rec(0), rec(1, target=("A", "B")), rec(2, scores={"ssim": float("nan")}),
               rec(3, parsed=np.float64(0.5)), rec(4, meta={1: "int key"}),
               rec(5, scores={"x": np.float32(0.25)}), rec(6, response=["a", ("b",)]),
               rec(7, inputs={"path": Path("x/y")}), rec(8, error="bad input: x", scores={}),
               rec(0, target="B")]  # a repeated id: the first one wins, as when reading
    kept: dict[str, SampleResult] = {}
    path = tmp_path / "samples.jsonl"
    with SamplesWriter(path, keep=kept) as writer:
        for record in records:
            writer.write(record)
    back = read_samples(path)
    assert list(kept) == list(back)

    def typed(value):  # equality that also compares types, all the way down
        if isinstance(value, dict):
            return {typed(k): typed(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return (type(value).__name__, [typed(v) for v in value])
        if isinstance(value, float) and value != value:
            return ("nan",)
        return (type(value).__name__, value)

    for key in back:
        assert typed(kept[key].to_json()) == typed(back[key].to_json()), key
    assert kept["s0"] is records[0]  # plain records are kept as they are, not parsed again

"""Outputs independent of batch composition: image outputs, option likelihoods and text of the
built-in tiny models are bit-identical at batch sizes 1 and 3, and a resume that splits a batch
equals the uninterrupted run (docs/models.md says which plugins guarantee this)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from healthbench.models.base import create_model
from healthbench.run.evaluate import RunSpec, evaluate
from healthbench.run.runner import RunSettings
from healthbench.taskconfig.index import TaskIndex

#: samples per task; image generation on the CPU is slow (1024 image tokens each), so 2 there
TASKS = {"reconstruction_sample": 2, "omnimedvqa_sample_likelihood": 4, "vqa_rad_sample": 3}


def _records(run_dir: Path, task: str) -> dict[str, dict]:
    lines = (run_dir / task / "samples.jsonl").read_text().splitlines()
    return {r["id"]: r for r in map(json.loads, lines)}


def _run(model, model_name: str, task: str, data_root: Path, out: Path, run_id: str,
         batch: int) -> Path:
    spec = RunSpec(model=model_name, model_args={"batch_invariant": True}, tasks=TaskIndex.build().resolve([task]),
                   data_root=data_root, output_path=out, run_id=run_id, limit=TASKS[task],
                   settings=RunSettings(batch_size=batch, workers=1, progress=False))
    evaluate(spec, model=model)
    return out / run_id


@pytest.fixture(scope="module")
def healthgpt():
    model = create_model("healthgpt", {"batch_invariant": True}, device="cpu")
    model.close = lambda: None  # one model for all the runs of this module
    return model


@pytest.mark.parametrize("task", list(TASKS))
def test_healthgpt_outputs_do_not_depend_on_the_batch(healthgpt, task, sample_data_root,
                                                       tmp_path) -> None:
    assert healthgpt.batch_invariant and healthgpt.describe()["batch_invariant"]
    one = _run(healthgpt, "healthgpt", task, sample_data_root, tmp_path, "b1", 1)
    three = _run(healthgpt, "healthgpt", task, sample_data_root, tmp_path, "b3", TASKS[task])
    a, b = _records(one, task), _records(three, task)
    assert len(a) == TASKS[task] and a == b  # responses, choice scores, SSIM/PSNR: every bit
    if task == "reconstruction_sample":  # the saved generated images too
        for name in sorted(p.name for p in (one / task / "images").glob("*.output.*")):
            assert (one / task / "images" / name).read_bytes() == \
                (three / task / "images" / name).read_bytes()
    if task == "omnimedvqa_sample_likelihood":
        assert all(r["response"] for r in a.values()) and not any(r["error"] for r in a.values())


def test_a_resume_that_splits_a_batch_equals_the_uninterrupted_run(healthgpt, sample_data_root,
                                                                   tmp_path) -> None:
    task = "omnimedvqa_sample_likelihood"
    whole = _run(healthgpt, "healthgpt", task, sample_data_root, tmp_path, "whole", 4)
    cut = tmp_path / "cut"  # killed after the first line of the batch of 4 was written
    (cut / task).mkdir(parents=True)
    shutil.copy(whole / "run.json", cut / "run.json")
    first = (whole / task / "samples.jsonl").read_text().splitlines(keepends=True)[0]
    (cut / task / "samples.jsonl").write_text(first)
    _run(healthgpt, "healthgpt", task, sample_data_root, tmp_path, "cut", 4)  # resumes 3 of 4
    assert _records(cut, task) == _records(whole, task)
    assert json.loads((cut / "results.json").read_text())["tasks"][task]["metrics"] == \
        json.loads((whole / "results.json").read_text())["tasks"][task]["metrics"]


def test_tiny_likelihoods_do_not_depend_on_the_batch(sample_data_root, tmp_path) -> None:
    from healthbench.models.tiny import TinyVLM

    model = TinyVLM()
    task = "omnimedvqa_sample_likelihood"
    one = _run(model, "tiny", task, sample_data_root, tmp_path, "t1", 1)
    three = _run(model, "tiny", task, sample_data_root, tmp_path, "t3", 3)
    assert _records(one, task) == _records(three, task)


def test_sampled_generation_uses_a_seed_per_sample_not_per_batch() -> None:
    from healthbench.core.types import GenerationParams, Request
    from healthbench.models.base import each_alone, sample_seed

    import torch

    def draw(requests):
        from healthbench.core.types import Response
        return [Response(text=str(torch.randint(0, 10**9, (1,)).item())) for _ in requests]

    reqs = [Request(task="t", sample_id=str(i), prompt="p",
                    generation=GenerationParams(temperature=1.0)) for i in range(4)]
    torch.manual_seed(123)
    state = torch.random.get_rng_state()
    forward = [r.text for r in each_alone(draw, reqs, seed=0)]
    backward = [r.text for r in each_alone(draw, reqs[::-1], seed=0)][::-1]
    assert forward == backward and len(set(forward)) == 4  # order and neighbours do not matter
    assert torch.equal(torch.random.get_rng_state(), state)  # the global RNG is left as it was
    assert sample_seed(0, reqs[0]) != sample_seed(1, reqs[0])

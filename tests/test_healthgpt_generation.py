"""Image generation on the tiny HealthGPT, index-count errors, and task switching.

Generating one image takes 1025 decoding steps, so the fresh generation model's images are made
once (module fixture, in a fresh process) and shared by the tests that need them.
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from plugin_fixtures import noise_image, one_torch_thread

torch = pytest.importorskip("torch")

from healthbench.models.base import create_model
from healthbench.models.healthgpt.imagegen import parse_image_tokens
from healthbench.core.types import GenerationParams, Request

TEXT = [Request(task="t", sample_id=f"q{i}", prompt="Which organ is shown? " * (i + 1),
                images=tuple(noise_image(i) for _ in range(i % 2)),
                generation=GenerationParams(max_new_tokens=8)) for i in range(3)]
CHOICES = [Request(task="t", sample_id="c", prompt="The answer is", images=(noise_image(5),),
                   choices=("CT", "MRI", "X-ray"))]
IMAGES = [Request(task="t", sample_id=f"g{i}", prompt="Reconstruct the image.",
                  images=(noise_image(20 + i, (48 + 16 * i, 40)),), output="image")
          for i in range(2)]
SEED = 3  # not the default: the fresh processes and the switching model must agree on it

# Reference outputs from a model in a process that never ran anything else. Requests come from
# this module, so both sides see identical inputs; one torch thread on both sides.
FRESH_SCRIPT = r"""
import json, sys
import numpy as np
import torch
torch.set_num_threads(1)
from healthbench.models.base import create_model
from test_healthgpt_generation import CHOICES, IMAGES, SEED, TEXT
kind, out = sys.argv[1], sys.argv[2]
model = create_model("healthgpt", {"seed": SEED})
if kind == "text":
    answers = model.generate(TEXT)
    scores = model.score_choices(CHOICES)
    assert all(r.error is None for r in answers + scores)
    json.dump({"text": [r.text for r in answers],
               "scores": [list(r.choice_scores) for r in scores]}, open(out, "w"))
else:
    images = model.generate(IMAGES)
    assert all(r.error is None for r in images), [r.error for r in images]
    np.savez(out, *[r.image for r in images])
"""


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread():
    with one_torch_thread():
        yield


@pytest.fixture(scope="module")
def fresh_process(tmp_path_factory) -> dict:
    """Text answers, choice scores and images, each kind from its own fresh process (the two
    run side by side)."""
    folder = tmp_path_factory.mktemp("fresh")
    here = Path(__file__).resolve().parent
    path = os.pathsep.join([str(here.parent), str(here), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1"}
    outs = {"text": folder / "text.json", "images": folder / "images.npz"}
    procs = {kind: subprocess.Popen([sys.executable, "-c", FRESH_SCRIPT, kind, str(out)],
                                    env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                    text=True)
             for kind, out in outs.items()}
    for kind, proc in procs.items():
        log, _ = proc.communicate(timeout=300)
        assert proc.returncode == 0, log
    text = json.loads(outs["text"].read_text())
    with np.load(outs["images"]) as npz:
        images = [npz[f"arr_{i}"] for i in range(len(IMAGES))]
    return {**text, "images": images}


@pytest.fixture(scope="module")
def fresh_images(fresh_process):
    """Generation from a model in a process that never ran anything else."""
    return fresh_process["images"]


def test_generation_returns_a_256_pixel_image_per_request(fresh_images):
    assert len(fresh_images) == 2
    for image in fresh_images:
        assert image.shape == (256, 256, 3) and image.dtype == np.uint8
    assert not np.array_equal(fresh_images[0], fresh_images[1])


@pytest.mark.parametrize("count", [1023, 1025])
def test_a_wrong_number_of_indices_is_a_per_sample_error(count, monkeypatch):
    model = create_model("healthgpt", {})
    net = model.net
    first, end = net.first_index_id, net.end_index_id
    good = [first + (k * 37) % 8192 for k in range(1024)] + [end]
    bad = [first + k for k in range(count)] + [end]
    monkeypatch.setattr(model, "_generate_image_tokens", lambda requests: [good, bad, good])
    out = model.generate([IMAGES[0], IMAGES[1], IMAGES[0]])
    assert out[0].image.shape == (256, 256, 3) and out[2].image.shape == (256, 256, 3)
    assert np.array_equal(out[0].image, out[2].image)
    assert out[1].image is None
    assert f"produced {count} image indices" in out[1].error and "exactly 1024" in out[1].error


def test_index_parsing_rules():
    first, codebook, stops = 100, 16, [9, 7]
    assert parse_image_tokens([100, 101, 115, 9, 5], first, codebook, 4, stops) == \
        "image generation produced 3 image indices; expected exactly 4"
    assert parse_image_tokens([100, 115, 103, 102, 7, 7], first, codebook, 4, stops) == \
        [0, 15, 3, 2]
    assert "non-index token" in parse_image_tokens([100, 50, 101, 102, 103, 9], first,
                                                   codebook, 4, stops)
    assert "non-index token" in parse_image_tokens([100, 116, 101, 102, 9], first,
                                                   codebook, 4, stops)
    assert "before reaching the token limit" in parse_image_tokens([100] * 5, first,
                                                                   codebook, 4, stops)


def test_unconstrained_decoding_reports_errors_not_crashes():
    model = create_model("healthgpt", {"constrained_image_decoding": False})
    model.image_max_new_tokens = 20          # random weights never emit 1024 indices; stay fast
    out = model.generate(IMAGES[:1])
    assert out[0].image is None and "expected exactly 1024" in out[0].error


def digest(image: np.ndarray) -> str:
    return hashlib.sha256(f"{image.shape}{image.dtype}".encode() + image.tobytes()).hexdigest()


def test_switching_tasks_gives_the_outputs_of_fresh_processes(fresh_process):
    switching = create_model("healthgpt", {"seed": SEED})
    first_text = switching.generate(TEXT)
    images = switching.generate(IMAGES)
    again_text = switching.generate(TEXT)
    again_scores = switching.score_choices(CHOICES)

    assert all(r.error is None for r in first_text + images + again_text + again_scores)
    assert [r.text for r in first_text] == fresh_process["text"]
    assert [digest(r.image) for r in images] == [digest(i) for i in fresh_process["images"]]
    assert [r.text for r in again_text] == fresh_process["text"]
    # the scores as the fresh process wrote them (JSON round trip is exact for floats)
    assert json.loads(json.dumps([list(r.choice_scores) for r in again_scores])) == \
        fresh_process["scores"]


def test_the_seed_matters(fresh_process):
    """The comparison above is not vacuous: another seed answers differently."""
    other = create_model("healthgpt", {"seed": SEED + 1})
    assert [list(r.choice_scores) for r in other.score_choices(CHOICES)] != \
        fresh_process["scores"]


def test_mixed_batch_keeps_request_order(fresh_images, monkeypatch):
    model = create_model("healthgpt", {})
    net = model.net
    fixed = [net.first_index_id + k for k in range(1024)] + [net.end_index_id]
    monkeypatch.setattr(model, "_generate_image_tokens", lambda requests: [fixed] * len(requests))
    out = model.generate([TEXT[0], IMAGES[0], TEXT[1]])
    assert out[0].text is not None and out[2].text is not None and out[1].image is not None
    assert [out[0].text, out[2].text] == [r.text for r in model.generate(TEXT[:2])]

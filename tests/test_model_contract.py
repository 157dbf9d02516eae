"""The contract every model plugin honours (models/base.py), checked the same way for each.

Like scikit-learn's ``check_estimator``: one suite, parametrized over every built-in plugin that
runs offline. To add a plugin, append one ``PluginCase`` line to ``CASES``: a name, a context
manager that yields the model (built from anything under a tmp folder), and optionally a request
that this plugin must fail on its own (to check that errors stay per sample).

What is checked, for every plugin:
* capabilities are declared from the known set;
* one Response per Request, each with an answer (text, or an image for image-only plugins) or
  an error, in request order (a reversed batch gives the reversed answers);
* batch-size invariance: a batch gives what the same requests give one at a time;
* loglikelihood: declared → one finite score per choice, order and batch invariant; not declared
  → ``score_choices`` refuses;
* image output: declared → an image array per request;
* errors stay per sample: a failing request costs only itself (either the plugin answers it with
  ``Response.error``, or the batch raises and the runner's one-at-a-time retry isolates it).
"""
from __future__ import annotations

import contextlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, ContextManager, Iterator

import numpy as np
import pytest
from plugin_fixtures import ChatServer, build_tiny_llava, noise_image, one_torch_thread

from healthbench.models.base import CAPABILITIES, Model, create_model
from healthbench.core.types import GenerationParams, Request, Response

GEN = GenerationParams(max_new_tokens=4)
OPTIONS = {"A": "CT", "B": "MRI", "C": "X-ray", "D": "Ultrasound"}


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread():
    with one_torch_thread():
        yield


def text_requests() -> list[Request]:
    """Five requests of different lengths with 0, 1 or 2 images each."""
    return [Request(task="contract", sample_id=f"t{i}",
                    prompt="Which imaging modality was used? " * (1 + i % 3) + f"(case {i})",
                    images=tuple(noise_image(10 * i + j) for j in range(i % 3)),
                    options=OPTIONS, generation=GEN)
            for i in range(5)]


def choice_requests() -> list[Request]:
    return [Request(task="contract", sample_id=f"c{i}", prompt=f"Question {i}: The answer is",
                    images=tuple(noise_image(100 + i) for _ in range(i % 2)),
                    choices=("CT", " MRI", " a chest X-ray"), options=OPTIONS)
            for i in range(3)]


def image_requests() -> list[Request]:
    """Image-output requests (reconstruction style), inputs of different sizes."""
    return [Request(task="contract", sample_id=f"g{i}", prompt="Reconstruct the image.",
                    images=(noise_image(7 + i, (40 + 8 * i, 48)),), output="image")
            for i in range(3)]


def main_requests(model: Model) -> list[Request]:
    """What the plugin mainly produces: text requests, or image requests for image-only ones."""
    return text_requests() if "text" in model.capabilities else image_requests()


# ---------------------------------------------------------------------------- plugin cases


@dataclass(frozen=True)
class PluginCase:
    name: str
    build: Callable[[Path], ContextManager[Model]]
    failing: Callable[[], Request] | None = None


def simple(name: str, **args) -> Callable[[Path], ContextManager[Model]]:
    """A plugin created from its registry name and arguments alone."""
    @contextlib.contextmanager
    def build(tmp: Path) -> Iterator[Model]:
        model = create_model(name, args)
        try:
            yield model
        finally:
            model.close()
    return build


@contextlib.contextmanager
def replay_model(tmp: Path) -> Iterator[Model]:
    rows = [{"task": "contract", "id": r.sample_id, "response": f"answer {r.sample_id}"}
            for r in text_requests()]
    rows += [{"task": "contract", "id": r.sample_id, "response": [-1.0, -2.0, -0.5]}
             for r in choice_requests()]
    rows += [{"task": "contract", "id": r.sample_id, "response": np.zeros((4, 4)).tolist()}
             for r in image_requests()]
    path = tmp / "replay.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    yield create_model("replay", {"path": str(path)})


@contextlib.contextmanager
def hf_tiny_llava(tmp: Path) -> Iterator[Model]:
    model = create_model("hf", {"pretrained": str(build_tiny_llava(tmp / "llava"))})
    try:
        yield model
    finally:
        model.close()


@contextlib.contextmanager
def openai_local(tmp: Path) -> Iterator[Model]:
    with ChatServer() as server:
        model = create_model("openai", {"model": "tiny", "base_url": server.base_url,
                                        "timeout": 5, "max_retries": 1, "backoff": 0.01})
        try:
            yield model
        finally:
            model.close()


def no_input_image() -> Request:
    return Request(task="contract", sample_id="empty", prompt="Reconstruct.", output="image")


def undecodable_image() -> Request:
    return Request(task="contract", sample_id="bad", prompt="Which modality?",
                   images=("not an image",), generation=GEN)


CASES = [
    PluginCase("random", simple("random", seed=0)),
    PluginCase("replay", replay_model,
               failing=lambda: Request(task="contract", sample_id="missing", prompt="?")),
    PluginCase("tiny", simple("tiny", seed=0), failing=undecodable_image),
    PluginCase("healthgpt-tiny", simple("healthgpt", variant="tiny", seed=0),
               failing=undecodable_image),
    PluginCase("hf-tiny-llava", hf_tiny_llava, failing=undecodable_image),
    PluginCase("openai-local", openai_local,
               failing=lambda: Request(task="contract", sample_id="x", prompt="ALWAYS_FAIL")),
    PluginCase("identity", simple("identity", size=32), failing=no_input_image),
    PluginCase("bicubic", simple("bicubic", size=32), failing=no_input_image),
]


@pytest.fixture(scope="module", params=CASES, ids=[c.name for c in CASES])
def case(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    plugin: PluginCase = request.param
    with plugin.build(tmp_path_factory.mktemp(plugin.name)) as model:
        yield plugin, model


# ---------------------------------------------------------------------------- helpers


def key(response: Response) -> tuple:
    """What must agree between two calls: the answer, the scores, whether it failed."""
    scores = None if response.choice_scores is None else \
        tuple(round(s, 4) for s in response.choice_scores)
    image = None if response.image is None else np.asarray(response.image).tobytes()
    return response.text, scores, image, response.error is None


def resilient(call: Callable[[list[Request]], list[Response]],
              requests: list[Request]) -> list[Response]:
    """The batch; if it raises, each request alone (what the runner does)."""
    try:
        return call(requests)
    except Exception:
        out = []
        for request in requests:
            try:
                out.extend(call([request]))
            except Exception as exc:
                out.append(Response(error=f"{type(exc).__name__}: {exc}"))
        return out


# ---------------------------------------------------------------------------- the contract


def test_capabilities_are_declared_from_the_known_set(case):
    _, model = case
    assert set(model.capabilities) <= set(CAPABILITIES)
    assert model.capabilities & {"text", "image"}


def test_one_response_per_request_with_an_answer_or_error(case):
    _, model = case
    requests = main_requests(model)
    out = model.generate(requests)
    assert len(out) == len(requests)
    for request, response in zip(requests, out):
        assert isinstance(response, Response)
        answer = response.text if request.output == "text" else response.image
        assert answer is not None or response.error


def test_order_is_kept(case):
    _, model = case
    requests = main_requests(model)
    forward = model.generate(requests)
    backward = model.generate(requests[::-1])
    assert [key(r) for r in backward] == [key(r) for r in forward][::-1]


def test_batch_size_does_not_change_answers(case):
    _, model = case
    requests = main_requests(model)
    batched = model.generate(requests)
    single = [model.generate([r])[0] for r in requests]
    assert [key(r) for r in batched] == [key(r) for r in single]


def test_loglikelihood_capability_is_honoured(case):
    _, model = case
    requests = choice_requests()
    if "loglikelihood" not in model.capabilities:
        with pytest.raises(NotImplementedError):
            model.score_choices(requests)
        return
    out = model.score_choices(requests)
    assert len(out) == len(requests)
    for request, response in zip(requests, out):
        assert response.error is None
        assert len(response.choice_scores) == len(request.choices)
        assert all(math.isfinite(s) for s in response.choice_scores)
    single = [model.score_choices([r])[0] for r in requests[::-1]][::-1]
    assert [key(r) for r in single] == [key(r) for r in out]


def test_image_output_capability_is_honoured(case):
    _, model = case
    if "image" not in model.capabilities:
        pytest.skip("no image output (the runner refuses such tasks before running)")
    out = model.generate(image_requests())
    assert len(out) == 3
    for response in out:
        assert response.error is None and np.asarray(response.image).ndim in (2, 3)


def test_a_failing_request_costs_only_itself(case):
    plugin, model = case
    if plugin.failing is None:
        pytest.skip("this plugin has no request that fails")
    good = main_requests(model)[:2]
    batch = [good[0], plugin.failing(), good[1]]
    out = resilient(model.generate, batch)
    assert len(out) == 3
    assert out[1].error
    assert [key(out[0]), key(out[2])] == [key(model.generate([g])[0]) for g in good]
    assert out[0].error is None and out[2].error is None

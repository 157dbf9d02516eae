"""The healthgpt speed paths give the same answers as the plain ones (tiny model, CPU).

Shared-prefix choice scoring vs one whole row per choice, option letters (single-token choices:
one forward per request), static KV cache vs dynamic, batch padding to a multiple, threaded
image preprocessing vs one call, and the full-size random-weight shapes (built on the meta
device: no memory). torch.compile paths need a GPU and are measured by benchmarks/throughput.py.
"""
from __future__ import annotations

import pytest
from plugin_fixtures import noise_image, one_torch_thread

torch = pytest.importorskip("torch")

from healthbench.models.base import ModelArgsError, create_model
from healthbench.core.types import GenerationParams, Request


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread():
    with one_torch_thread():
        yield


@pytest.fixture(scope="module")
def model():
    return create_model("healthgpt", {})


def choice_requests(choices: tuple[str, ...]) -> list[Request]:
    return [Request(task="t", sample_id=f"c{i}", prompt="Which organ is shown? " * (1 + i % 3),
                    images=tuple(noise_image(i) for _ in range(i % 2)), choices=choices)
            for i in range(5)]


def whole_row_scores(model, requests):
    net = model.net
    rows, images, conts = [], [], []
    for request in requests:
        rows.append(net.prompt_segments(request.prompt, len(request.images), len(images)))
        images.extend(request.images)
        conts.append([list(net.tokenizer(c, add_special_tokens=False)["input_ids"])
                      for c in request.choices])
    with torch.inference_mode():
        return model._whole_row_scores(rows, images, conts)


@pytest.mark.parametrize("choices", [(" A", " B", " C", " D"),
                                     (" CT.", " MRI.", " a chest X-ray.", ""),
                                     ("CT", " Ultrasound of the knee.")])
def test_shared_prefix_scores_equal_one_row_per_choice(model, choices):
    requests = choice_requests(choices)
    model._need("comprehension")
    tokenizer = model.net.tokenizer
    lengths = {len(tokenizer(c, add_special_tokens=False)["input_ids"]) for c in choices}
    assert max(lengths) >= 1
    got = [r.choice_scores for r in model.score_choices(requests)]
    want = whole_row_scores(model, requests)
    for g, w in zip(got, want):
        assert g == pytest.approx(w, abs=1e-4)
    alone = [model.score_choices([r])[0].choice_scores for r in requests]
    for g, a in zip(got, alone):
        assert g == pytest.approx(a, abs=1e-4)


def test_letters_are_single_tokens_and_cost_one_forward(model, monkeypatch):
    tokenizer = model.net.tokenizer
    assert all(len(tokenizer(f" {x}", add_special_tokens=False)["input_ids"]) == 1
               for x in "ABCD")
    calls = []
    body = model.net.llm.model.forward
    monkeypatch.setattr(model.net.llm.model, "forward",
                        lambda *a, **k: calls.append(1) or body(*a, **k))
    model.score_choices(choice_requests((" A", " B", " C", " D")))
    assert len(calls) == 1


def test_padding_to_a_multiple_changes_nothing(model):
    requests = choice_requests((" A", " MRI.", " a chest X-ray."))
    gen = [Request(task="t", sample_id=f"g{i}", prompt=r.prompt, images=r.images,
                   generation=GenerationParams(max_new_tokens=5)) for i, r in enumerate(requests)]
    plain_scores = [r.choice_scores for r in model.score_choices(requests)]
    plain_text = [r.text for r in model.generate(gen)]
    model.net.pad_multiple = 64
    try:
        padded_scores = [r.choice_scores for r in model.score_choices(requests)]
        padded_text = [r.text for r in model.generate(gen)]
    finally:
        model.net.pad_multiple = 1
    for p, q in zip(plain_scores, padded_scores):
        assert p == pytest.approx(q, abs=1e-4)
    assert padded_text == plain_text


def test_static_cache_generates_what_the_dynamic_cache_does():
    static = create_model("healthgpt", {"cache_implementation": "static"})
    dynamic = create_model("healthgpt", {})
    requests = [Request(task="t", sample_id=f"r{i}", prompt="Which part of the body? " * (1 + i),
                        images=tuple(noise_image(i) for _ in range(i % 2)),
                        generation=GenerationParams(max_new_tokens=6)) for i in range(3)]
    assert [r.text for r in static.generate(requests)] == \
        [r.text for r in dynamic.generate(requests)]
    assert static.describe()["cache_implementation"] == "static"


def test_threaded_preprocessing_equals_one_call(model):
    pre = model.net.preprocess
    images = [noise_image(i, (40 + 9 * i, 70 + 3 * i)) for i in range(37)]
    old = pre.workers
    try:
        pre.workers = 4
        threaded = pre(images)
        pre.workers = 1
        single = pre(images)
    finally:
        pre.workers = old
    assert torch.equal(threaded, single)


def test_speed_arguments_are_checked():
    with pytest.raises(ModelArgsError, match="cache_implementation"):
        create_model("healthgpt", {"cache_implementation": "paged"})
    with pytest.raises(ModelArgsError, match="GPU"):
        create_model("healthgpt", {"compile": True, "device": "cpu"})
    assert create_model("healthgpt", {}).auto_batch_size([]) == 8   # CPU: the default


@pytest.mark.skipif(not torch.cuda.is_available(),
                    reason="torch.compile paths need a GPU (the plugin refuses compile on CPU)")
def test_compiled_paths_equal_eager():
    """compile=true (static-cache decode step, compiled scoring body) answers as eager does
    (float32, so bf16 rounding cannot flip a greedy token)."""
    args = {"device": "cuda", "dtype": "float32", "cache_implementation": "static"}
    compiled = create_model("healthgpt", {**args, "compile": True})
    eager = create_model("healthgpt", args)
    generation = [Request(task="t", sample_id=f"g{i}", prompt="Which part of the body? " * (1 + i),
                          images=tuple(noise_image(i) for _ in range(i % 2)),
                          generation=GenerationParams(max_new_tokens=6)) for i in range(3)]
    assert [r.text for r in compiled.generate(generation)] == \
        [r.text for r in eager.generate(generation)]
    for choices in (("A", "B", "C", "D"), ("liver", "left kidney", "spleen")):
        requests = choice_requests(choices)
        fast, slow = compiled.score_choices(requests), eager.score_choices(requests)
        assert all(r.error is None for r in fast + slow)
        for a, b in zip(fast, slow):
            assert a.choice_scores == pytest.approx(b.choice_scores, abs=1e-3)
    assert compiled.describe().get("compile") is True


@pytest.mark.parametrize("name, params, vocab, hidden, layers", [
    ("m3", 4.290092032e9, 40206, 3072, 32),
    ("l14", 15.195134976e9, 108547, 5120, 40),
    ("xl32", 33.382228992e9, 152064, 5120, 64),
])
def test_full_size_random_shapes_on_the_meta_device(name, params, vocab, hidden, layers):
    from healthbench.models.healthgpt import build
    from healthbench.models.healthgpt.variants import get_variant

    built = build.build_random(get_variant(name), torch.bfloat16, torch.device("meta"), "sdpa", 0)
    net = built.net
    assert sum(p.numel() for p in net.parameters()) == params
    assert (net.vocab_size, net.hidden_size, net.llm.config.num_hidden_layers) == \
        (vocab, hidden, layers)
    assert net.vision.config.hidden_size == 1024 and net.vision.config.num_hidden_layers == 24
    assert all(p.device.type == "meta" and p.dtype == torch.bfloat16 for p in net.parameters())
    rank = get_variant(name).comprehension.rank
    assert all(layer.adapters["comprehension"].up.shape[1] == rank
               for layer in net.hlora_layers.values())

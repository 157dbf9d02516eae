"""Comprehension on the tiny HealthGPT: prompts, images, batched decoding and choice scoring."""
from __future__ import annotations

import pytest
from plugin_fixtures import noise_image, one_torch_thread

torch = pytest.importorskip("torch")

from healthbench.core.catalog import MODELS
from healthbench.models.base import ModelArgsError, create_model
from healthbench.models.healthgpt.templates import get_template
from healthbench.models.healthgpt.vision import clip_patch_features, expand_to_square
from healthbench.core.types import GenerationParams, Request

GEN = GenerationParams(max_new_tokens=6)


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread():
    with one_torch_thread():
        yield


@pytest.fixture(scope="module")
def model():
    return create_model("healthgpt", {})


def requests_mixed() -> list[Request]:
    """Eight requests: prompt lengths from 1 to 4 repeats, 0, 1 or 2 images of various sizes."""
    return [Request(task="t", sample_id=f"r{i}",
                    prompt=" ".join(["Which part of the body is shown?"] * (1 + i % 4)) + f" #{i}",
                    images=tuple(noise_image(10 * i + j, (60 + 7 * i, 40 + 5 * j))
                                 for j in range(i % 3)),
                    generation=GEN)
            for i in range(8)]


def test_registered_with_tiny_as_default_variant(model):
    assert "healthgpt" in MODELS.names()
    assert model.describe()["variant"] == "tiny"
    assert model.capabilities == {"text", "loglikelihood", "image"}


def test_templates_render_exactly_as_released():
    q = "What is shown?"
    assert get_template("phi3_instruct").render(q, 1) == (
        "<|system|>\nYou are a helpful AI assistant.<|end|>\n<|user|>\n<image>\nWhat is shown?"
        "<|end|>\n<|assistant|>\n")
    assert get_template("phi4_instruct").render(q, 1) == (
        "<|im_start|>system<|im_sep|>\nYou are a medieval knight and must provide explanations "
        "to modern people.<|im_end|>\n<|im_start|>user<|im_sep|>\n<image>\nWhat is shown?"
        "<|im_end|>\n<|im_start|>assistant<|im_sep|>\n")
    assert get_template("qwen_2").render(q, 1) == (
        "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful "
        "assistant.<|im_end|>\n<|im_start|>user\n<image>\nWhat is shown?<|im_end|>\n"
        "<|im_start|>assistant\n")
    assert get_template("phi3_instruct").render(q, 2).count("<image>\n") == 2
    assert "<image>" not in get_template("qwen_2").render(q, 0)


def test_question_text_cannot_add_an_image_slot(model):
    segments = model.net.prompt_segments("what does <image> mean?", 1, 0)
    assert [s for s in segments if isinstance(s, int)] == [0]


def test_pad_to_square_uses_the_clip_mean_colour(model):
    background = model.net.preprocess.background
    assert background == (122, 116, 104)
    square = expand_to_square(noise_image(0, (30, 10)), background)
    assert square.size == (30, 30)
    assert square.getpixel((0, 0)) == background and square.getpixel((0, 29)) == background


def test_each_task_reads_its_own_clip_layer(model):
    vision = model.net.vision
    pixels = torch.randn(2, 3, 336, 336)
    with torch.no_grad():
        states = vision(pixel_values=pixels, output_hidden_states=True).hidden_states
        for layer in (-2, 1):
            torch.testing.assert_close(clip_patch_features(vision, pixels, layer),
                                       states[layer][:, 1:])
    assert model.net.tasks["comprehension"].vision_layer == -2
    assert model.net.tasks["generation"].vision_layer == 1


def test_batched_greedy_answers_equal_one_at_a_time(model):
    requests = requests_mixed()
    batched = model.generate(requests)
    alone = [model.generate([r])[0] for r in requests]
    assert [r.text for r in batched] == [r.text for r in alone]
    assert all(r.error is None and r.text is not None for r in batched)
    assert len({r.text for r in batched}) > 1     # answers depend on the input


def test_scores_depend_on_the_image(model):
    a, b = (Request(task="t", sample_id="x", prompt="Describe.", images=(noise_image(s),),
                    choices=("CT", "MRI")) for s in (1, 2))
    assert model.score_choices([a])[0].choice_scores != model.score_choices([b])[0].choice_scores


def test_choice_scores_are_batch_invariant_and_equal_a_plain_reference(model):
    requests = [Request(task="t", sample_id=f"c{i}", prompt=f"Question {i}: The answer is",
                        images=tuple(noise_image(i) for _ in range(i % 2)),
                        choices=("CT", " MRI", " a chest X-ray"))
                for i in range(3)]
    batched = [r.choice_scores for r in model.score_choices(requests)]
    alone = [model.score_choices([r])[0].choice_scores for r in requests]
    for got, want in zip(batched, alone):
        assert got == pytest.approx(want, abs=1e-4)

    # reference: one unpadded sequence per choice, full logits, mean log-prob of the choice
    net = model.net
    request = requests[1]
    net.activate("comprehension")
    with torch.no_grad():
        feats = net.image_features(list(request.images))
        for choice, score in zip(request.choices, batched[1]):
            cont = net.tokenizer(choice, add_special_tokens=False)["input_ids"]
            rows = [net.prompt_segments(request.prompt, 1, 0) + [cont]]
            embeds, _ = net.embed_rows(rows, feats)
            logp = torch.log_softmax(net.llm(inputs_embeds=embeds).logits.float(), -1)[0]
            n = len(cont)
            picked = logp[-n - 1:-1].gather(-1, torch.tensor(cont)[:, None])
            assert score == pytest.approx(float(picked.mean()), abs=1e-4)


def test_stop_strings_and_token_limits_are_applied_per_request(model):
    base = Request(task="t", sample_id="s", prompt="Which part of the body is shown?",
                   generation=GenerationParams(max_new_tokens=12))
    full = model.generate([base])[0].text
    short = Request(task="t", sample_id="s2", prompt=base.prompt,
                    generation=GenerationParams(max_new_tokens=3))
    out = model.generate([base, short])
    assert out[0].text == full
    assert full.startswith(out[1].text) and len(out[1].text) < len(full)
    stop_at = full[len(full) // 2:len(full) // 2 + 1]
    stopped = Request(task="t", sample_id="s3", prompt=base.prompt,
                      generation=GenerationParams(max_new_tokens=12, stop=(stop_at,)))
    assert model.generate([stopped])[0].text == full[:full.index(stop_at)]


def test_same_seed_same_model_other_seed_other_model(model):
    request = requests_mixed()[1]
    again = create_model("healthgpt", {"seed": 0})
    other = create_model("healthgpt", {"seed": 1})
    assert again.generate([request])[0].text == model.generate([request])[0].text
    assert other.score_choices([Request(task="t", sample_id="a", prompt="Q", choices=("CT",))]) \
        != model.score_choices([Request(task="t", sample_id="a", prompt="Q", choices=("CT",))])


def test_bfloat16_runs(model):
    bf16 = create_model("healthgpt", {"dtype": "bfloat16"})
    assert bf16.net.llm.get_input_embeddings().weight.dtype == torch.bfloat16
    out = bf16.generate(requests_mixed()[:3])
    assert all(r.error is None and isinstance(r.text, str) for r in out)
    scores = bf16.score_choices([Request(task="t", sample_id="a", prompt="Q",
                                         images=(noise_image(3),), choices=("CT", "MRI"))])
    assert len(scores[0].choice_scores) == 2


def test_bad_arguments_are_named():
    with pytest.raises(ModelArgsError, match="unknown HealthGPT variant 'xl64'"):
        create_model("healthgpt", {"variant": "xl64"})
    with pytest.raises(ModelArgsError, match="dtype"):
        create_model("healthgpt", {"dtype": "int8"})
    with pytest.raises(ValueError, match="llm_path"):
        create_model("healthgpt", {"variant": "m3"})
    with pytest.raises(FileNotFoundError, match="nothing is downloaded"):
        create_model("healthgpt", {"variant": "m3", "llm_path": "/nonexistent/phi3",
                                   "vit_path": "/nonexistent/clip", "com_hlora_path": "x.bin"})
    with pytest.raises(ValueError, match="no released generation weights"):
        create_model("healthgpt", {"variant": "l14", "llm_path": "a", "vit_path": "b",
                                   "gen_hlora_path": "g.bin"})

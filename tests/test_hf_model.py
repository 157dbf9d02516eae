"""The ``hf`` plugin on tiny random-weight LLaVA and Qwen2-VL folders built from configs."""
from __future__ import annotations

import pytest
from plugin_fixtures import build_tiny_llava, build_tiny_qwen2vl, noise_image, one_torch_thread

from healthbench.models.base import ModelArgsError, create_model
from healthbench.core.types import GenerationParams, Request

GEN = GenerationParams(max_new_tokens=5)


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread():
    with one_torch_thread():
        yield


@pytest.fixture(scope="module")
def llava_dir(tmp_path_factory):
    return build_tiny_llava(tmp_path_factory.mktemp("llava"))


@pytest.fixture(scope="module")
def qwen_dir(tmp_path_factory):
    return build_tiny_qwen2vl(tmp_path_factory.mktemp("qwen2vl"))


@pytest.fixture(scope="module")
def llava(llava_dir):
    return create_model("hf", {"pretrained": str(llava_dir)})


@pytest.fixture(scope="module")
def qwen(qwen_dir):
    return create_model("hf", {"pretrained": str(qwen_dir)})


def mixed_requests() -> list[Request]:
    """Different prompt lengths and 0–3 images per request, so batches need padding."""
    return [Request(task="t", sample_id=str(i), prompt="Is there an effusion? " * (i + 1),
                    images=tuple(noise_image(5 * i + j) for j in range(i % 4)), generation=GEN)
            for i in range(5)]


def reference_loglikelihood(model, request: Request, choice: str) -> float:
    """Sum log p(choice tokens | rendered prompt) from one unpadded forward pass."""
    import torch

    context = model._encode([request])
    cont = model.tokenizer(choice, add_special_tokens=False)["input_ids"]
    ids = torch.cat([context["input_ids"], torch.tensor([cont])], dim=1)
    inputs = {k: v for k, v in context.items() if k not in ("input_ids", "attention_mask")}
    if "mm_token_type_ids" in inputs:
        inputs["mm_token_type_ids"] = torch.cat(
            [inputs["mm_token_type_ids"], torch.zeros((1, len(cont)), dtype=torch.long)], 1)
    with torch.inference_mode():
        logits = model.model(input_ids=ids, **inputs).logits.float()
    logp = torch.log_softmax(logits[0, -len(cont) - 1:-1], dim=-1)
    return float(logp.gather(-1, torch.tensor(cont).unsqueeze(-1)).sum())


@pytest.mark.parametrize("which", ["llava", "qwen"])
def test_batched_left_padded_generation_equals_one_at_a_time(which, request):
    model = request.getfixturevalue(which)
    requests = mixed_requests()
    batched = model.generate(requests)
    single = [model.generate([r])[0] for r in requests]
    assert [r.text for r in batched] == [r.text for r in single]
    assert all(isinstance(r.text, str) and r.error is None for r in batched)
    assert model.tokenizer.padding_side == "left"


def test_llava_uses_its_processor_and_chat_template(llava):
    text = llava._render(Request(task="t", sample_id="x", prompt="Which organ?",
                                 images=(noise_image(0), noise_image(1))))
    assert text == "<|user|>\n<image><image>Which organ?<|end|>\n<|assistant|>\n"
    assert llava.describe()["processor"] == "LlavaProcessor"


def test_qwen2vl_without_torchvision_expands_image_tokens_by_hand(qwen):
    assert qwen.describe()["processor"] == "ManualQwenVLProcessor"
    request = Request(task="t", sample_id="x", prompt="Compare.",
                      images=(noise_image(0, (96, 80)), noise_image(1, (200, 120))))
    batch = qwen._encode([request])
    pad_id = qwen.config.image_token_id
    expected = int(sum(g.prod() for g in batch["image_grid_thw"])) // 4
    assert int((batch["input_ids"] == pad_id).sum()) == expected
    assert int(batch["mm_token_type_ids"].sum()) == expected
    assert qwen.generate([request])[0].error is None


@pytest.mark.parametrize("which", ["llava", "qwen"])
def test_choice_scores_are_the_continuation_log_likelihood(which, request):
    model = request.getfixturevalue(which)
    req = Request(task="t", sample_id="x", prompt="The answer is", images=(noise_image(3),),
                  choices=(" yes", " no", " a small pleural effusion"))
    response = model.score_choices([req])[0]
    expected = [reference_loglikelihood(model, req, c) for c in req.choices]
    assert response.extra["loglikelihood"] == pytest.approx(expected, abs=1e-4)
    n_tokens = response.extra["n_tokens"]
    assert response.choice_scores == pytest.approx(
        [s / n for s, n in zip(expected, n_tokens)], abs=1e-4)
    assert len(response.extra["is_greedy"]) == 3


def test_choice_score_sum_option(llava_dir):
    model = create_model("hf", {"pretrained": str(llava_dir), "choice_score": "sum"})
    req = Request(task="t", sample_id="x", prompt="Answer:", choices=(" yes", " maybe not"))
    response = model.score_choices([req])[0]
    assert response.choice_scores == response.extra["loglikelihood"]


def test_per_sample_errors_for_requests_it_cannot_serve(llava):
    good = mixed_requests()[1]
    out = llava.generate([Request(task="t", sample_id="img", prompt="x", output="image"),
                          good,
                          Request(task="t", sample_id="bad", prompt="x", images=("path.png",))])
    assert "text only" in out[0].error
    assert out[1].error is None and out[1].text == llava.generate([good])[0].text
    assert "not a decoded PIL image" in out[2].error


def test_loading_options_reach_from_pretrained(llava_dir, monkeypatch):
    import torch
    import transformers

    seen = {}
    original = transformers.AutoModelForImageTextToText.from_pretrained

    def spy(*args, **kwargs):
        seen.update(kwargs)
        return original(*args, **kwargs)

    monkeypatch.setattr(transformers.AutoModelForImageTextToText, "from_pretrained", spy)
    model = create_model("hf", {"pretrained": str(llava_dir), "dtype": "bfloat16",
                                "attn_implementation": "eager", "device_map": "cpu"})
    assert seen["dtype"] is torch.bfloat16 and seen["attn_implementation"] == "eager"
    assert seen["device_map"] == "cpu" and seen["trust_remote_code"] is False
    assert next(model.model.parameters()).dtype is torch.bfloat16
    assert model.generate(mixed_requests()[:2])[0].error is None


def test_cpu_default_dtype_is_float32(llava):
    import torch

    assert next(llava.model.parameters()).dtype is torch.float32


@pytest.mark.parametrize("args, message", [
    ({"dtype": "int3"}, "dtype"), ({"choice_score": "max"}, "choice_score"),
])
def test_bad_arguments_are_named(llava_dir, args, message):
    with pytest.raises(ModelArgsError, match=message):
        create_model("hf", {"pretrained": str(llava_dir), **args})


def test_a_missing_model_folder_is_a_clear_error(tmp_path):
    with pytest.raises(ModelArgsError, match="cannot load"):
        create_model("hf", {"pretrained": str(tmp_path / "nowhere")})

"""Strict loading of the released weight layout (HealthGPT's H-LoRA .bin files and VQGAN
checkpoint), on the tiny model.

The checkpoints are written here, key by key, in upstream's PEFT-wrapper naming — not with the
loader's own layout helpers — so a wrong mapping in the loader cannot hide behind a matching one
in the test.
"""
from __future__ import annotations

import pickle
from pathlib import Path

import pytest
from plugin_fixtures import noise_image, one_torch_thread

torch = pytest.importorskip("torch")

from healthbench.models.base import create_model
from healthbench.models.healthgpt.checkpoint import CheckpointError
from healthbench.models.healthgpt.tiny import TINY_VQGAN
from healthbench.models.healthgpt.vqgan import VQGANDecoder
from healthbench.core.types import Request

PHI3_LINEARS = [("self_attn", "qkv_proj"), ("self_attn", "o_proj"), ("mlp", "gate_up_proj"),
                ("mlp", "down_proj")]


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread():
    with one_torch_thread():
        yield


@pytest.fixture(scope="module")
def tiny():
    return create_model("healthgpt", {"variant": "tiny"})


def released_hlora(model, rank: int, experts: int = 4, seed: int = 0) -> dict:
    """A state dict in the released key layout for the tiny model's shapes, random values."""
    g = torch.Generator().manual_seed(seed)
    llm = model.net.llm
    hidden = llm.config.hidden_size
    state = {}
    for i, layer in enumerate(llm.model.layers):
        for block, name in PHI3_LINEARS:
            linear = getattr(getattr(layer, block), name).base
            key = f"base_model.model.model.layers.{i}.{block}.{name}"
            state[f"{key}.lora_A.weight"] = torch.randn(rank, linear.in_features, generator=g)
            state[f"{key}.lora_B.weight"] = torch.randn(linear.out_features, rank, generator=g)
            state[f"{key}.lora_route.weight"] = torch.randn(experts, linear.in_features,
                                                            generator=g)
    vision_hidden = model.net.vision.config.hidden_size
    state["base_model.model.model.mm_projector.0.weight"] = torch.randn(hidden, vision_hidden,
                                                                        generator=g)
    state["base_model.model.model.mm_projector.0.bias"] = torch.randn(hidden, generator=g)
    state["base_model.model.model.mm_projector.2.weight"] = torch.randn(hidden, hidden,
                                                                        generator=g)
    state["base_model.model.model.mm_projector.2.bias"] = torch.randn(hidden, generator=g)
    return state


def released_fusion(model, seed: int = 1) -> dict:
    g = torch.Generator().manual_seed(seed)
    rows, hidden = model.net.vocab_size, model.net.llm.config.hidden_size
    return {"base_model.model.model.embed_tokens.weight": torch.randn(rows, hidden, generator=g),
            "base_model.model.lm_head.weight": torch.randn(rows, hidden, generator=g)}


def save(state: dict, path: Path) -> str:
    torch.save(state, path)
    return str(path)


def test_released_layout_loads_every_tensor_where_it_belongs(tiny, tmp_path):
    state = released_hlora(tiny, rank=16)
    model = create_model("healthgpt", {"com_hlora_path": save(state, tmp_path / "com.bin")})
    layer = model.net.llm.model.layers[1].mlp.gate_up_proj.adapters["comprehension"]
    prefix = "base_model.model.model.layers.1.mlp.gate_up_proj"
    assert torch.equal(layer.lora_A, state[f"{prefix}.lora_A.weight"])
    assert torch.equal(layer.lora_B, state[f"{prefix}.lora_B.weight"])
    assert torch.equal(layer.lora_route, state[f"{prefix}.lora_route.weight"])
    projector = model.net.projectors["comprehension"]
    assert torch.equal(projector[2].bias, state["base_model.model.model.mm_projector.2.bias"])
    # every adapter tensor of every wrapped linear came from the file
    loaded = 0
    for path, wrapped in model.net.hlora_layers.items():
        adapter = wrapped.adapters["comprehension"]
        key = f"base_model.model.{path}"
        assert torch.equal(adapter.lora_A, state[f"{key}.lora_A.weight"]), path
        assert torch.equal(adapter.lora_route, state[f"{key}.lora_route.weight"]), path
        loaded += 3
    assert loaded + 4 == len(state)


def test_safetensors_is_accepted(tiny, tmp_path):
    from safetensors.torch import save_file

    state = released_hlora(tiny, rank=16)
    save_file(state, str(tmp_path / "com.safetensors"))
    model = create_model("healthgpt", {"com_hlora_path": str(tmp_path / "com.safetensors")})
    key = "base_model.model.model.layers.0.self_attn.o_proj.lora_B.weight"
    assert torch.equal(model.net.llm.model.layers[0].self_attn.o_proj
                       .adapters["comprehension"].lora_B, state[key])


def test_a_dropped_key_fails_naming_it(tiny, tmp_path):
    state = released_hlora(tiny, rank=16)
    dropped = "base_model.model.model.layers.1.self_attn.o_proj.lora_route.weight"
    del state[dropped]
    with pytest.raises(CheckpointError, match="1 missing keys") as err:
        create_model("healthgpt", {"com_hlora_path": save(state, tmp_path / "com.bin")})
    assert dropped in str(err.value) and "com.bin" in str(err.value)


def test_a_renamed_key_fails_naming_both_names(tiny, tmp_path):
    state = released_hlora(tiny, rank=16)
    old = "base_model.model.model.mm_projector.0.weight"
    new = "model.mm_projector.0.weight"
    state[new] = state.pop(old)
    with pytest.raises(CheckpointError) as err:
        create_model("healthgpt", {"com_hlora_path": save(state, tmp_path / "com.bin")})
    message = str(err.value)
    assert f"missing keys: {old}" in message and f"unexpected keys: {new}" in message


def test_the_rank_is_read_from_the_file_and_disagreements_name_key_and_shapes(tiny, tmp_path):
    state = released_hlora(tiny, rank=32)     # another rank than the variant's 16: it loads
    model = create_model("healthgpt", {"com_hlora_path": save(state, tmp_path / "com.bin")})
    assert model.describe()["tasks"]["comprehension"]["hlora_rank"] == 32
    key = "base_model.model.model.layers.1.self_attn.o_proj.lora_A.weight"
    state[key] = torch.randn(8, 64)
    with pytest.raises(CheckpointError, match="ranks differ") as err:
        create_model("healthgpt", {"com_hlora_path": save(state, tmp_path / "bad.bin")})
    assert key in str(err.value) and "is (8, 64)" in str(err.value)
    routed = released_hlora(tiny, rank=24, experts=3)   # 3 experts' router, 4 expected
    with pytest.raises(CheckpointError, match=r"lora_route.weight is \(3, 128\) but 4 experts "
                                              r"need \(4, 128\)"):
        create_model("healthgpt", {"com_hlora_path": save(routed, tmp_path / "r.bin")})
    model = create_model("healthgpt", {"com_hlora_path": str(tmp_path / "r.bin"),
                                       "hlora_experts": 3, "com_hlora_alpha": 24})
    assert model.describe()["tasks"]["comprehension"] == {
        "hlora_rank": 24, "hlora_alpha": 24.0, "experts": 3, "hlora_scaling": 3.0,
        "vision_layer": -2}


def test_generation_weights_and_fusion_file_load(tiny, tmp_path):
    hlora = released_hlora(tiny, rank=32, seed=3)
    fusion = released_fusion(tiny)
    model = create_model("healthgpt", {"gen_hlora_path": save(hlora, tmp_path / "gen.bin"),
                                       "fusion_path": save(fusion, tmp_path / "fusion.bin")})
    model.net.activate("generation")
    llm = model.net.llm
    assert torch.equal(llm.get_input_embeddings().weight,
                       fusion["base_model.model.model.embed_tokens.weight"])
    assert torch.equal(llm.get_output_embeddings().weight,
                       fusion["base_model.model.lm_head.weight"])
    model.net.activate("comprehension")             # base rows come back
    assert not torch.equal(llm.get_output_embeddings().weight,
                           fusion["base_model.model.lm_head.weight"])


def test_a_fusion_file_with_an_extra_key_fails(tiny, tmp_path):
    fusion = released_fusion(tiny)
    fusion["base_model.model.model.norm.weight"] = torch.ones(64)
    with pytest.raises(CheckpointError, match="unexpected keys: base_model.model.model.norm"):
        create_model("healthgpt", {
            "gen_hlora_path": save(released_hlora(tiny, rank=32), tmp_path / "gen.bin"),
            "fusion_path": save(fusion, tmp_path / "fusion.bin")})


class NotATensor:
    pass


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_arbitrary_pickles_are_refused(tmp_path):
    path = tmp_path / "evil.bin"
    with open(path, "wb") as f:
        pickle.dump({"x": NotATensor()}, f)
    with pytest.raises(CheckpointError, match="refused: not a plain-tensor checkpoint") as caught:
        create_model("healthgpt", {"com_hlora_path": str(path)})
    assert "\n" not in str(caught.value) and "weights_only=False" not in str(caught.value)


def test_loaded_weights_change_the_answers(tiny, tmp_path):
    state = released_hlora(tiny, rank=16)
    model = create_model("healthgpt", {"com_hlora_path": save(state, tmp_path / "com.bin")})
    request = Request(task="t", sample_id="a", prompt="Which modality?",
                      images=(noise_image(0),), choices=("CT", "MRI"))
    assert model.score_choices([request])[0].choice_scores != \
        tiny.score_choices([request])[0].choice_scores


# ---------------------------------------------------------------------------- VQGAN


def released_vqgan_checkpoint(seed: int = 0) -> dict:
    """A taming Lightning checkpoint: decoder-side tensors plus encoder-side ones and extras."""
    torch.manual_seed(seed)
    decoder = VQGANDecoder(TINY_VQGAN)
    state = {k: torch.randn_like(v) for k, v in decoder.state_dict().items()}
    state["encoder.conv_in.weight"] = torch.randn(16, 3, 3, 3)
    state["quant_conv.weight"] = torch.randn(8, 16, 1, 1)
    state["quantize.proj.weight"] = torch.randn(TINY_VQGAN.n_embed, 16, 1, 1)
    return {"state_dict": state, "global_step": 123, "epoch": 4}


def test_vqgan_checkpoint_layout_loads_and_decodes(tmp_path):
    ckpt = released_vqgan_checkpoint()
    torch.save(ckpt, tmp_path / "last.ckpt")
    decoder = VQGANDecoder(TINY_VQGAN)
    decoder.load_released(tmp_path / "last.ckpt")
    state = ckpt["state_dict"]
    assert torch.equal(decoder.quantize.embed.weight, state["quantize.embed.weight"])
    assert torch.equal(decoder.decoder.up[3].attn[0].q.weight,
                       state["decoder.up.3.attn.0.q.weight"])
    images = decoder.decode_to_uint8(torch.randint(0, TINY_VQGAN.n_embed, (2, 1024)))
    assert images.shape == (2, 256, 256, 3) and images.dtype == torch.uint8


def test_vqgan_checkpoint_missing_a_decoder_key_fails(tmp_path):
    ckpt = released_vqgan_checkpoint()
    del ckpt["state_dict"]["decoder.up.0.block.1.conv2.bias"]
    torch.save(ckpt, tmp_path / "last.ckpt")
    with pytest.raises(CheckpointError, match="decoder.up.0.block.1.conv2.bias"):
        VQGANDecoder(TINY_VQGAN).load_released(tmp_path / "last.ckpt")


def test_vqgan_decoder_has_the_taming_parameter_names():
    """Released f8-8192 VQGAN layout: 4 levels, 3 blocks each, attention at 32²."""
    with torch.device("meta"):
        names = set(VQGANDecoder().state_dict())
    for key in ["quantize.embed.weight", "post_quant_conv.weight", "decoder.conv_in.weight",
                "decoder.mid.block_1.norm1.weight", "decoder.mid.attn_1.proj_out.weight",
                "decoder.up.3.block.0.conv1.weight", "decoder.up.3.attn.2.k.weight",
                "decoder.up.2.block.0.nin_shortcut.weight", "decoder.up.3.upsample.conv.weight",
                "decoder.up.0.block.2.conv2.weight", "decoder.norm_out.weight",
                "decoder.conv_out.weight"]:
        assert key in names, key
    assert "decoder.up.0.upsample.conv.weight" not in names
    assert not any(k.startswith("decoder.up.2.attn") for k in names)


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_a_full_pickle_loads_only_when_explicitly_trusted(tmp_path, monkeypatch):
    from healthbench.models.healthgpt.checkpoint import TRUST_PICKLE_ENV, read_state_dict

    import torch

    path = tmp_path / "old.bin"
    torch.save({"x": NotATensor()}, path)  # an old-style full pickle
    monkeypatch.delenv(TRUST_PICKLE_ENV, raising=False)
    with pytest.raises(CheckpointError, match=f"set {TRUST_PICKLE_ENV}=1 if you trust"):
        read_state_dict(path)
    monkeypatch.setenv(TRUST_PICKLE_ENV, "1")
    assert isinstance(read_state_dict(path)["x"], NotATensor)


# ---- capabilities known before weights load (issue: capabilities_for) -------------------------

def test_generation_variants_constant_agrees_with_the_variant_table() -> None:
    from healthbench.models.healthgpt.plugin import HealthGPTPlugin
    from healthbench.models.healthgpt.variants import VARIANTS

    with_generation = {name for name, v in VARIANTS.items() if v.generation is not None}
    assert HealthGPTPlugin.GENERATION_VARIANTS == with_generation


def test_image_task_on_l14_is_refused_by_capability_before_any_file_is_read(tmp_path) -> None:
    """Weight paths that do not exist: a load attempt would fail with a missing-file error; the
    capability message proves none was made."""
    from healthbench.cli import main as cli_main

    missing = tmp_path / "nowhere"
    args = (f"variant=l14,llm_path={missing}/llm,vit_path={missing}/clip,"
            f"com_hlora_path={missing}/com.bin,gen_hlora_path={missing}/gen.bin,"
            f"fusion_path={missing}/fusion.bin,vqgan_path={missing}/vqgan.ckpt")
    import contextlib
    import io

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = cli_main(["run", "--model", "healthgpt", "--model-args", args, "--tasks",
                         "reconstruction_sample", "--output-path", str(tmp_path / "out"),
                         "--data-root", str(tmp_path / "data"), "--no-progress"])
    text = err.getvalue()
    assert code != 0
    assert "cannot run task 'reconstruction_sample'" in text and "needs image" in text, text
    assert "nowhere" not in text  # no file was looked for
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("*.jsonl"))


def test_capabilities_for_follows_the_arguments() -> None:
    from healthbench.models.healthgpt.plugin import HealthGPTPlugin as P

    assert P.capabilities_for({}) == {"text", "loglikelihood", "image"}
    assert P.capabilities_for({"variant": "m3", "com_hlora_path": "a"}) == {"text",
                                                                            "loglikelihood"}
    assert P.capabilities_for({"variant": "m3", "gen_hlora_path": "g"}) == {"image"}
    assert P.capabilities_for({"variant": "l14", "com_hlora_path": "a",
                               "gen_hlora_path": "g"}) == {"text", "loglikelihood"}

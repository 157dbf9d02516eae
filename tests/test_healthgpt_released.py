"""The released-variant path (m3, xl32) end to end on tiny local checkpoints.

Base LLM and CLIP directories are saved here from tiny configs (Phi-3 for M3, Qwen2 for XL32),
and a comprehension file is written in the released key layout with the variant's real ranks
(M3: R=64, XL32: R=32, four experts): the plugin builds from local paths exactly as it would
from the downloaded models, nothing is fetched.
"""
from __future__ import annotations

from pathlib import Path

import pytest
from plugin_fixtures import noise_image, one_torch_thread

torch = pytest.importorskip("torch")

from healthbench.models.base import create_model
from healthbench.models.healthgpt import tiny
from healthbench.models.healthgpt.checkpoint import CheckpointError
from healthbench.core.types import GenerationParams, Request

LINEARS = {"phi3": [("self_attn", "qkv_proj"), ("self_attn", "o_proj"), ("mlp", "gate_up_proj"),
                    ("mlp", "down_proj")],
           "qwen2": [("self_attn", n) for n in ("q_proj", "k_proj", "v_proj", "o_proj")]
           + [("mlp", n) for n in ("gate_proj", "up_proj", "down_proj")]}


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread():
    with one_torch_thread():
        yield


@pytest.fixture(scope="module")
def local_models(tmp_path_factory) -> dict[str, Path]:
    from transformers import Qwen2Config, Qwen2ForCausalLM

    root = tmp_path_factory.mktemp("hf")
    torch.manual_seed(0)
    tokenizer = tiny.build_tokenizer()
    tiny.build_llm(len(tokenizer), tokenizer, "sdpa").save_pretrained(root / "phi3")
    tokenizer.save_pretrained(root / "phi3")
    qwen_tokenizer = tiny.build_tokenizer()
    Qwen2ForCausalLM(Qwen2Config(vocab_size=len(qwen_tokenizer) + 16, hidden_size=64,
                                 intermediate_size=96, num_hidden_layers=2,
                                 num_attention_heads=4, num_key_value_heads=2,
                                 tie_word_embeddings=False,
                                 pad_token_id=qwen_tokenizer.pad_token_id)
                     ).save_pretrained(root / "qwen2")
    qwen_tokenizer.save_pretrained(root / "qwen2")
    vision, processor = tiny.build_vision("sdpa")
    vision.save_pretrained(root / "clip")
    processor.save_pretrained(root / "clip")
    return {"phi3": root / "phi3", "qwen2": root / "qwen2", "clip": root / "clip"}


def released_com_file(path: Path, family: str, rank: int, hidden: int = 64,
                      intermediate: int = 96, vision_hidden: int = tiny.VISION_HIDDEN) -> str:
    g = torch.Generator().manual_seed(7)
    kv = 2 * 16                                   # 2 kv heads × head dim 16
    shapes = {"qkv_proj": (hidden, hidden + 2 * kv), "o_proj": (hidden, hidden),
              "gate_up_proj": (hidden, 2 * 128), "down_proj": (128, hidden),
              "q_proj": (hidden, hidden), "k_proj": (hidden, kv), "v_proj": (hidden, kv),
              "gate_proj": (hidden, intermediate), "up_proj": (hidden, intermediate)}
    if family == "qwen2":
        shapes["down_proj"] = (intermediate, hidden)
    state = {}
    for i in range(2):
        for block, name in LINEARS[family]:
            d_in, d_out = shapes[name]
            key = f"base_model.model.model.layers.{i}.{block}.{name}"
            state[f"{key}.lora_A.weight"] = torch.randn(rank, d_in, generator=g) * 0.1
            state[f"{key}.lora_B.weight"] = torch.randn(d_out, rank, generator=g) * 0.1
            state[f"{key}.lora_route.weight"] = torch.randn(4, d_in, generator=g)
    for name, shape in {"0.weight": (hidden, vision_hidden), "0.bias": (hidden,),
                        "2.weight": (hidden, hidden), "2.bias": (hidden,)}.items():
        state[f"base_model.model.model.mm_projector.{name}"] = torch.randn(*shape, generator=g)
    torch.save(state, path)
    return str(path)


REQUESTS = [Request(task="t", sample_id=f"r{i}", prompt="Which organ is shown? " * (1 + i),
                    images=tuple(noise_image(i) for _ in range(i % 2)),
                    generation=GenerationParams(max_new_tokens=5)) for i in range(3)]


def test_m3_builds_from_local_paths_and_answers(local_models, tmp_path):
    model = create_model("healthgpt", {
        "variant": "m3", "llm_path": str(local_models["phi3"]),
        "vit_path": str(local_models["clip"]),
        "com_hlora_path": released_com_file(tmp_path / "com.bin", "phi3", rank=64)})
    assert model.capabilities == {"text", "loglikelihood"}
    net = model.net
    # 8195 VQ rows appended after len(tokenizer), set to the mean of the rows before them
    assert net.vocab_size == net.base_vocab + 8195
    head = net.llm.get_output_embeddings().weight
    torch.testing.assert_close(head[net.end_index_id], head[: net.base_vocab].mean(0))
    assert model.describe()["tasks"]["comprehension"]["hlora_rank"] == 64
    batched = model.generate(REQUESTS)
    assert [r.text for r in batched] == [model.generate([r])[0].text for r in REQUESTS]
    scores = model.score_choices([Request(task="t", sample_id="c", prompt="Q",
                                          images=(noise_image(1),), choices=("CT", "MRI"))])
    assert len(scores[0].choice_scores) == 2


def test_xl32_uses_qwen_targets_and_adds_no_vq_tokens(local_models, tmp_path):
    model = create_model("healthgpt", {
        "variant": "xl32", "llm_path": str(local_models["qwen2"]),
        "vit_path": str(local_models["clip"]),
        "com_hlora_path": released_com_file(tmp_path / "com.bin", "qwen2", rank=32)})
    net = model.net
    assert net.vocab_size == len(net.tokenizer) + 16            # not resized
    assert {p.rsplit(".", 1)[1] for p in net.hlora_layers} == {
        "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
    assert net.template.name == "qwen_2"
    assert all(r.error is None for r in model.generate(REQUESTS))


def test_a_wrong_base_model_family_is_refused(local_models, tmp_path):
    with pytest.raises(ValueError, match="holds a 'qwen2' model; variant 'm3' needs 'phi3'"):
        create_model("healthgpt", {
            "variant": "m3", "llm_path": str(local_models["qwen2"]),
            "vit_path": str(local_models["clip"]),
            "com_hlora_path": released_com_file(tmp_path / "com.bin", "phi3", rank=64)})


@pytest.mark.parametrize("rank", [8, 64])
def test_m3_loads_an_adapter_of_any_rank_through_model_args(local_models, tmp_path, rank):
    model = create_model("healthgpt", {
        "variant": "m3", "llm_path": str(local_models["phi3"]),
        "vit_path": str(local_models["clip"]),
        "com_hlora_path": released_com_file(tmp_path / "com.bin", "phi3", rank=rank)})
    task = model.describe()["tasks"]["comprehension"]
    assert (task["hlora_rank"], task["hlora_alpha"], task["experts"]) == (rank, 128, 4)
    layer = next(iter(model.net.hlora_layers.values()))
    assert layer.adapters["comprehension"].up.shape[1] == rank
    assert all(r.error is None for r in model.generate(REQUESTS))


TINY_TAMING_YAML = """model:
  base_learning_rate: 4.5e-06
  target: taming.models.vqgan.GumbelVQ
  params:
    kl_weight: 1.0e-08
    embed_dim: 4
    n_embed: 8192
    ddconfig:
      double_z: false
      z_channels: 32
      resolution: 64
      in_channels: 3
      out_ch: 3
      ch: 32
      ch_mult: [1, 2]
      num_res_blocks: 1
      attn_resolutions: [32]
      dropout: 0.0
"""


def test_m3_generation_with_a_rank_64_adapter_and_a_tiny_vqgan_from_model_yaml(local_models,
                                                                               tmp_path):
    from healthbench.models.healthgpt.vqgan import VQGANDecoder
    from healthbench.models.healthgpt.vqgan_config import config_from_state, config_from_yaml

    com = create_model("healthgpt", {
        "variant": "m3", "llm_path": str(local_models["phi3"]),
        "vit_path": str(local_models["clip"]),
        "com_hlora_path": released_com_file(tmp_path / "com.bin", "phi3", rank=64)})
    rows = com.net.vocab_size
    g = torch.Generator().manual_seed(3)
    torch.save({"base_model.model.model.embed_tokens.weight": torch.randn(rows, 64, generator=g),
                "base_model.model.lm_head.weight": torch.randn(rows, 64, generator=g)},
               tmp_path / "fusion.bin")
    (tmp_path / "vq").mkdir()
    (tmp_path / "vq" / "model.yaml").write_text(TINY_TAMING_YAML)
    cfg = config_from_yaml(tmp_path / "vq" / "model.yaml")
    assert (cfg.resolution, cfg.ch_mult, cfg.tokens) == (64, (1, 2), 1024)
    torch.manual_seed(1)
    weights = {k: torch.randn_like(v) for k, v in VQGANDecoder(cfg).state_dict().items()}
    assert config_from_state(weights) == cfg.__class__(**{**vars(cfg), "resolution": 256,
                                                          "attn_resolutions": (128,)})
    torch.save({"state_dict": weights}, tmp_path / "vq" / "last.ckpt")
    model = create_model("healthgpt", {
        "variant": "m3", "llm_path": str(local_models["phi3"]),
        "vit_path": str(local_models["clip"]),
        "gen_hlora_path": released_com_file(tmp_path / "gen.bin", "phi3", rank=64),
        "fusion_path": str(tmp_path / "fusion.bin"),
        "vqgan_path": str(tmp_path / "vq" / "last.ckpt"),
        "vqgan_config": str(tmp_path / "vq" / "model.yaml")})
    described = model.describe()
    assert described["tasks"]["generation"]["hlora_rank"] == 64
    assert described["vqgan"]["config"].endswith("model.yaml")
    assert model.capabilities == {"image"}
    assert torch.equal(model.vqgan.quantize.embed.weight, weights["quantize.embed.weight"])
    images = model.vqgan.decode_to_uint8(torch.randint(0, 8192, (1, 1024)))
    assert tuple(images.shape) == (1, 64, 64, 3)

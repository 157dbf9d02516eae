"""H-LoRA numerics (DCDmllm/HealthGPT llava/peft/tuners/lora.py): the layer against references
built in plain sight."""
from __future__ import annotations

import pytest
from plugin_fixtures import one_torch_thread

torch = pytest.importorskip("torch")
from torch import nn

from healthbench.models.healthgpt.hlora import (
    TARGETS,
    HLoRAConfig,
    HLoRALinear,
    set_active,
    wrap_linears,
)

D_IN, D_OUT, RANK, EXPERTS, ALPHA = 24, 40, 8, 4, 16.0


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread():
    with one_torch_thread():
        yield


def wrapped_layer(seed: int = 0) -> HLoRALinear:
    torch.manual_seed(seed)
    layer = HLoRALinear(nn.Linear(D_IN, D_OUT))
    adapter = layer.add_adapter("task", HLoRAConfig(RANK, ALPHA, EXPERTS))
    nn.init.normal_(adapter.up, std=0.5)
    layer.active = "task"
    return layer


def test_scaling_is_alpha_over_per_expert_rank():
    config = HLoRAConfig(rank=64, alpha=128, experts=4)   # released M3 comprehension
    assert config.expert_rank == 16 and config.scaling == 8.0


def test_matches_the_per_expert_sum_formula():
    """h = W0 x + b0 + s Σ_i g_i(x) B_i A_i x with A_i, B_i the expert's rank slots."""
    layer = wrapped_layer()
    adapter = layer.adapters["task"]
    x = torch.randn(3, 5, D_IN)
    t, s = RANK // EXPERTS, ALPHA / (RANK // EXPERTS)
    gate = torch.softmax(x @ adapter.lora_route.T, dim=-1)
    expected = layer.base(x)
    for i in range(EXPERTS):
        a_i = adapter.lora_A[i * t:(i + 1) * t]
        b_i = adapter.lora_B[:, i * t:(i + 1) * t]
        expected = expected + s * gate[..., i:i + 1] * (x @ a_i.T @ b_i.T)
    torch.testing.assert_close(layer(x), expected, atol=1e-5, rtol=1e-5)


def test_uniform_routing_equals_peft_lora_of_rank_R_and_scaling_alpha_over_R():
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(1)
    holder = nn.Sequential()
    holder.add_module("proj", nn.Linear(D_IN, D_OUT))
    peft_model = get_peft_model(holder, LoraConfig(r=RANK, lora_alpha=ALPHA,
                                                   target_modules=["proj"],
                                                   init_lora_weights=False))
    lora = peft_model.base_model.model.proj
    assert lora.scaling["default"] == ALPHA / RANK

    ours = HLoRALinear(nn.Linear(D_IN, D_OUT))
    ours.base.load_state_dict(lora.base_layer.state_dict())
    adapter = ours.add_adapter("task", HLoRAConfig(RANK, ALPHA, EXPERTS))
    adapter.load(lora_A=lora.lora_A["default"].weight, lora_B=lora.lora_B["default"].weight,
                 lora_route=torch.zeros(EXPERTS, D_IN))          # zero router → g ≡ 1/n
    ours.active = "task"
    x = torch.randn(4, 7, D_IN)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), peft_model(x), atol=1e-5, rtol=1e-5)
        assert not torch.allclose(ours(x), ours.base(x))          # the adapter does something


def test_zero_B_equals_the_base_layer():
    layer = wrapped_layer()
    with torch.no_grad():
        layer.adapters["task"].up.zero_()
    x = torch.randn(2, 3, D_IN)
    torch.testing.assert_close(layer(x), layer.base(x))


def test_zero_B_everywhere_equals_the_base_model():
    from transformers import Phi3Config, Phi3ForCausalLM

    config = Phi3Config(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                        num_attention_heads=4, num_key_value_heads=2, pad_token_id=0)
    torch.manual_seed(0)
    model = Phi3ForCausalLM(config).eval()
    ids = torch.randint(0, 64, (2, 9))
    with torch.no_grad():
        before = model(ids).logits
        layers = wrap_linears(model, TARGETS["phi3"])
        for layer in layers.values():
            layer.add_adapter("task", HLoRAConfig(RANK, ALPHA, EXPERTS))  # B is zero at init
        set_active(layers.values(), "task")
        torch.testing.assert_close(model(ids).logits, before)
        for layer in layers.values():
            nn.init.normal_(layer.adapters["task"].up, std=0.1)
        assert not torch.allclose(model(ids).logits, before, atol=1e-4)


def test_bfloat16_shapes_and_dtype():
    layer = wrapped_layer().to(torch.bfloat16)
    x = torch.randn(2, 6, D_IN, dtype=torch.bfloat16)
    out = layer(x)
    assert out.shape == (2, 6, D_OUT) and out.dtype == torch.bfloat16
    reference = wrapped_layer()(x.float())
    torch.testing.assert_close(out.float(), reference, atol=0.1, rtol=0.05)


def test_switching_adapters_is_exact():
    layer = wrapped_layer()
    other = layer.add_adapter("other", HLoRAConfig(16, 32, EXPERTS))
    nn.init.normal_(other.up, std=0.5)
    x = torch.randn(2, 4, D_IN)
    first = layer(x)
    layer.active = "other"
    assert not torch.allclose(layer(x), first)
    layer.active = "task"
    assert torch.equal(layer(x), first)
    layer.active = None
    assert torch.equal(layer(x), layer.base(x))


@pytest.mark.parametrize("family", ["phi3", "qwen2"])
def test_wraps_exactly_the_released_targets_and_never_lm_head(family):
    from transformers import Phi3Config, Phi3ForCausalLM, Qwen2Config, Qwen2ForCausalLM

    common = {"vocab_size": 64, "hidden_size": 32, "intermediate_size": 64,
              "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
              "pad_token_id": 0}
    model = (Phi3ForCausalLM(Phi3Config(**common)) if family == "phi3"
             else Qwen2ForCausalLM(Qwen2Config(**common)))
    wrapped = wrap_linears(model, TARGETS[family] + ("lm_head",))
    names = {path.rsplit(".", 1)[1] for path in wrapped}
    assert names == set(TARGETS[family])
    assert len(wrapped) == 2 * len(TARGETS[family])
    assert isinstance(model.lm_head, nn.Linear)
    remaining = [n for n, m in model.named_modules()
                 if isinstance(m, nn.Linear) and not n.endswith(".base") and n != "lm_head"]
    assert remaining == []
    if family == "qwen2":    # q/k/v keep their biases inside the wrapper
        assert model.model.layers[0].self_attn.q_proj.base.bias is not None


def test_rank_must_split_evenly_over_experts():
    with pytest.raises(ValueError, match="multiple"):
        HLoRAConfig(rank=10, alpha=20, experts=4)

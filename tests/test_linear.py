import contextlib

import pytest
import torch
from torch.nn import functional as F

from gankit.config import load_preset
from gankit.models.linear import NARROW, Linear, WeightCasts
from gankit.train.state import new_state
from gankit.train.step import GANStep

bf16_autocast = torch.autocast("cpu", dtype=torch.bfloat16)


def _forward_backward(layer, x, casts):
    layer.zero_grad()
    x = x.clone().requires_grad_()
    with bf16_autocast, casts.active() if casts else contextlib.nullcontext():
        out = layer(x)
    (out.float() ** 2).sum().backward()
    return out, x.grad, layer.weight.grad, layer.bias.grad


def test_cached_casts_give_autocasts_bits_and_gradients():
    torch.manual_seed(0)
    layer, x = Linear(160, 144), torch.randn(12, 160)
    with_casts = _forward_backward(layer, x, WeightCasts())
    plain = _forward_backward(layer, x, None)
    assert with_casts[0].dtype == torch.bfloat16 and with_casts[2].dtype == torch.float32
    for a, b in zip(with_casts, plain):
        assert torch.equal(a, b)


def test_narrow_layers_run_in_float32_under_bf16_autocast():
    torch.manual_seed(0)
    layer, x = Linear(NARROW, 1), torch.randn(5, NARROW)
    with bf16_autocast:
        out = layer(x.bfloat16())
    assert out.dtype == torch.float32
    assert torch.equal(out, F.linear(x.bfloat16().float(), layer.weight, layer.bias))


def test_a_copy_is_reused_until_forgotten_or_the_weight_changes():
    layer, casts = Linear(8, 8), WeightCasts()
    first, _ = casts.get(layer)
    assert casts.get(layer)[0] is first
    with torch.no_grad():
        layer.weight.mul_(2)  # an in-place op moves the version counter
    second, _ = casts.get(layer)
    assert torch.equal(second, (layer.weight.detach() * 1).bfloat16())
    layer.load_state_dict({"weight": torch.ones(8, 8), "bias": torch.zeros(8)})
    assert torch.equal(casts.get(layer)[0], torch.ones(8, 8, dtype=torch.bfloat16))
    optimiser = torch.optim.Adam(layer.parameters(), lr=0.5, fused=True)
    layer(torch.ones(1, 8)).sum().backward()
    kept = casts.get(layer)[0]
    optimiser.step()
    casts.forget(layer)
    assert not torch.equal(casts.get(layer)[0], kept)
    assert torch.equal(casts.get(layer)[0], layer.weight.detach().bfloat16())


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_the_step_with_cached_casts_trains_the_same_weights(precision):
    def train(reuse: bool):
        config = load_preset("seed-gan-mnist")
        config.model.g_hidden, config.model.d_hidden = [160, 192], [192, 160]
        config.train.precision = precision
        torch.manual_seed(0)
        state = new_state(config, torch.device("cpu"))
        step = GANStep(state.G, state.D, state.opt_g, state.opt_d, config.train, torch.device("cpu"))
        if not reuse:
            step.casts.active = contextlib.nullcontext
        real = torch.rand(32, 1, 28, 28, generator=torch.Generator().manual_seed(1))
        for _ in range(3):
            step(real)
        return [p.detach().clone() for p in (*state.G.parameters(), *state.D.parameters())]

    for a, b in zip(train(True), train(False)):
        assert torch.equal(a, b)

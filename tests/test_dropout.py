"""gankit's Dropout: nn.Dropout's maths (keep with probability 1 - p, scale by 1/(1-p)) with a cheaper mask,
and the LeakyReLU+Dropout pair fused into one C kernel that gives the same bits."""

import logging
import math
import shutil
import subprocess

import pytest
import torch
from torch.nn import functional as F

from gankit.models import MLPDiscriminator, native
from gankit.models.dropout import Dropout, dropout_mask, leaky_relu_dropout, random_lanes, run_fused


def test_random_numbers_are_splitmix64():
    # the first words of SplitMix64 seeded with 0, as published with the generator
    words = random_lanes(0, 12).view("<u8")
    assert [int(w) for w in words] == [0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4, 0x06C45D188009454F]
    assert random_lanes(7, 5).shape == (5,)


def test_mask_keeps_the_right_share_with_the_right_scale():
    torch.manual_seed(0)
    n = 1_000_000
    mask = dropout_mask((1000, 1000), 0.3, torch.float32)
    assert set(mask.unique().tolist()) == {0.0, torch.tensor(1 / 0.7).item()}
    kept = (mask > 0).double().mean().item()
    sigma = math.sqrt(0.7 * 0.3 / n)
    assert abs(kept - 0.7) < 4 * sigma
    # each of the four 16-bit slices of a 64-bit word is a fair draw on its own
    for offset in range(4):
        share = (mask.view(-1)[offset::4] > 0).double().mean().item()
        assert abs(share - 0.7) < 4 * 2 * sigma


def test_neighbouring_elements_are_independent():
    torch.manual_seed(1)
    keep = (dropout_mask((1_000_000,), 0.3, torch.float32) > 0).double()
    for lag in (1, 2, 3, 4, 5):
        r = torch.corrcoef(torch.stack([keep[:-lag], keep[lag:]]))[0, 1].item()
        assert abs(r) < 0.005, (lag, r)


def test_seeded_and_fresh_each_call():
    torch.manual_seed(3)
    a, b = dropout_mask((64, 64), 0.3, torch.float32), dropout_mask((64, 64), 0.3, torch.float32)
    torch.manual_seed(3)
    assert torch.equal(dropout_mask((64, 64), 0.3, torch.float32), a)
    assert not torch.equal(a, b)


def test_forward_and_backward_use_one_mask():
    torch.manual_seed(4)
    layer = Dropout(0.3)
    x = torch.full((256, 1024), 2.0, requires_grad=True)
    y = layer(x)
    y.backward(torch.full_like(y, 3.0))
    kept = y > 0
    assert torch.allclose(y[kept], torch.tensor(2.0 / 0.7))
    assert torch.equal(x.grad > 0, kept)  # the gradient flows exactly where the value did
    assert torch.allclose(x.grad[kept], torch.tensor(3.0 / 0.7))
    assert abs(y.mean().item() - 2.0) < 0.02  # the expectation is kept, as nn.Dropout's


def test_eval_mode_and_dtypes():
    layer = Dropout(0.3)
    x = torch.randn(8, 16)
    assert torch.equal(layer.eval()(x), x)
    layer.train()
    assert layer(x.bfloat16()).dtype == torch.bfloat16
    assert torch.equal(Dropout(0.0)(x), x)
    assert torch.equal(Dropout(1.0)(x), torch.zeros_like(x))
    assert isinstance(layer, torch.nn.Dropout)  # a drop-in: same p, same state dict


@pytest.fixture
def kernels():
    library = native.kernels()
    if library is None:
        assert shutil.which("cc") is None, "a C compiler is here, so the fused kernel should have been built"
        pytest.skip("no C compiler: the fused kernel cannot be built")
    return library


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("shape", [(256, 1024), (3, 7), (2,)])
def test_fused_kernel_gives_the_bits_of_leaky_relu_then_dropout(kernels, dtype, shape):
    torch.manual_seed(5)
    x = (torch.randn(shape) * 3).to(dtype).requires_grad_()
    x.data.view(-1)[0] = 0.0  # leaky_relu's boundary: 0 is not > 0
    dy = torch.randn(shape).to(dtype)
    fused = leaky_relu_dropout(x, 0.2, 0.3, key=1234)
    fused.backward(dy)
    fused_grad, x.grad = x.grad, None
    plain = F.leaky_relu(x, 0.2) * dropout_mask(shape, 0.3, dtype, key=1234)
    plain.backward(dy)
    assert fused.dtype == dtype and torch.equal(fused, plain)
    assert torch.equal(fused_grad, x.grad)


def test_discriminator_fuses_only_while_training_on_the_cpu(kernels):
    D = MLPDiscriminator((1, 28, 28), [64, 32, 16], 0.3)
    x = torch.rand(8, 1, 28, 28)
    torch.manual_seed(9)
    fused = D(x)
    torch.manual_seed(9)  # each pair draws one key, in the order the unfused layers draw theirs
    assert torch.equal(fused, D.net(x).squeeze(1))
    D.eval()
    assert torch.equal(D(x), D.net(x).squeeze(1))  # no dropout at all
    assert torch.equal(run_fused(D.net, x), D.net(x))


def test_without_the_kernel_the_values_are_the_same(kernels, monkeypatch):
    x = torch.randn(64, 256)
    with_kernel = leaky_relu_dropout(x, 0.2, 0.3, key=99)
    monkeypatch.setattr(native, "kernels", lambda: None)
    assert torch.equal(leaky_relu_dropout(x, 0.2, 0.3, key=99), with_kernel)


def test_a_failed_build_falls_back_with_one_warning(monkeypatch, caplog):
    def broken(compiler):
        raise subprocess.CalledProcessError(1, [compiler], stderr="cc1: error: bad flag\n")
    native.kernels.cache_clear()
    monkeypatch.setattr(native, "_build", broken)
    monkeypatch.setattr(native.shutil, "which", lambda name: "/usr/bin/cc")
    try:
        with caplog.at_level(logging.WARNING):
            assert native.kernels() is None
            assert native.kernels() is None  # tried once per process
        assert [r.getMessage() for r in caplog.records] == [
            "could not build the fused LeakyReLU+dropout kernel (cc1: error: bad flag): it runs unfused (same values, slower)"]
    finally:
        native.kernels.cache_clear()


def test_turned_off_by_environment(monkeypatch):
    native.kernels.cache_clear()
    monkeypatch.setenv("GANKIT_NATIVE", "0")
    try:
        assert native.kernels() is None
    finally:
        native.kernels.cache_clear()

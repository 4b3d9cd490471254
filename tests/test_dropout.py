"""gankit's Dropout: nn.Dropout's maths (keep with probability 1 - p, scale by 1/(1-p)) with a cheaper mask."""

import math

import torch
from torch.nn import functional as F

from gankit.data import unlabelled
from gankit.models.dropout import Dropout, dropout_mask, random_lanes
from gankit.models.mlp import MLPDiscriminator


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


def test_the_discriminator_draws_one_mask_key_per_layer_in_order():
    # the masks of the removed fused LeakyReLU+dropout kernel: same keys, same order, same bits
    D = MLPDiscriminator((1, 28, 28), [64, 32, 16], 0.3)
    x = torch.rand(8, 1, 28, 28)
    torch.manual_seed(9)
    out = D(x, unlabelled(x))
    torch.manual_seed(9)
    h = x.flatten(1)
    for layer in (1, 4, 7):  # Linear, LeakyReLU, Dropout triples after the Flatten
        key = int(torch.empty((), dtype=torch.int64).random_())
        h = F.leaky_relu(D.net[layer](h), 0.2) * dropout_mask(
            h.shape[:1] + (D.net[layer].out_features,), 0.3, torch.float32, key
        )
    assert torch.equal(out, D.net[-1](h).squeeze(1))

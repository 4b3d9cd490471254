"""The minibatch standard deviation feature: its value by hand, its groups, and where it applies."""

import pytest
import torch

import gankit
from gankit.checks import validate
from gankit.data import unlabelled
from gankit.models import build_models
from gankit.models.minibatch_std import MinibatchStd


def test_the_channel_is_each_group_s_mean_standard_deviation():
    x = torch.tensor([0.0, 2.0, 1.0, 1.0]).view(4, 1, 1, 1).expand(4, 2, 3, 3).contiguous()
    out = MinibatchStd(group=2)(x)
    assert out.shape == (4, 3, 3, 3) and torch.equal(out[:, :2], x)
    # groups by i mod 2: images 0 and 2 (0 and 1: std 0.5), images 1 and 3 (2 and 1: std 0.5)
    assert torch.allclose(out[:, 2], torch.full((4, 3, 3), 0.5))
    y = x.clone()
    y[2] = 0.0  # images 0 and 2 now alike: their group's spread is (almost) 0, the other's stays
    out = MinibatchStd(group=2)(y)
    assert out[0, 2].max() < 1e-3 and out[2, 2].max() < 1e-3
    assert torch.allclose(out[1, 2], torch.full((3, 3), 0.5)) and torch.allclose(out[3, 2], torch.full((3, 3), 0.5))


def test_a_batch_the_group_does_not_divide_uses_a_smaller_group():
    x = torch.randn(6, 4, 2, 2)
    assert torch.allclose(MinibatchStd(group=4)(x), MinibatchStd(group=3)(x))
    assert MinibatchStd(group=4)(x[:1])[:, 4].abs().max() < 1e-3  # one image: no spread


def test_alike_images_score_lower_than_varied_ones():
    varied = torch.randn(16, 8, 4, 4)
    alike = varied[:1].expand(16, 8, 4, 4) + 0.01 * torch.randn(16, 8, 4, 4)
    layer = MinibatchStd()
    assert layer(alike)[:, 8].mean() < 0.1 * layer(varied)[:, 8].mean()


@pytest.mark.parametrize("arch", ["dcgan", "resnet", "r3gan"])
def test_the_conv_discriminators_take_it(arch):
    config = gankit.apply_overrides(
        gankit.load_preset("dcgan-small-data"), [f"model.arch={arch}", "model.minibatch_std=4", "data.image_size=32"]
    )
    plain = gankit.apply_overrides(gankit.load_preset("dcgan-small-data"), [f"model.arch={arch}", "data.image_size=32"])
    D, D_plain = build_models(config)[1], build_models(plain)[1]
    x = torch.randn(8, 3, 32, 32)
    assert D(x, unlabelled(x)).shape == (8,)
    assert any(isinstance(m, MinibatchStd) for m in D.modules())
    assert not any(isinstance(m, MinibatchStd) for m in D_plain.modules())


def test_it_is_refused_where_it_does_not_apply():
    with pytest.raises(gankit.GankitError, match="model.minibatch_std is a group size of at least 2"):
        gankit.apply_overrides(gankit.load_preset("dcgan-small-data"), ["model.minibatch_std=1"])
    config = gankit.apply_overrides(gankit.load_preset("report-gan-mnist"), ["model.minibatch_std=4"])
    with pytest.raises(gankit.GankitError, match="model.minibatch_std does not apply to model.arch mlp"):
        validate(config)

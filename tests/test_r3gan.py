"""R3GAN's nets: shapes at every size, parameters against a hand count, blocks that start as the identity, the
resampling filter, conditioning, refusals, and a short real run."""

import json

import pytest
import torch

import gankit
from gankit.checks import validate
from gankit.config import apply_overrides, load_preset
from gankit.errors import GankitError
from gankit.models import build_models
from gankit.models.r3gan import Downsample, ResidualBlock, Upsample


def r3gan_config(*overrides: str):
    """A small R3GAN for 32x32 colour images, checked as a run checks it."""
    config = apply_overrides(
        load_preset("dcgan-small-data"),
        ["model.arch=r3gan", "data.image_size=32", "model.base_channels=16", "model.group_channels=8", *overrides],
    )
    validate(config)
    return config


@pytest.mark.parametrize("size", [32, 64, 128])
def test_shapes_at_each_size(size):
    config = r3gan_config(f"data.image_size={size}", "model.blocks=1")
    torch.manual_seed(0)
    G, D = build_models(config)
    z = torch.randn(2, config.model.noise_dim)
    images = G(z, torch.zeros(2, dtype=torch.long))
    assert images.shape == (2, 3, size, size)
    assert D(images, torch.zeros(2, dtype=torch.long)).shape == (2,)


def test_parameter_counts_match_a_hand_count():
    config = r3gan_config("model.widths=[32, 16, 16, 8]", "model.noise_dim=8")
    G, D = build_models(config)

    def block(w):  # 1x1 to 2w, bias, grouped 3x3 (8 channels a group), bias, 1x1 back
        return w * 2 * w + 2 * w + 2 * w * 8 * 9 + 2 * w + 2 * w * w

    g = (32 * 16 + 8 * 32) + 2 * block(32)  # the 4x4 basis and its linear map; 2 blocks a stage
    g += 32 * 16 + 2 * block(16)  # 1x1 from 32 to 16, then upsampling (no weights)
    g += 2 * block(16)  # the same width: no 1x1
    g += 16 * 8 + 2 * block(8)
    g += 8 * 3  # to the image
    d = 3 * 8 + 2 * block(8) + 8 * 16 + 2 * block(16) + 2 * block(16) + 16 * 32 + 2 * block(32)
    d += 32 * 16 + (32 + 1)  # the depthwise 4x4 basis, then the logit
    assert sum(p.numel() for p in G.parameters()) == g
    assert sum(p.numel() for p in D.parameters()) == d
    # the minibatch standard deviation adds one 4x4 channel: its basis pattern and its weight in the logit
    D_std = build_models(apply_overrides(config, ["model.minibatch_std=4"]))[1]
    assert sum(p.numel() for p in D_std.parameters()) == d + 16 + 1


def test_a_block_starts_as_the_identity_and_learns_away_from_it():
    torch.manual_seed(0)
    block = ResidualBlock(16, 2, 8, blocks_in_net=8)
    x = torch.randn(2, 16, 8, 8)
    assert torch.equal(block(x), x)
    block(x).square().sum().backward()
    assert block.project.weight.grad.abs().sum() > 0  # the zero layer gets a gradient, so the block can learn


def test_resampling_keeps_a_flat_image_flat_inside_and_halves_or_doubles_the_side():
    flat = torch.full((1, 2, 8, 8), 3.0)
    up, down = Upsample(2, 2)(flat), Downsample(2, 2)(flat)
    assert up.shape == (1, 2, 16, 16) and down.shape == (1, 2, 4, 4)
    assert torch.allclose(up[..., 2:-2, 2:-2], torch.tensor(3.0)) and torch.allclose(
        down[..., 1:-1, 1:-1], torch.tensor(3.0)
    )
    # a point spreads as the [1, 3, 3, 1] filter: at 1/8, 3/8, 3/8, 1/8 of the sum along each axis
    point = torch.zeros(1, 1, 8, 8)
    point[..., 4, 4] = 1.0
    column = Upsample(1, 1)(point)[0, 0, :, 8]
    assert torch.allclose(column[7:11] / column.sum(), torch.tensor([1.0, 3.0, 3.0, 1.0]) / 8)


def test_a_projection_d_reads_the_class_and_g_joins_it_to_the_noise():
    config = r3gan_config("model.conditioning=projection", "model.num_classes=10", "model.blocks=1")
    torch.manual_seed(0)
    G, D = build_models(config)
    z = torch.randn(4, config.model.noise_dim)
    zeros, nines = torch.zeros(4, dtype=torch.long), torch.full((4,), 9)
    with torch.no_grad():
        for module in G.modules():  # past the identity start, so that the class reaches the image
            if isinstance(module, ResidualBlock):
                torch.nn.init.normal_(module.project.weight, 0, 0.1)
        assert not torch.equal(G(z, zeros), G(z, nines))
        x = G(z, zeros)
        assert not torch.equal(D(x, zeros), D(x, nines))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (("model.widths=[16, 16]",), "model.widths gives 2 stages; images of side 32 need 4"),
        (("model.widths=[16, 16, 16, 10]",), "must be a positive multiple of model.group_channels"),
        (("model.blocks=0",), "model.blocks must be >= 1"),
        (("data.image_size=48",), "model.arch r3gan makes images of side 32, 64, 128, 256"),
        (("model.conditioning=acgan", "model.num_classes=10"), "does not apply to model.arch r3gan"),
    ],
)
def test_bad_settings_are_refused_in_one_line(overrides, message):
    with pytest.raises(GankitError, match=message):
        r3gan_config(*overrides)


def test_r3gan_trains_on_real_digits_with_its_loss_and_r1_r2(mnist_dir, tmp_path):
    config = apply_overrides(
        load_preset("dcgan-mnist"),
        [
            "model.arch=r3gan",
            "model.base_channels=16",
            "model.group_channels=8",
            "model.blocks=1",
            "train.loss=relativistic",
            "train.r1_gamma=0.1",
            "train.r2_gamma=0.1",
            "train.beta1=0",
            "train.beta2=0.99",
            "data.limit=256",
            "train.batch_size=32",
            "train.epochs=2",
            "output.progress=false",
            "output.report=false",
        ],
    )
    run = gankit.train(config, tmp_path / "run", data_dir=mnist_dir)
    records = [json.loads(line) for line in (run.path / "metrics.jsonl").read_text().splitlines()]
    assert len(records) == 2 and all(r["r1_penalty"] > 0 and r["r2_penalty"] > 0 for r in records)
    images = gankit.load_run(run.path).sample(8, seed=0)
    assert images.shape == (8, 1, 32, 32) and images.dtype == torch.uint8

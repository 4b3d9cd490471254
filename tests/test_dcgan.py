import numpy as np
import pytest
import torch

import gankit
from gankit.checkpoint import load_checkpoint
from gankit.checks import validate
from gankit.config import apply_overrides, load_preset
from gankit.data import unlabelled
from gankit.errors import GankitError
from gankit.models import build_models, count_parameters


def test_seed_dcgan_parameter_counts_match_the_layer_sizes():
    G, D = build_models(load_preset("report-dcgan-cifar10"))
    g = (
        128 * 2048
        + 2 * 2048  # Dense 2048 (no bias: batch norm follows) + its batch norm
        + 512 * 256 * 16
        + 2 * 256  # 4x4 transposed conv 512 -> 256 + batch norm
        + 256 * 128 * 16
        + 2 * 128
        + 128 * 64 * 16
        + 2 * 64
        + 64 * 3 * 16
        + 3
    )  # to 3 channels, with bias, no norm
    d = (
        3 * 64 * 16
        + 64  # input conv with bias, no norm
        + 64 * 128 * 16
        + 2 * 128
        + 128 * 256 * 16
        + 2 * 256
        + 256 * 512 * 16
        + 2 * 512
        + 2048
        + 1
    )  # Dense 1 on the flattened 2x2x512
    assert count_parameters(G) == g == 3_022_723
    assert count_parameters(D) == d == 2_759_489


def test_seed_dcgan_shapes_and_ranges():
    torch.manual_seed(0)
    G, D = build_models(load_preset("report-dcgan-cifar10"))
    z = G.sample_noise(8)
    assert z.shape == (8, 128)
    features = G.project(z).view(-1, 512, 2, 2)
    assert features.shape == (8, 512, 2, 2)
    images = G(z, unlabelled(z))
    assert images.shape == (8, 3, 32, 32)
    assert images.min() >= -1 and images.max() <= 1  # tanh
    sizes = []
    x = images
    for layer in D.net:
        x = layer(x)
        if isinstance(layer, torch.nn.Conv2d):
            sizes.append(tuple(x.shape[1:]))
    assert sizes == [(64, 16, 16), (128, 8, 8), (256, 4, 4), (512, 2, 2)]
    assert D(images, unlabelled(images)).shape == (8,)


def test_dcgan_follows_the_paper_rules():
    G, D = build_models(load_preset("report-dcgan-cifar10"))
    assert isinstance(list(G.modules())[-1], torch.nn.Tanh)
    assert not isinstance(list(G.net)[-2], torch.nn.BatchNorm2d)  # no norm on G's output
    assert not isinstance(list(D.net)[1], torch.nn.BatchNorm2d)  # none on D's input layer
    assert all(m.negative_slope == 0.2 for m in D.modules() if isinstance(m, torch.nn.LeakyReLU))
    assert not any(isinstance(m, (torch.nn.MaxPool2d, torch.nn.AvgPool2d)) for m in D.modules())
    convs = [m for m in G.modules() if isinstance(m, torch.nn.ConvTranspose2d)]
    assert all(m.kernel_size == (4, 4) and m.stride == (2, 2) and m.padding == (1, 1) for m in convs)


def test_grey_dcgan_for_mnist():
    G, D = build_models(load_preset("dcgan-mnist"))
    assert G.sample(4).shape == (4, 1, 32, 32)


def test_dcgan_sizes_are_powers_of_two_from_32_to_256():
    for size in (28, 48, 512):
        with pytest.raises(
            GankitError, match=f"dcgan makes images of side 32, 64, 128, 256; data.image_size is {size}"
        ):
            validate(
                apply_overrides(load_preset("report-dcgan-cifar10"), ["data.dataset=folder", f"data.image_size={size}"])
            )


@pytest.mark.parametrize("size", [64, 128, 256])
def test_a_larger_dcgan_adds_blocks_and_keeps_its_widths_capped(size):
    config = apply_overrides(
        load_preset("report-dcgan-cifar10"), ["data.dataset=folder", f"data.image_size={size}", "model.base_channels=4"]
    )
    G, D = build_models(config)
    images = G.sample(2)
    assert images.shape == (2, 3, size, size) and images.abs().max() <= 1
    assert D(images, unlabelled(images)).shape == (2,)
    convolutions = [m for m in G.net if isinstance(m, torch.nn.ConvTranspose2d)]
    assert len(convolutions) == size.bit_length() - 2  # one stride-2 block per doubling from 2x2
    assert max(m.in_channels for m in convolutions) == 8 * 4


@pytest.mark.slow  # a training run
@pytest.mark.parametrize("size", [64, 128])
def test_a_folder_of_larger_images_trains_at_their_size_with_dcgan_small_data(tmp_path, size):
    from PIL import Image

    rng = np.random.default_rng(0)
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(8):
        Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    user = [f"data.image_size={size}"] if size != 64 else []  # the one setting a user gives
    config = apply_overrides(
        load_preset("dcgan-small-data"),
        [
            *user,
            "model.base_channels=4",
            "train.batch_size=4",
            "train.epochs=1",
            "output.progress=false",
            "output.report=false",
        ],
    )
    run = gankit.train(config, tmp_path / "run", data_dir=folder)  # EMA, DiffAugment and batch norm together
    assert run.sample(2).shape == (2, 3, size, size)
    assert "generator_ema" in load_checkpoint(run.checkpoint())
    average, raw = (run.generator(raw=raw).state_dict() for raw in (False, True))
    assert torch.equal(average["project.0.weight"], raw["project.0.weight"])  # 2 steps into the 500 of copying G

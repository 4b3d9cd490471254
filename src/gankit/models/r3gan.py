"""R3GAN's G and D (Huang et al. 2024, "The GAN is dead; long live the GAN!"): a plain modern ConvNet with no
normalisation layers, for any power-of-two side from 32 to 256.

Both nets are stages of ResNeXt-style residual blocks, one stage per side from 4x4 up to the image's:

    block:  x + conv 1x1 (zero at the start) ∘ act ∘ grouped conv 3x3 ∘ act ∘ conv 1x1 widening `expansion` times
    G:      z (and its class embedding) -> a learned 4x4 basis scaled per channel by a linear map of z -> blocks,
            then per stage: conv 1x1 to its width, upsample x2 -> blocks; conv 1x1 to the image (no tanh)
    D:      conv 1x1 from the image -> per stage: blocks, downsample x2, conv 1x1 to the next width; at 4x4 a
            depthwise 4x4 conv (the basis) -> a linear logit (or a projection head); with model.minibatch_std
            (which the paper drops) the batch's spread joins the basis as one more channel

with act a leaky ReLU (0.2) after a learned bias, and resampling by the [1, 3, 3, 1] filter ([1, 2, 1] convolved
with the box of a factor of 2). Weights start He-normal; each block's inner convolutions are scaled down by
(blocks in the net)^(-1/4) and its last one starts at zero (fix-up), so every block starts as the identity. The grouped
convolution has `group_channels` channels per group (the paper's 16). Widths (`model.widths`, G's order from 4x4)
default to model.base_channels at every stage; the paper's CIFAR-10 net is 768 at each of its 4 stages, 2 blocks each.
A conditional G joins a class embedding to z and a conditional D ends in a projection head (`models.conditioning`).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, TypeVar

import torch
import torch.nn.functional as F
from torch import nn

from gankit.errors import GankitError
from gankit.models.base import ARCHS, Arch, Generator
from gankit.models.conditioning import CONDITIONINGS
from gankit.models.minibatch_std import MinibatchStd

if TYPE_CHECKING:
    from gankit.config import Config

SIZES = (32, 64, 128, 256)
LEAK = 0.2
ACTIVATION_GAIN = math.sqrt(2 / (1 + LEAK**2))  # keeps a leaky ReLU's output variance that of its input


Layer = TypeVar("Layer", nn.Conv2d, nn.Linear)


def _he(layer: Layer, gain: float = 1.0) -> Layer:
    """Weights from N(0, gain² / fan-in), bias 0."""
    fan_in = layer.weight[0].numel()
    nn.init.normal_(layer.weight, 0.0, gain / math.sqrt(fan_in))
    if layer.bias is not None:
        nn.init.zeros_(layer.bias)
    return layer


def conv(inputs: int, outputs: int, kernel: int = 1, *, groups: int = 1, gain: float = 1.0) -> nn.Conv2d:
    return _he(nn.Conv2d(inputs, outputs, kernel, padding=kernel // 2, groups=groups, bias=False), gain)


class BiasedLeakyReLU(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(x + self.bias.to(x.dtype).view(1, -1, 1, 1), LEAK)


class ResidualBlock(nn.Module):
    def __init__(self, width: int, expansion: int, group_channels: int, blocks_in_net: int):
        super().__init__()
        wide = width * expansion
        gain = ACTIVATION_GAIN * blocks_in_net ** (-1 / 4)  # 3 layers: the depth's share of each, 1 / (2·3 − 2)
        self.expand = conv(width, wide, gain=gain)
        self.act1 = BiasedLeakyReLU(wide)
        self.mix = conv(wide, wide, 3, groups=wide // group_channels, gain=gain)
        self.act2 = BiasedLeakyReLU(wide)
        self.project = conv(wide, width, gain=0.0)  # the block starts as the identity

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.project(self.act2(self.mix(self.act1(self.expand(x)))))


def _resampling_kernel() -> torch.Tensor:
    taps = torch.tensor([1.0, 3.0, 3.0, 1.0])  # [1, 2, 1] * [1, 1]
    kernel = torch.outer(taps, taps)
    return kernel / kernel.sum()


class Upsample(nn.Module):
    """Conv 1x1 to the new width (where it changes), then x2 by the [1, 3, 3, 1] filter, channel by channel."""

    kernel: torch.Tensor

    def __init__(self, inputs: int, outputs: int):
        super().__init__()
        self.change = conv(inputs, outputs) if inputs != outputs else nn.Identity()
        self.register_buffer("kernel", 4 * _resampling_kernel()[None, None], persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.change(x)
        kernel = self.kernel.to(x.dtype).expand(x.shape[1], 1, 4, 4)
        return F.conv_transpose2d(x, kernel, stride=2, padding=1, groups=x.shape[1])


class Downsample(nn.Module):
    """/2 by the [1, 3, 3, 1] filter, channel by channel, then conv 1x1 to the new width (where it changes)."""

    kernel: torch.Tensor

    def __init__(self, inputs: int, outputs: int):
        super().__init__()
        self.change = conv(inputs, outputs) if inputs != outputs else nn.Identity()
        self.register_buffer("kernel", _resampling_kernel()[None, None], persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        kernel = self.kernel.to(x.dtype).expand(x.shape[1], 1, 4, 4)
        return self.change(F.conv2d(x, kernel, stride=2, padding=1, groups=x.shape[1]))


class GenerativeBasis(nn.Module):
    """(N, F) -> (N, C, 4, 4): a learned 4x4 pattern per channel, scaled by a linear map of the input."""

    def __init__(self, inputs: int, channels: int):
        super().__init__()
        self.basis = nn.Parameter(torch.randn(channels, 4, 4))
        self.linear = _he(nn.Linear(inputs, channels, bias=False))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.basis[None].to(z.dtype) * self.linear(z)[:, :, None, None]


class DiscriminativeBasis(nn.Module):
    """(N, C, 4, 4) -> (N, C): a depthwise 4x4 convolution, each channel's own pattern."""

    def __init__(self, channels: int):
        super().__init__()
        self.basis = _he(nn.Conv2d(channels, channels, 4, groups=channels, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.basis(x).flatten(1)


def stage_sides(size: int) -> list[int]:
    """The sides of the stages, 4 up to `size`."""
    return [4 * 2**i for i in range(size.bit_length() - 2)]


class R3GANGenerator(Generator):
    value_range = (-1.0, 1.0)  # what it learns to make; its output is linear, so a sample may overshoot (clamped)

    def __init__(
        self,
        noise_dim: int,
        channels: int,
        widths: list[int],
        *,
        blocks: int,
        expansion: int,
        group_channels: int,
        noise: str = "normal",
        conditioning: str = "none",
        num_classes: int = 0,
    ):
        super().__init__()
        size = 4 * 2 ** (len(widths) - 1)
        self.noise_dim, self.noise, self.image_shape = noise_dim, noise, (channels, size, size)
        self.num_classes = num_classes
        self.label_input = CONDITIONINGS[conditioning].g_input(num_classes)
        inputs = noise_dim + getattr(self.label_input, "extra", 0)
        depth = blocks * len(widths)
        layers: list[nn.Module] = [GenerativeBasis(inputs, widths[0])]
        for i, width in enumerate(widths):
            if i:
                layers.append(Upsample(widths[i - 1], width))
            layers += [ResidualBlock(width, expansion, group_channels, depth) for _ in range(blocks)]
        self.net = nn.Sequential(*layers)
        self.to_image = conv(widths[-1], channels)

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.to_image(self.net(self.label_input(z, y)))


class R3GANDiscriminator(nn.Module):
    def __init__(
        self,
        channels: int,
        widths: list[int],
        *,
        blocks: int,
        expansion: int,
        group_channels: int,
        conditioning: str = "none",
        num_classes: int = 0,
        minibatch_std: int = 0,
    ):
        super().__init__()
        widths = widths[::-1]  # from the image's side down to 4x4
        depth = blocks * len(widths)
        layers: list[nn.Module] = [conv(channels, widths[0])]
        for i, width in enumerate(widths):
            layers += [ResidualBlock(width, expansion, group_channels, depth) for _ in range(blocks)]
            if i + 1 < len(widths):
                layers.append(Downsample(width, widths[i + 1]))
        features = widths[-1]
        if minibatch_std:  # not in the paper's net: one more 4x4 channel, the batch's spread, into the basis
            layers.append(MinibatchStd(minibatch_std))
            features += 1
        layers.append(DiscriminativeBasis(features))
        last, self.head = CONDITIONINGS[conditioning].d_end(features, num_classes)
        for layer in [*last, *self.head.modules()]:
            if isinstance(layer, nn.Linear):
                _he(layer)
        self.net = nn.Sequential(*layers, *last)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.head(self.net(x), y)


def stage_widths(config: Config) -> list[int]:
    m = config.model
    return list(m.widths) or [m.base_channels] * len(stage_sides(config.data.image_size))


def check_r3gan(config: Config) -> None:
    m, stages = config.model, len(stage_sides(config.data.image_size))
    widths = stage_widths(config)
    if len(widths) != stages:
        raise GankitError(
            f"model.widths gives {len(widths)} stages; images of side {config.data.image_size} need {stages} "
            f"(4x4 up to {config.data.image_size}x{config.data.image_size})"
        )
    for key in ("blocks", "expansion", "group_channels"):
        if getattr(m, key) < 1:
            raise GankitError(f"model.{key} must be >= 1, got {getattr(m, key)}")
    for width in widths:
        if width < 1 or (width * m.expansion) % m.group_channels:
            raise GankitError(
                f"model.widths: each width times model.expansion ({m.expansion}) must be a positive multiple of "
                f"model.group_channels ({m.group_channels}), got {width}"
            )


def build_r3gan(config: Config) -> tuple[Generator, nn.Module]:
    m, d = config.model, config.data
    widths = stage_widths(config)
    G = R3GANGenerator(
        m.noise_dim,
        d.channels,
        widths,
        blocks=m.blocks,
        expansion=m.expansion,
        group_channels=m.group_channels,
        noise=m.noise,
        conditioning=m.conditioning,
        num_classes=m.num_classes,
    )
    D = R3GANDiscriminator(
        d.channels,
        widths,
        blocks=m.blocks,
        expansion=m.expansion,
        group_channels=m.group_channels,
        conditioning=m.conditioning,
        num_classes=m.num_classes,
        minibatch_std=m.minibatch_std,
    )
    return G, D


ARCHS.register("r3gan")(
    Arch(build_r3gan, sizes=SIZES, conditionings=("none", "projection"), minibatch_std=True, check_model=check_r3gan)
)

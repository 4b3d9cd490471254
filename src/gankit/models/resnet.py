"""The ResNet G and D of SNGAN (Miyato et al. 2018, appendix B.4) for 32x32 and 64x64 images.

Following Mimicry's SNGAN (Lee & Town 2020), whose published CIFAR-10 and 64x64 recipes these are:

    32x32  G: z -> Dense 4x4x(4b) -> 3 up-blocks of 4b -> BN, ReLU, conv 3x3 -> tanh
           D: optimised block to 2b (16x16) -> block down (8x8) -> 2 blocks of 2b -> ReLU, sum pool -> Dense 1
    64x64  G: z -> Dense 4x4x(16b) -> up-blocks 16b, 8b, 4b, 2b, b -> BN, ReLU, conv 3x3 -> tanh
           D: optimised block to b (32x32) -> blocks down to 2b, 4b, 8b, 16b (2x2) -> ReLU, sum pool -> Dense 1

with b = model.base_channels (64 gives the papers' widths). An up-block is BN, ReLU, bilinear x2, conv 3x3,
BN, ReLU, conv 3x3, plus a shortcut (x2, conv 1x1); a down-block ReLU, conv 3x3, ReLU, conv 3x3 (which
widens), average pool, plus a shortcut (conv 1x1, pool). D has no batch norm, so it takes spectral norm
(model.spectral_norm) and real and fake can share its forward. Weights start Xavier-uniform, gain √2 on the
residual path and 1 elsewhere. Conditional: G's batch norms become class-conditional and D gets a projection
or ACGAN head on its pooled features (`models.conditioning`).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, TypeVar

import torch
import torch.nn.functional as F
from torch import nn

from gankit.models.base import ARCHS, Arch, Float32Output, Generator, build_conv_pair
from gankit.models.conditioning import CONDITIONINGS, Conditioning, run_layer
from gankit.models.minibatch_std import MinibatchStd

if TYPE_CHECKING:
    from gankit.config import Config

SIZES = (32, 64)  # the image sides the ResNet makes


Layer = TypeVar("Layer", nn.Conv2d, nn.Linear)


def _xavier(layer: Layer, gain: float = 1.0) -> Layer:
    nn.init.xavier_uniform_(layer.weight, gain)  # biases keep torch's default, as in Mimicry
    return layer


class UpBlock(nn.Module):
    """BN, ReLU, bilinear x2, conv 3x3, BN, ReLU, conv 3x3; plus x2 and conv 1x1. Its norms are as `conditioning`
    makes them (class-conditional for a conditional G)."""

    def __init__(self, wide: int, narrow: int, conditioning: Conditioning, classes: int = 0):
        super().__init__()
        self.norm1, self.norm2 = (conditioning.g_norm(n, classes) for n in (wide, narrow))
        self.conv1 = _xavier(nn.Conv2d(wide, narrow, 3, 1, 1), math.sqrt(2))
        self.conv2 = _xavier(nn.Conv2d(narrow, narrow, 3, 1, 1), math.sqrt(2))
        self.shortcut = _xavier(nn.Conv2d(wide, narrow, 1))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = self.conv1(_double(F.relu(run_layer(self.norm1, x, y))))
        h = self.conv2(F.relu(run_layer(self.norm2, h, y)))
        return h + self.shortcut(_double(x))


class DownBlock(nn.Module):
    """ReLU, conv 3x3, ReLU, conv 3x3 (widening in the second), (average pool); plus conv 1x1, (pool) where the
    width or side changes. The shortcut sees x itself, as in SNGAN's code (Mimicry's in-place ReLU hands it relu(x)).

    The `first` block sees the image itself: no ReLU before its first conv, which widens, and its shortcut pools
    before the 1x1 conv (SNGAN's "optimised" block); it always halves the side."""

    def __init__(self, narrow: int, wide: int, *, down: bool, first: bool = False):
        super().__init__()
        if first and not down:
            raise ValueError("the first block halves the side")
        self.down, self.first = down, first
        middle = wide if first else narrow
        self.conv1 = _xavier(nn.Conv2d(narrow, middle, 3, 1, 1), math.sqrt(2))
        self.conv2 = _xavier(nn.Conv2d(middle, wide, 3, 1, 1), math.sqrt(2))
        self.shortcut = _xavier(nn.Conv2d(narrow, wide, 1)) if down or narrow != wide else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv2(F.relu(self.conv1(x if self.first else F.relu(x))))
        if self.down:
            h = F.avg_pool2d(h, 2)
        if self.shortcut is None:
            return h + x
        if self.first:
            return h + self.shortcut(F.avg_pool2d(x, 2))
        skip = self.shortcut(x)
        return h + (F.avg_pool2d(skip, 2) if self.down else skip)


def _double(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)  # as Mimicry's blocks


def generator_widths(size: int, base_channels: int) -> list[int]:
    """G's widths from 4x4 on, one more than its up-blocks: 4b at every side for 32, 16b halving to b for 64."""
    if size == 32:
        return [4 * base_channels] * 4
    return [base_channels * 2**i for i in range(4, -1, -1)]


class ResNetGenerator(Generator):
    """SNGAN's ResNet generator (module docstring), tanh output: data in [-1, 1]."""

    value_range = (-1.0, 1.0)

    def __init__(
        self,
        noise_dim: int,
        channels: int,
        base_channels: int = 64,
        *,
        noise: str = "normal",
        conditioning: str = "none",
        num_classes: int = 0,
        size: int = 32,
    ):
        super().__init__()
        self.noise_dim, self.noise, self.image_shape = noise_dim, noise, (channels, size, size)
        self.num_classes = num_classes
        widths = generator_widths(size, base_channels)
        self.top = widths[0]
        self.project = _xavier(nn.Linear(noise_dim, 16 * self.top))
        self.blocks = nn.ModuleList(
            UpBlock(wide, narrow, CONDITIONINGS[conditioning], num_classes) for wide, narrow in zip(widths, widths[1:])
        )
        self.out = nn.Sequential(
            nn.BatchNorm2d(widths[-1]),
            nn.ReLU(),
            _xavier(nn.Conv2d(widths[-1], channels, 3, 1, 1)),
            Float32Output(nn.Tanh()),
        )

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        x = self.project(z).view(-1, self.top, 4, 4)
        for block in self.blocks:
            x = block(x, y)
        return self.out(x)


class ResNetDiscriminator(nn.Module):
    """SNGAN's ResNet discriminator (module docstring): a logit per image, or a conditional head's output."""

    def __init__(
        self,
        channels: int,
        base_channels: int = 64,
        *,
        conditioning: str = "none",
        num_classes: int = 0,
        size: int = 32,
        minibatch_std: int = 0,
    ):
        super().__init__()
        if size == 32:
            width = 2 * base_channels
            blocks: list[nn.Module] = [
                DownBlock(channels, width, down=True, first=True),
                DownBlock(width, width, down=True),
                DownBlock(width, width, down=False),
                DownBlock(width, width, down=False),
            ]
        else:
            widths = [base_channels * 2**i for i in range(5)]  # b at 32x32 to 16b at 2x2
            blocks = [DownBlock(channels, widths[0], down=True, first=True)]
            blocks += [DownBlock(narrow, wide, down=True) for narrow, wide in zip(widths, widths[1:])]
            width = widths[-1]
        if minibatch_std:
            blocks.append(MinibatchStd(minibatch_std))
            width += 1
        self.blocks = nn.Sequential(*blocks)
        last, self.head = CONDITIONINGS[conditioning].d_end(width, num_classes)
        self.end = nn.Sequential(*(_xavier(layer) for layer in last))  # an unconditional D's last Linear

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        features = F.relu(self.blocks(x)).sum(dim=(2, 3))  # global sum pooling
        return self.head(self.end(features), y)

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any, **kwargs: Any) -> None:
        # checkpoints written before the conditionings made D's last layers name an unconditional D's Linear `linear`
        for key in [k for k in state_dict if k.startswith(prefix + "linear.")]:
            state_dict[prefix + "end.0." + key.removeprefix(prefix + "linear.")] = state_dict.pop(key)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


def build_resnet(config: Config) -> tuple[Generator, nn.Module]:
    return build_conv_pair(config, ResNetGenerator, ResNetDiscriminator)


ARCHS.register("resnet")(
    Arch(
        build_resnet,
        sizes=SIZES,
        conditionings=("none", "projection", "acgan"),
        g_batch_norm=True,
        minibatch_std=True,
    )
)

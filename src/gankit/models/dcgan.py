"""The report's DCGAN: convolutional G and D for 32x32 images (and 64, 128, 256).

Where the report is silent the DCGAN paper's rules apply (Radford et al., 2015): batch norm in G
and D except G's output layer and D's input layer; ReLU in G, tanh on G's output (data in
[-1, 1]); LeakyReLU(0.2) in D; strided convolutions, no pooling; kernel 4, stride 2, padding 1,
which doubles (G) or halves (D) the size exactly; weights from N(0, 0.02), batch-norm scales from
N(1, 0.02). Convolutions followed by batch norm carry no bias (the norm's shift replaces it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from gankit.models.base import ARCHS, Arch, Float32Output, Generator, build_conv_pair
from gankit.models.conditioning import CONDITIONINGS, run_layers
from gankit.models.minibatch_std import MinibatchStd

if TYPE_CHECKING:
    from gankit.config import Config


def _dcgan_init(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)) and m.affine:  # a conditional norm has its own scales
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


class DCGANGenerator(Generator):
    """z (128) -> Dense 2048 -> 2x2x512 -> 4x4x256 -> 8x8x128 -> 16x16x64 -> 32x32xC, tanh.

    Larger sizes (64, 128, 256) add stride-2 blocks at the top, widths capped at 8 x base_channels,
    so the 32x32 model is the report's exactly. A conditional G's batch norms are class-conditional (their
    scale and shift looked up by label)."""

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

        def norm(features: int, dims: int = 2) -> nn.Module:
            return CONDITIONINGS[conditioning].g_norm(features, num_classes, dims)

        widths = block_widths(size, base_channels)  # at 2x2, 4x4, ..., size/2
        self.top = widths[0]
        self.project = nn.Sequential(nn.Linear(noise_dim, 4 * self.top, bias=False), norm(4 * self.top, 1), nn.ReLU())
        layers: list[nn.Module] = []
        for wide, narrow in zip(widths, widths[1:]):  # each doubles the side
            layers += [nn.ConvTranspose2d(wide, narrow, 4, 2, 1, bias=False), norm(narrow), nn.ReLU()]
        layers += [nn.ConvTranspose2d(widths[-1], channels, 4, 2, 1), Float32Output(nn.Tanh())]  # no norm on the output
        self.net = nn.Sequential(*layers)
        _dcgan_init(self)

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        x = run_layers(self.project, z, y).view(-1, self.top, 2, 2)  # (N, 2048) -> (N, 512, 2, 2)
        return run_layers(self.net, x, y)  # -> (N, C, size, size)


class DCGANDiscriminator(nn.Module):
    """32x32xC -> 16x16x64 -> 8x8x128 -> 4x4x256 -> 2x2x512 -> flatten 2048 -> Dense 1 (a logit).

    Larger sizes add stride-2 blocks at the bottom, the mirror of G's. Conditional
    (`models.conditioning`): a projection or ACGAN head on the 2048 features replaces the last Dense."""

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
        widths = block_widths(size, base_channels)[::-1]  # at size/2, ..., 2x2
        layers: list[nn.Module] = [
            nn.Conv2d(channels, widths[0], 4, 2, 1),
            nn.LeakyReLU(0.2),
        ]  # no norm on the input layer
        for narrow, wide in zip(widths, widths[1:]):  # each halves the side
            layers += [nn.Conv2d(narrow, wide, 4, 2, 1, bias=False), nn.BatchNorm2d(wide), nn.LeakyReLU(0.2)]
        if minibatch_std:
            layers.append(MinibatchStd(minibatch_std))
        layers.append(nn.Flatten())
        features = (widths[-1] + bool(minibatch_std)) * 4
        last, self.head = CONDITIONINGS[conditioning].d_end(features, num_classes)
        self.net = nn.Sequential(*layers, *last)
        _dcgan_init(self)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        return self.head(self.net(x), y)  # (N, C, size, size) -> (N,) logits


SIZES = (32, 64, 128, 256)  # the image sides the DCGAN makes


def block_widths(size: int, base_channels: int) -> list[int]:
    """G's feature widths from 2x2 up to size/2 (D's in reverse): base x 8, 4, 2, 1 at 32x32; a larger
    size puts more blocks of base x 8 at the small end."""
    blocks = size.bit_length() - 2  # 32 -> 4 stride-2 blocks from 2x2
    return [base_channels * min(8, 2 ** (blocks - 1 - i)) for i in range(blocks)]


def build_dcgan(config: Config) -> tuple[Generator, nn.Module]:
    return build_conv_pair(config, DCGANGenerator, DCGANDiscriminator)


# a convolutional D has no flat input to join labels to: no concat
ARCHS.register("dcgan")(
    Arch(
        build_dcgan,
        sizes=SIZES,
        conditionings=("none", "projection", "acgan"),
        g_batch_norm=True,
        minibatch_std=True,
        d_batch_norm=True,
    )
)

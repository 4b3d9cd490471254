"""The seed DCGAN of the report: convolutional G and D for 32x32 images.

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

from gankit.models.base import ARCHS, Float32Output, Generator
from gankit.models.conditioning import ConditionalBatchNorm, OutputHead, run_layers

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

    With `num_classes`, every batch norm is class-conditional (its scale and shift looked up by label)."""

    value_range = (-1.0, 1.0)

    def __init__(self, noise_dim: int, channels: int, base_channels: int = 64, *, noise: str = "normal",
                 num_classes: int = 0):
        super().__init__()
        self.noise_dim, self.noise, self.image_shape = noise_dim, noise, (channels, 32, 32)
        self.num_classes = num_classes

        def norm(features: int, dims: int = 2) -> nn.Module:
            if num_classes:
                return ConditionalBatchNorm(features, num_classes, dims)
            return nn.BatchNorm2d(features) if dims == 2 else nn.BatchNorm1d(features)

        c = base_channels
        self.top = 8 * c
        self.project = nn.Sequential(nn.Linear(noise_dim, 4 * self.top, bias=False), norm(4 * self.top, 1), nn.ReLU())
        self.net = nn.Sequential(
            nn.ConvTranspose2d(8 * c, 4 * c, 4, 2, 1, bias=False), norm(4 * c), nn.ReLU(),  # 4x4
            nn.ConvTranspose2d(4 * c, 2 * c, 4, 2, 1, bias=False), norm(2 * c), nn.ReLU(),  # 8x8
            nn.ConvTranspose2d(2 * c, c, 4, 2, 1, bias=False), norm(c), nn.ReLU(),  # 16x16
            nn.ConvTranspose2d(c, channels, 4, 2, 1), Float32Output(nn.Tanh()),  # 32x32, no norm on the output
        )
        _dcgan_init(self)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        x = run_layers(self.project, z, y).view(-1, self.top, 2, 2)  # (N, 2048) -> (N, 512, 2, 2)
        return run_layers(self.net, x, y)  # -> (N, C, 32, 32)


class DCGANDiscriminator(nn.Module):
    """32x32xC -> 16x16x64 -> 8x8x128 -> 4x4x256 -> 2x2x512 -> flatten 2048 -> Dense 1 (a logit).

    Conditional (`models.conditioning`): a projection or ACGAN head on the 2048 features replaces the last Dense."""

    def __init__(self, channels: int, base_channels: int = 64, *, conditioning: str = "none", num_classes: int = 0):
        super().__init__()
        c = base_channels
        layers = [
            nn.Conv2d(channels, c, 4, 2, 1), nn.LeakyReLU(0.2),  # 16x16, no norm on the input layer
            nn.Conv2d(c, 2 * c, 4, 2, 1, bias=False), nn.BatchNorm2d(2 * c), nn.LeakyReLU(0.2),  # 8x8
            nn.Conv2d(2 * c, 4 * c, 4, 2, 1, bias=False), nn.BatchNorm2d(4 * c), nn.LeakyReLU(0.2),  # 4x4
            nn.Conv2d(4 * c, 8 * c, 4, 2, 1, bias=False), nn.BatchNorm2d(8 * c), nn.LeakyReLU(0.2),  # 2x2
            nn.Flatten(),
        ]
        self.head = OutputHead(8 * c * 4, conditioning, num_classes) if conditioning != "none" else None
        if self.head is None:
            layers.append(nn.Linear(8 * c * 4, 1))
        self.net = nn.Sequential(*layers)
        _dcgan_init(self)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        if self.head is None:
            return self.net(x).squeeze(1)  # (N, C, 32, 32) -> (N,) logits
        return self.head(self.net(x), y)


@ARCHS.register("dcgan")
def build_dcgan(config: Config) -> tuple[DCGANGenerator, DCGANDiscriminator]:
    m, d = config.model, config.data
    classes = m.num_classes if m.conditioning != "none" else 0
    return (DCGANGenerator(m.noise_dim, d.channels, m.base_channels, noise=m.noise, num_classes=classes),
            DCGANDiscriminator(d.channels, m.base_channels, conditioning=m.conditioning, num_classes=classes))

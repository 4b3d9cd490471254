"""The report's GAN: fully connected G and D for 28x28 grey images."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
from torch import nn

from gankit.models.base import ARCHS, Arch, Float32Output, Generator
from gankit.models.conditioning import CONDITIONING, OutputHead
from gankit.models.dropout import Dropout

if TYPE_CHECKING:
    from gankit.config import Config


def _keras_dense_init(layer: nn.Linear) -> None:
    # The report's Keras Dense layers start from Glorot-uniform weights and zero biases.
    nn.init.xavier_uniform_(layer.weight)
    nn.init.zeros_(layer.bias)


class MLPGenerator(Generator):
    """z -> Dense 256 -> Dense 512 -> Dense 1024 (each LeakyReLU(0.2)) -> Dense 784, sigmoid -> 1x28x28.

    Pixels are in [0, 1], matching MNIST scaled to [0, 1]. `output="tanh"` gives pixels in
    [-1, 1] instead (the data is scaled to match), the usual choice outside the report. With
    `num_classes`, a label embedding of that many numbers is joined to z (cGAN).
    """

    def __init__(
        self,
        noise_dim: int,
        hidden: Sequence[int],
        image_shape: tuple[int, int, int],
        *,
        noise: str = "normal",
        output: str = "sigmoid",
        num_classes: int = 0,
    ):
        super().__init__()
        channels, height, width = image_shape
        self.noise_dim, self.noise, self.image_shape = noise_dim, noise, (channels, height, width)
        self.value_range = (0.0, 1.0) if output == "sigmoid" else (-1.0, 1.0)
        self.num_classes = num_classes
        if num_classes:
            self.label_embedding = nn.Embedding(num_classes, num_classes)
        layers: list[nn.Module] = []
        width = noise_dim + num_classes
        for h in hidden:
            layers += [nn.Linear(width, h), nn.LeakyReLU(0.2)]
            width = h
        layers += [
            nn.Linear(width, math.prod(image_shape)),
            Float32Output(nn.Sigmoid() if output == "sigmoid" else nn.Tanh()),
        ]
        self.net = nn.Sequential(*layers)
        for layer in self.net:
            if isinstance(layer, nn.Linear):
                _keras_dense_init(layer)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if self.num_classes:
            z = torch.cat([z, self.label_embedding(y).to(z.dtype)], 1)
        return self.net(z).view(-1, *self.image_shape)  # (N, 784) -> (N, 1, 28, 28)


class MLPDiscriminator(nn.Module):
    """784 -> Dense 1024 -> Dense 512 -> Dense 256 (each LeakyReLU(0.2), Dropout(0.3)) -> Dense 1.

    Returns the logit of D(x); the report's final sigmoid is applied inside the losses
    (`binary_cross_entropy_with_logits`), the same function computed without log(0) overflow.
    Conditional (`models.conditioning`): concat joins a label embedding to the flattened image;
    projection and acgan replace the last Dense with their head on the 256 features.
    """

    def __init__(
        self,
        image_shape: tuple[int, int, int],
        hidden: Sequence[int],
        dropout: float,
        *,
        conditioning: str = "none",
        num_classes: int = 0,
    ):
        super().__init__()
        self.conditioning = conditioning
        if conditioning == "concat":
            self.label_embedding = nn.Embedding(num_classes, num_classes)
        layers: list[nn.Module] = [nn.Flatten()]
        width = math.prod(image_shape) + (num_classes if conditioning == "concat" else 0)
        for h in hidden:
            layers += [nn.Linear(width, h), nn.LeakyReLU(0.2), Dropout(dropout)]
            width = h
        self.head = OutputHead(width, conditioning, num_classes) if conditioning != "none" else None
        if self.head is None:
            layers.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*layers)
        for layer in [*self.net, *(self.head.children() if self.head else [])]:
            if isinstance(layer, nn.Linear):
                _keras_dense_init(layer)

    def forward(
        self, x: torch.Tensor, y: torch.Tensor | None = None
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        if self.conditioning == "concat":  # (N, 1, 28, 28) -> (N, 784 + K)
            x = torch.cat([x.flatten(1), self.label_embedding(y).to(x.dtype)], 1)
        if self.head is None:
            return self.net(x).squeeze(1)  # (N,) logits
        return self.head(self.net(x), y)


def build_mlp(config: Config) -> tuple[MLPGenerator, MLPDiscriminator]:
    m, d = config.model, config.data
    shape = (d.channels, d.image_size, d.image_size)
    classes = m.num_classes if m.conditioning != "none" else 0
    return (
        MLPGenerator(m.noise_dim, m.g_hidden, shape, noise=m.noise, output=m.output, num_classes=classes),
        MLPDiscriminator(shape, m.d_hidden, m.dropout, conditioning=m.conditioning, num_classes=classes),
    )


ARCHS.register("mlp")(Arch(build_mlp, sizes=None, conditionings=CONDITIONING))

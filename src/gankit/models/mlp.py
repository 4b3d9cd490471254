"""The report's GAN: fully connected G and D for 28x28 grey images."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
from torch import nn

from gankit.models.base import ARCHS, Arch, Float32Output, Generator
from gankit.models.conditioning import CONDITIONING, CONDITIONINGS
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
    [-1, 1] instead (the data is scaled to match), the usual choice outside the report. A conditional
    G (`models.conditioning`) joins a label embedding of `num_classes` numbers to z (cGAN).
    """

    def __init__(
        self,
        noise_dim: int,
        hidden: Sequence[int],
        image_shape: tuple[int, int, int],
        *,
        noise: str = "normal",
        output: str = "sigmoid",
        conditioning: str = "none",
        num_classes: int = 0,
    ):
        super().__init__()
        channels, height, width = image_shape
        self.noise_dim, self.noise, self.image_shape = noise_dim, noise, (channels, height, width)
        self.value_range = (0.0, 1.0) if output == "sigmoid" else (-1.0, 1.0)
        self.num_classes = num_classes
        self.label_embedding = CONDITIONINGS[conditioning].g_input(num_classes)
        layers: list[nn.Module] = []
        width = noise_dim + self.label_embedding.extra
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

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.net(self.label_embedding(z, y)).view(-1, *self.image_shape)  # (N, 784) -> (N, 1, 28, 28)


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
        self.label_embedding = CONDITIONINGS[conditioning].d_input(num_classes)
        layers: list[nn.Module] = [nn.Flatten()]
        width = math.prod(image_shape) + self.label_embedding.extra
        for h in hidden:
            layers += [nn.Linear(width, h), nn.LeakyReLU(0.2), Dropout(dropout)]
            width = h
        last, self.head = CONDITIONINGS[conditioning].d_end(width, num_classes)
        self.net = nn.Sequential(*layers, *last)
        for layer in [*self.net, *self.head.children()]:
            if isinstance(layer, nn.Linear):
                _keras_dense_init(layer)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        # concat: (N, 1, 28, 28) -> (N, 784 + K); the head makes (N,) logits
        return self.head(self.net(self.label_embedding(x, y)), y)


def build_mlp(config: Config) -> tuple[MLPGenerator, MLPDiscriminator]:
    m, d = config.model, config.data
    shape = (d.channels, d.image_size, d.image_size)
    c, k = m.conditioning, m.num_classes
    return (
        MLPGenerator(m.noise_dim, m.g_hidden, shape, noise=m.noise, output=m.output, conditioning=c, num_classes=k),
        MLPDiscriminator(shape, m.d_hidden, m.dropout, conditioning=c, num_classes=k),
    )


ARCHS.register("mlp")(Arch(build_mlp, sizes=None, conditionings=CONDITIONING))

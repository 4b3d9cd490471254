"""Generator and discriminator networks, built by name from a ModelConfig."""

from __future__ import annotations

import torch
from torch import nn

from gankit.config import Config
from gankit.models.base import Generator
from gankit.models.dcgan import DCGANDiscriminator, DCGANGenerator
from gankit.models.mlp import MLPDiscriminator, MLPGenerator

__all__ = ["Generator", "build_models"]


def build_models(config: Config) -> tuple[Generator, nn.Module]:
    """The (G, D) pair the config names, initialised from the global torch RNG."""
    m, d = config.model, config.data
    shape = (d.channels, d.image_size, d.image_size)
    if m.arch == "mlp":
        return (
            MLPGenerator(m.noise_dim, m.g_hidden, shape, noise=m.noise, output=m.output),
            MLPDiscriminator(shape, m.d_hidden, m.dropout),
        )
    if m.arch == "dcgan":
        return (
            DCGANGenerator(m.noise_dim, d.channels, m.base_channels, noise=m.noise),
            DCGANDiscriminator(d.channels, m.base_channels),
        )
    raise ValueError(f"unknown arch {m.arch}")


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def has_batch_norm(module: nn.Module) -> bool:
    """Batch norm couples the images of a batch, so real and fake must not share one D forward."""
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in module.modules())


@torch.no_grad()
def to_uint8(images: torch.Tensor, value_range: tuple[float, float]) -> torch.Tensor:
    """Map G's output range back to [0, 255] exactly once (round, clamp)."""
    low, high = value_range
    scaled = (images.float() - low) * (255.0 / (high - low))
    return scaled.round_().clamp_(0, 255).to(torch.uint8)

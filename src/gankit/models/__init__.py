"""Generator and discriminator networks, built by name (`model.arch`) from a Config."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from gankit.models import dcgan, mlp, r3gan, resnet  # noqa: F401  (each registers its arch)
from gankit.models.base import ARCHS, Generator
from gankit.models.conditioning import CONDITIONING, CONDITIONINGS

if TYPE_CHECKING:
    from gankit.config import Config

__all__ = ["ARCHS", "CONDITIONING", "CONDITIONINGS", "SPECTRAL_NORM", "Generator", "build_models"]


SPECTRAL_NORM = ("none", "d", "both")  # model.spectral_norm: on no net, on D's layers, on both nets' layers


def build_models(config: Config) -> tuple[Generator, nn.Module]:
    """The (G, D) pair the config names, initialised from the global torch RNG."""
    CONDITIONINGS[config.model.conditioning].check_built(config)
    G, D = ARCHS[config.model.arch].build(config)
    if config.model.spectral_norm in ("d", "both"):
        add_spectral_norm(D, embeddings=True)
    if config.model.spectral_norm == "both":
        add_spectral_norm(G)
    return G, D


def add_spectral_norm(module: nn.Module, *, embeddings: bool = False) -> None:
    """Spectral normalisation (Miyato et al. 2018) of every linear and convolution layer's weight: each
    forward in training mode takes one power-iteration step and divides the weight by its largest
    singular value, so the layer is 1-Lipschitz. With `embeddings`, label embeddings too (a projection
    D's, as Miyato & Koyama do; not G's conditional norms, whose scales must stay near 1)."""
    kinds = (nn.Linear, nn.Conv2d, nn.ConvTranspose2d) + ((nn.Embedding,) if embeddings else ())
    for layer in list(module.modules()):
        if isinstance(layer, kinds):
            nn.utils.parametrizations.spectral_norm(layer)


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

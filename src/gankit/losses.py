"""GAN losses (Goodfellow et al., 2014) as small pure functions of D's logits.

D outputs a logit l with D(x) = sigmoid(l); log D = -softplus(-l) and log(1 - D) = -softplus(l),
which stay finite where D saturates at 0 or 1.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
    """-(E[log D(x)] + E[log(1 - D(G(z)))]); with one-sided smoothing s the real target is 1 - s."""
    real_target = torch.full_like(real_logits, 1.0 - label_smoothing)
    real = F.binary_cross_entropy_with_logits(real_logits, real_target)
    fake = F.softplus(fake_logits).mean()  # -log(1 - D(G(z)))
    return real + fake


def minimax_generator_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """E[log(1 - D(G(z)))], which G minimises: the report's formula (saturates early in training)."""
    return -F.softplus(fake_logits).mean()


def nonsaturating_generator_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """-E[log D(G(z))]: G maximises log D(G(z)), what the report's code trains (target label 1)."""
    return F.softplus(-fake_logits).mean()


GENERATOR_LOSSES: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "minimax": minimax_generator_loss,
    "nonsaturating": nonsaturating_generator_loss,
}

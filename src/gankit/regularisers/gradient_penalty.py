"""WGAN-GP (Gulrajani et al. 2017): λ · E[(‖∇ D(x̂)‖ − 1)²] at x̂ = εx + (1 − ε)G(z), ε ~ U(0, 1) per image,
drawn from torch's RNG (checkpointed, so resume replays it)."""

from __future__ import annotations

from collections.abc import Callable

import torch

from gankit.regularisers.registry import PENALTIES, Regulariser
from gankit.terms import Seen


def interpolated_gradient_penalty(
    D: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor, fake: torch.Tensor, weight: float
) -> torch.Tensor:
    """λ · E[(‖∇ D(x̂)‖ − 1)²] between `real` and `fake`, with a graph to D's weights."""
    epsilon = torch.rand(real.shape[0], *([1] * (real.dim() - 1)), device=real.device)
    mixed = (epsilon * real.detach() + (1 - epsilon) * fake.detach()).requires_grad_(True)
    (grad,) = torch.autograd.grad(D(mixed).float().sum(), mixed, create_graph=True)
    norm = grad.float().flatten(1).norm(dim=1)
    return weight * (norm - 1).square().mean()


def gradient_penalty(seen: Seen, weight: float) -> torch.Tensor:
    # D judges the mixed images by the real images' labels
    return interpolated_gradient_penalty(
        lambda x: seen.logits(x, seen.real_labels), seen.real_images, seen.fake_images, weight
    )


PENALTIES.register("gradient_penalty")(Regulariser("gradient", gradient_penalty, weight_key="gp_lambda"))

"""Penalties on D's step that the config turns on; each returns named terms added to D's loss."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from gankit.config import TrainConfig
    from gankit.training.step import Penalty


def r1_penalty(gamma: float) -> Penalty:
    """R1 (Mescheder et al. 2018): γ/2 · E[‖∇ₓ D(x)‖²] over real images, pulling D flat where the data is."""

    def penalty(D: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor, fake: torch.Tensor) -> dict[str, torch.Tensor]:
        real = real.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(D(real).float().sum(), real, create_graph=True)
        return {"r1_penalty": 0.5 * gamma * grad.float().square().flatten(1).sum(1).mean()}

    return penalty


def gradient_penalty(weight: float) -> Penalty:
    """WGAN-GP (Gulrajani et al. 2017): λ · E[(‖∇ D(x̂)‖ − 1)²] at x̂ = εx + (1 − ε)G(z), ε ~ U(0, 1) per image,
    drawn from torch's RNG (checkpointed, so resume replays it)."""

    def penalty(D: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor, fake: torch.Tensor) -> dict[str, torch.Tensor]:
        epsilon = torch.rand(real.shape[0], *([1] * (real.dim() - 1)), device=real.device)
        mixed = (epsilon * real.detach() + (1 - epsilon) * fake.detach()).requires_grad_(True)
        (grad,) = torch.autograd.grad(D(mixed).float().sum(), mixed, create_graph=True)
        norm = grad.float().flatten(1).norm(dim=1)
        return {"gradient_penalty": weight * (norm - 1).square().mean()}

    return penalty


def config_penalties(train: TrainConfig) -> list[Penalty]:
    """The penalties `train` asks for."""
    return ([r1_penalty(train.r1_gamma)] if train.r1_gamma else []) + \
        ([gradient_penalty(train.gp_lambda)] if train.gp_lambda else [])

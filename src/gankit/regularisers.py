"""Penalties on D's step that the config turns on; each returns named terms added to D's loss."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Lazy:
    """A penalty on every `every`-th update of D only, multiplied by `every` (lazy regularisation, Karras et al.
    2020): on average the same pull for 1/every of its cost. On the other updates its terms (`names`) are 0, so a
    term's epoch mean is its pull per update. StyleGAN2's matching change to Adam's rate and betas is left out."""

    penalty: Penalty
    every: int
    names: tuple[str, ...]

    def terms(self, update: int, D: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor, fake: torch.Tensor
              ) -> dict[str, torch.Tensor]:
        """The terms at D's update number `update` (from 0, counted over the whole run, so resume keeps the phase)."""
        if update % self.every:
            return {name: torch.zeros((), device=real.device) for name in self.names}
        terms = self.penalty(D, real, fake)
        if set(terms) != set(self.names):  # the off updates must report the same terms, or the epoch's sums break
            raise ValueError(f"a lazy penalty named {sorted(self.names)} returned {sorted(terms)}")
        return {name: self.every * terms[name] for name in self.names}


def config_penalties(train: TrainConfig) -> list[Penalty | Lazy]:
    """The penalties `train` asks for."""
    r1 = r1_penalty(train.r1_gamma)
    if train.r1_every > 1:
        r1 = Lazy(r1, train.r1_every, ("r1_penalty",))
    return ([r1] if train.r1_gamma else []) + ([gradient_penalty(train.gp_lambda)] if train.gp_lambda else [])

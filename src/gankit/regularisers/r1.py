"""R1 (Mescheder et al. 2018): γ/2 · E[‖∇ₓ D(x)‖²] over real images, pulling D flat where the data is."""

from __future__ import annotations

from collections.abc import Callable

import torch

from gankit.regularisers.registry import PENALTIES, Regulariser
from gankit.terms import Seen


def gradient_norm_penalty(
    D: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor, gamma: float
) -> torch.Tensor:
    """γ/2 · E[‖∇ₓ D(x)‖²] over `images` (x), with a graph to D's weights."""
    images = images.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(D(images).float().sum(), images, create_graph=True)
    return 0.5 * gamma * grad.float().square().flatten(1).sum(1).mean()


def r1_penalty(seen: Seen, weight: float) -> torch.Tensor:
    return gradient_norm_penalty(lambda x: seen.logits(x, seen.real_labels), seen.real_images, weight)


PENALTIES.register("r1_penalty")(Regulariser("R1", r1_penalty, weight_key="r1_gamma", every_key="r1_every"))

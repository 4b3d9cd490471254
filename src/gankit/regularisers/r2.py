"""R2 (Roth et al. 2017; Mescheder et al. 2018): R1's penalty on generated images, γ/2 · E[‖∇ D(G(z))‖²], pulling D
flat where G's samples are. With R1 it is R3GAN's regularisation (Huang et al. 2024), which makes the relativistic
loss converge."""

from __future__ import annotations

import torch

from gankit.regularisers.r1 import gradient_norm_penalty
from gankit.regularisers.registry import PENALTIES, Regulariser
from gankit.terms import Seen


def r2_penalty(seen: Seen, weight: float) -> torch.Tensor:
    return gradient_norm_penalty(lambda x: seen.logits(x, seen.fake_labels), seen.fake_images, weight)


PENALTIES.register("r2_penalty")(Regulariser("R2", r2_penalty, weight_key="r2_gamma", every_key="r2_every"))

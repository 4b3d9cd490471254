"""The generator contract every model meets, so sampling, metrics and reports treat all alike."""

from __future__ import annotations

import torch
from torch import nn


class Float32Output(nn.Module):
    """Runs an output activation (sigmoid, tanh) in float32, also under bf16 autocast.

    In bf16 a saturating pixel rounds to exactly 1 (the spacing below 1 is 2^-8), so its gradient
    s(1 - s) or 1 - t^2 is exactly 0 and G can never pull it back; in float32 it stays small but
    alive. The seed GAN, whose D wins its first epochs, died of this in bf16 and not in float32.
    """

    def __init__(self, activation: nn.Module):
        super().__init__()
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activation(x.float())


class Generator(nn.Module):
    """A generator maps noise of `noise_dim` numbers to images of `image_shape` in `value_range`."""

    noise_dim: int
    noise: str  # "normal" N(0, 1) or "uniform" U(-1, 1)
    image_shape: tuple[int, int, int]  # (channels, height, width)
    value_range: tuple[float, float]  # range of the output pixels
    num_classes: int = 0  # 0 for an unconditional model

    def sample_noise(
        self, n: int, *, generator: torch.Generator | None = None, device: torch.device | str | None = None
    ) -> torch.Tensor:
        device = device if device is not None else next(self.parameters()).device
        if self.noise == "uniform":
            return torch.rand(n, self.noise_dim, generator=generator, device=device).mul_(2).sub_(1)
        return torch.randn(n, self.noise_dim, generator=generator, device=device)

    @torch.no_grad()
    def sample(self, n: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """n images in `value_range`, shape (n, C, H, W), generated in eval mode."""
        was_training = self.training
        self.eval()
        try:
            return self(self.sample_noise(n, generator=generator))
        finally:
            self.train(was_training)

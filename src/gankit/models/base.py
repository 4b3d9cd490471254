"""The generator contract every model meets, so sampling, metrics and reports treat all alike."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

from gankit.errors import GankitError
from gankit.registry import Registry

if TYPE_CHECKING:
    from gankit.config import Config


@dataclass(frozen=True)
class Arch:
    """A model.arch: how to build its (G, D) pair from the config (initialised from torch's global RNG), and what
    it can make."""

    build: Callable[[Config], tuple[Generator, nn.Module]]
    sizes: tuple[int, ...] | None  # the image sides it makes; None: any
    conditionings: tuple[str, ...]  # the model.conditioning values it takes
    g_batch_norm: bool = False  # G normalises over the batch (it needs batches of 2 or more)
    d_batch_norm: bool = False  # D does (a gradient penalty's per-image gradients are mixed across the batch)
    minibatch_std: bool = False  # D can take model.minibatch_std
    check_model: Callable[[Config], None] | None = None  # refuses the arch's own settings it cannot build

    def check(self, config: Config) -> None:
        """Refuse a config this arch cannot build (each message names the key)."""
        name, m, size = config.model.arch, config.model, config.data.image_size
        if m.conditioning not in self.conditionings:
            raise GankitError(
                f"model.conditioning {m.conditioning} does not apply to model.arch {name} (it takes "
                f"{', '.join(self.conditionings)})"
            )
        if m.minibatch_std and not self.minibatch_std:
            raise GankitError(f"model.minibatch_std does not apply to model.arch {name}: leave it 0")
        if self.sizes is not None and size not in self.sizes:
            raise GankitError(
                f"model.arch {name} makes images of side {', '.join(map(str, self.sizes))}; data.image_size is {size}"
            )
        if self.check_model is not None:
            self.check_model(config)
        if config.train.batch_size < 2 and (self.g_batch_norm or self.d_batch_norm):
            raise GankitError(
                f"train.batch_size must be at least 2 for model.arch {name}: batch norm needs two images to normalise"
            )


ARCHS: Registry[Arch] = Registry("model.arch")


def build_conv_pair(
    config: Config, generator: type[Generator], discriminator: type[nn.Module]
) -> tuple[Generator, nn.Module]:
    """A convolutional (G, D) pair at data.image_size, conditional where model.conditioning says so."""
    m, d = config.model, config.data
    return (
        generator(
            m.noise_dim,
            d.channels,
            m.base_channels,
            noise=m.noise,
            conditioning=m.conditioning,
            num_classes=m.num_classes,
            size=d.image_size,
        ),
        discriminator(
            d.channels,
            m.base_channels,
            conditioning=m.conditioning,
            num_classes=m.num_classes,
            size=d.image_size,
            minibatch_std=m.minibatch_std,
        ),
    )


class Float32Output(nn.Module):
    """Runs an output activation (sigmoid, tanh) in float32, also under bf16 autocast.

    In bf16 a saturating pixel rounds to exactly 1 (the spacing below 1 is 2^-8), so its gradient
    s(1 - s) or 1 - t^2 is exactly 0 and G can never pull it back; in float32 it stays small but
    alive. The report's GAN, whose D wins its first epochs, can die of this in bf16 and not in float32.
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
    # set by `Run.generator` on the G it loads: the checkpoint's epoch and file
    epoch: int
    checkpoint: Path

    def sample_noise(
        self, n: int, *, generator: torch.Generator | None = None, device: torch.device | str | None = None
    ) -> torch.Tensor:
        """n noise vectors (n, noise_dim), drawn where `generator` lives and moved to `device` (default: G's)."""
        device = device if device is not None else next(self.parameters()).device
        where = generator.device if generator is not None else device
        if self.noise == "uniform":
            z = torch.rand(n, self.noise_dim, generator=generator, device=where).mul_(2).sub_(1)
        else:
            z = torch.randn(n, self.noise_dim, generator=generator, device=where)
        return z.to(device)

    def sample_labels(
        self,
        n: int,
        *,
        weights: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
    ) -> torch.Tensor:
        """n class labels, in proportion to `weights` (K,, drawn where they are) or else uniform (drawn where
        `generator` lives), moved to `device` (default: G's). An unconditional G's labels are all 0 and draw nothing
        from any RNG, so its noise stream is what it would be without labels."""
        device = device if device is not None else next(self.parameters()).device
        if not self.num_classes:  # the zero-class case
            return torch.zeros(n, dtype=torch.long, device=device)
        where = generator.device if generator is not None else device
        if weights is not None:
            return torch.multinomial(weights, n, replacement=True, generator=generator).to(device)
        return torch.randint(self.num_classes, (n,), generator=generator, device=where).to(device)

    def check_labels(self, labels: torch.Tensor, n: int) -> None:
        """Refuse labels this G cannot take: n int64 labels below its number of classes (an unconditional G's are 0)."""
        if labels.shape != (n,) or labels.dtype != torch.int64:
            raise GankitError(
                f"labels must be {n} whole numbers (int64), got {labels.dtype} of shape {tuple(labels.shape)}"
            )
        if n and not 0 <= int(labels.min()) <= int(labels.max()) < max(self.num_classes, 1):
            raise GankitError(
                f"class labels run from 0 to {self.num_classes - 1}; got {int(labels.min())} to {int(labels.max())}"
                if self.num_classes
                else "this generator is unconditional: it takes no class",
                option="class",
            )

    def sample(
        self,
        n: int,
        *,
        noise: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """n images (n, C, H, W) in `value_range`, generated in eval mode without gradients.

        `noise` fixes the inputs (else they are drawn with `generator`); `labels` (n,) are the classes
        a conditional model makes (else drawn uniformly with `generator`; an unconditional G's are 0). They are
        not checked here, where export traces G: `sample_images` checks them (`check_labels`). The training
        step is the only other caller of G's forward.
        """
        if noise is None:
            noise = self.sample_noise(n, generator=generator)
        elif noise.shape != (n, self.noise_dim):
            raise ValueError(f"noise of shape {tuple(noise.shape)} for {n} samples of noise_dim {self.noise_dim}")
        if labels is None:
            labels = self.sample_labels(n, generator=generator, device=noise.device)
        was_training = self.training
        if was_training:  # untouched when already in eval mode, so export can trace this
            self.eval()
        try:
            with torch.no_grad():
                return self(noise, labels)
        finally:
            if was_training:
                self.train()

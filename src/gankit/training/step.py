"""One GAN training step: update D on real and generated images, then G through the updated D."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from gankit.device import autocast
from gankit.losses import GANLoss
from gankit.models import Generator, has_batch_norm

# a penalty on D's step: (D as it sees images, real, fake) -> named terms added to D's loss (and reported)
Penalty = Callable[[Callable[[torch.Tensor], torch.Tensor], torch.Tensor, torch.Tensor], dict[str, torch.Tensor]]


class GANStep:
    """Callable on a batch of real images (already in G's value range); returns the step's named stats.

    The stats are detached scalar tensors on the device, so the caller can sum them there and read
    them without a host sync every step. `penalties` add terms to D's loss; `after_step` hooks get
    the step once both nets are updated (an EMA of G, say).
    """

    def __init__(self, G: Generator, D: nn.Module, opt_g: torch.optim.Optimizer, opt_d: torch.optim.Optimizer,
                 loss: GANLoss, *, device: torch.device, precision: str = "fp32",
                 penalties: Sequence[Penalty] = (), after_step: Sequence[Callable[["GANStep"], None]] = (),
                 augment: Callable[[torch.Tensor], torch.Tensor] | None = None):
        self.G, self.D, self.opt_g, self.opt_d, self.loss = G, D, opt_g, opt_d, loss
        self.device, self.precision = device, precision
        self.penalties, self.after_step = list(penalties), list(after_step)
        self.augment = augment or (lambda x: x)  # DiffAugment: what D sees of every image, real or generated
        self.d_trainable = [p for p in D.parameters() if p.requires_grad]  # frozen by G's step, then restored
        # without batch norm, one D forward over real and fake together is the same function
        self.joint_d = not has_batch_norm(D)

    def __call__(self, real: torch.Tensor) -> dict[str, torch.Tensor]:
        z = self.G.sample_noise(real.shape[0], device=self.device)
        with autocast(self.precision, self.device):
            fake = self.G(z)
            real_out, fake_out = self.discriminate(real, fake.detach())
            d_terms = {"d_loss": self.loss.d_loss(real_out, fake_out)}
            for penalty in self.penalties:  # through the augmentation, as D sees the images
                d_terms.update(penalty(self.d_on_augmented, real, fake.detach()))
        self._update(self.opt_d, sum(d_terms.values()))

        for p in self.d_trainable:  # G's step goes through D, but D's weights need no gradient here
            p.requires_grad_(False)
        try:
            with autocast(self.precision, self.device):
                g_loss = self.loss.g_loss(self.D(self.augment(fake)).float())
            self._update(self.opt_g, g_loss)
        finally:
            for p in self.d_trainable:
                p.requires_grad_(True)
        for hook in self.after_step:
            hook(self)

        threshold = self.loss.decision_threshold
        with torch.no_grad():
            return {**{name: term.detach().float() for name, term in d_terms.items()}, "g_loss": g_loss.detach(),
                    "d_acc_real": (real_out > threshold).float().mean(), "d_acc_fake": (fake_out < threshold).float().mean()}

    def d_on_augmented(self, images: torch.Tensor) -> torch.Tensor:
        return self.D(self.augment(images))

    def discriminate(self, real: torch.Tensor, fake: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """D's float32 outputs on both batches: in one forward where that is the same function."""
        real, fake = self.augment(real), self.augment(fake)
        if self.joint_d:
            return self.D(torch.cat([real, fake])).float().split(real.shape[0])
        return self.D(real).float(), self.D(fake).float()

    @staticmethod
    def _update(optimiser: torch.optim.Optimizer, loss: torch.Tensor) -> None:
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()

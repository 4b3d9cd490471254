"""One GAN training step: update D on real and generated images, then G through D."""

from __future__ import annotations

import torch
from torch import nn

from gankit.config import TrainConfig
from gankit.device import autocast
from gankit.losses import GENERATOR_LOSSES, discriminator_loss
from gankit.models import Generator, has_batch_norm

STAT_NAMES = ("d_loss", "g_loss", "d_acc_real", "d_acc_fake")


class GANStep:
    """Callable on a batch of real images (already in G's value range); returns the step's stats.

    The stats come back as one detached tensor (d_loss, g_loss, D accuracy on real, on fake), so
    the caller can sum them on the device and read them without a host sync every step.
    """

    def __init__(self, G: Generator, D: nn.Module, opt_g: torch.optim.Optimizer, opt_d: torch.optim.Optimizer,
                 config: TrainConfig, device: torch.device):
        self.G, self.D, self.opt_g, self.opt_d = G, D, opt_g, opt_d
        self.noise = G.sample_noise
        self.g_loss = GENERATOR_LOSSES[config.loss]
        self.smoothing = config.label_smoothing
        self.precision, self.device = config.precision, device
        # without batch norm, one D forward over real and fake together is the same function
        self.joint_d = not has_batch_norm(D)

    def __call__(self, real: torch.Tensor) -> torch.Tensor:
        n = real.shape[0]
        z = self.noise(n, device=self.device)
        with autocast(self.precision, self.device):
            fake = self.G(z)
            # D step: real images towards 1, generated towards 0; G is not updated
            if self.joint_d:
                real_logits, fake_logits = self.D(torch.cat([real, fake.detach()])).float().split(n)
            else:
                real_logits, fake_logits = self.D(real).float(), self.D(fake.detach()).float()
            d_loss = discriminator_loss(real_logits, fake_logits, self.smoothing)
        self.opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        self.opt_d.step()

        # G step through the updated D; D's weights need no gradient here
        self.D.requires_grad_(False)
        with autocast(self.precision, self.device):
            g_loss = self.g_loss(self.D(fake).float())
        self.opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        self.opt_g.step()
        self.D.requires_grad_(True)

        with torch.no_grad():
            return torch.stack([d_loss, g_loss, (real_logits > 0).float().mean(), (fake_logits < 0).float().mean()])

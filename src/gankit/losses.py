"""GAN objectives as (D loss, G loss) pairs of small pure functions of D's outputs, chosen by name.

Each loss is two terms of the step (`gankit.terms`), "d_loss" and "g_loss": by default D's loss sees D's
outputs on real and generated images and G's on generated ones; a loss that needs more (a relativistic
one, D on real images in G's step too) says so in its `d_objective` or `g_objective`.

The BCE losses read D's output as a logit l with D(x) = sigmoid(l): log D = -softplus(-l) and
log(1 - D) = -softplus(l), which stay finite where D saturates at 0 or 1.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from gankit.errors import GankitError
from gankit.registry import Registry
from gankit.terms import Seen, Term

if TYPE_CHECKING:
    from gankit.config import TrainConfig


class GANLoss:
    """A GAN objective; a subclass's dataclass fields are its parameters (read from `train.<field>`)."""

    decision_threshold = 0.0  # D calls an image real when its output is above this (D's accuracy stats)
    # the loss cannot see a constant added to all of D's outputs, so their sign says nothing: read pairs' gaps instead
    blind_to_level = False
    collapse_g_loss = 5.0  # G's loss once D is sure of every fake (the collapse watch); BCE: D(G(z)) < e^-5

    def d_loss(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def g_loss(self, fake: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def margins(self, real: torch.Tensor, fake: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """How far D's output on each real image and on each generated one lies on the right side of its call,
        positive where D is right: D's accuracy stats, the collapse watch and ADA's overfitting heuristic read them.
        A loss blind to D's level reads each real image against the generated one of the same index, for both sides
        (gankit's reading of ADA's heuristic there: r_t = E[sign(D(x) − D(G(z)))])."""
        if self.blind_to_level:
            gap = real - fake
            return gap, gap
        return real - self.decision_threshold, self.decision_threshold - fake

    def d_objective(self, seen: Seen) -> torch.Tensor:
        return self.d_loss(seen.real, seen.fake)

    def g_objective(self, seen: Seen) -> torch.Tensor:
        return self.g_loss(seen.fake)

    def terms(self) -> list[Term]:
        """The loss as the step's terms: D's, then G's."""
        return [Term("d_loss", "D", self.d_objective), Term("g_loss", "G", self.g_objective)]


LOSSES: Registry[type[GANLoss]] = Registry("loss")


def build_loss(train: TrainConfig) -> GANLoss:
    """The loss `train.loss` names, with its parameters taken from the train config."""
    cls = LOSSES[train.loss]
    params: set[str] = {f.name for f in dataclasses.fields(cls)} if dataclasses.is_dataclass(cls) else set()
    for name in ("label_smoothing", "probability_clip"):
        if getattr(train, name) and name not in params:
            raise GankitError(f"train.{name} applies to the BCE losses, not to train.loss {train.loss}")
    return cls(**{name: getattr(train, name) for name in params})


def bce_discriminator_loss(
    real: torch.Tensor, fake: torch.Tensor, label_smoothing: float = 0.0, probability_clip: float = 0.0
) -> torch.Tensor:
    """-(E[log D(x)] + E[log(1 - D(G(z)))]); with one-sided smoothing s the real target is 1 - s."""
    if probability_clip:
        return clipped_bce(real, 1.0 - label_smoothing, probability_clip) + clipped_bce(fake, 0.0, probability_clip)
    real_target = torch.full_like(real, 1.0 - label_smoothing)
    return F.binary_cross_entropy_with_logits(real, real_target) + F.softplus(fake).mean()  # softplus(l) = -log(1 - D)


def clipped_bce(logits: torch.Tensor, target: float, clip: float) -> torch.Tensor:
    """Keras's binary cross-entropy: -E[t log p + (1 - t) log(1 - p)] with p = D's probability clipped to
    [clip, 1 - clip]; past the clip the gradient is exactly zero."""
    p = torch.sigmoid(logits).clamp(clip, 1.0 - clip)
    return -(target * p.log() + (1.0 - target) * (1.0 - p).log()).mean()


@LOSSES.register("minimax")
@dataclass(frozen=True)
class Minimax(GANLoss):
    """D: the BCE loss above; G minimises E[log(1 - D(G(z)))], the report's formula (saturates early)."""

    collapse_g_loss = -0.0067  # log(1 - D(G(z))) with D(G(z)) < e^-5: G's loss rises to 0 as D wins
    label_smoothing: float = 0.0
    probability_clip: float = 0.0

    def d_loss(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        return bce_discriminator_loss(real, fake, self.label_smoothing, self.probability_clip)

    def g_loss(self, fake: torch.Tensor) -> torch.Tensor:
        if self.probability_clip:
            return -clipped_bce(fake, 0.0, self.probability_clip)
        return -F.softplus(fake).mean()


@LOSSES.register("nonsaturating")
@dataclass(frozen=True)
class NonSaturating(Minimax):
    """D: the BCE loss; G minimises -E[log D(G(z))], what the report's code trains (G through D, target 1)."""

    collapse_g_loss = 5.0

    def g_loss(self, fake: torch.Tensor) -> torch.Tensor:
        if self.probability_clip:
            return clipped_bce(fake, 1.0, self.probability_clip)
        return F.softplus(-fake).mean()


@LOSSES.register("lsgan")
class LeastSquares(GANLoss):
    """Least squares (Mao et al. 2017) on D's raw output, with targets 1 for real and 0 for fake:
    D minimises ½E[(D(x) - 1)²] + ½E[D(G(z))²]; G minimises ½E[(D(G(z)) - 1)²]."""

    decision_threshold = 0.5  # halfway between the targets
    collapse_g_loss = 0.45  # D(G(z)) at most about 0.05, next to the fake target

    def d_loss(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        return 0.5 * ((real - 1).square().mean() + fake.square().mean())

    def g_loss(self, fake: torch.Tensor) -> torch.Tensor:
        return 0.5 * (fake - 1).square().mean()


@LOSSES.register("hinge")
class Hinge(GANLoss):
    """Hinge loss (Lim & Ye 2017; Miyato et al. 2018) on D's raw output:
    D minimises E[max(0, 1 - D(x))] + E[max(0, 1 + D(G(z)))]; G minimises -E[D(G(z))]."""

    collapse_g_loss = 1.0  # D(G(z)) at or below -1: the fakes past D's margin

    def d_loss(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        return F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()

    def g_loss(self, fake: torch.Tensor) -> torch.Tensor:
        return -fake.mean()


@LOSSES.register("wgan")
class Wasserstein(GANLoss):
    """Wasserstein (Arjovsky et al. 2017) on D's raw output, a critic: D minimises E[D(G(z))] − E[D(x)],
    G minimises −E[D(G(z))]. It needs D kept Lipschitz: the gradient penalty (train.gp_lambda,
    Gulrajani et al. 2017) or spectral norm, and usually several D steps per G step (train.d_steps)."""

    collapse_g_loss = float("inf")  # a critic has no "sure of every fake": the collapse watch never fires
    blind_to_level = True  # E[D(G(z))] − E[D(x)]

    def d_loss(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        return fake.mean() - real.mean()

    def g_loss(self, fake: torch.Tensor) -> torch.Tensor:
        return -fake.mean()


@LOSSES.register("relativistic")
class Relativistic(GANLoss):
    """The relativistic pairing loss (RpGAN: Jolicoeur-Martineau 2018; Sun et al. 2020), R3GAN's loss (Huang et
    al. 2024): each real image is paired with a generated one and D is judged on the difference of their logits,
    D minimising E[softplus(D(G(z)) − D(x))] and G E[softplus(D(x) − D(G(z)))]. G's step needs D's outputs on the
    real images too. R3GAN pairs it with R1 and R2 (train.r1_gamma, train.r2_gamma) to make it converge."""

    collapse_g_loss = 5.0  # real logits above fake ones by 5 across the pairs: D(x) − D(G(z)) ≥ 5
    blind_to_level = True  # it sees only D(x) − D(G(z))

    def d_loss(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        return F.softplus(fake - real).mean()

    def g_loss(self, fake: torch.Tensor) -> torch.Tensor:
        raise TypeError("the relativistic G loss pairs generated images with real ones: call paired_g_loss(fake, real)")

    def paired_g_loss(self, fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        return F.softplus(real - fake).mean()

    def g_objective(self, seen: Seen) -> torch.Tensor:
        return self.paired_g_loss(seen.fake, seen.real)

"""R3GAN's schedules (the `schedule` config section): the learning rates, Adam's beta2, R1's and R2's γ, the
half-life of G's moving average and the augmentation's probability, each moving from a start to an end value over
the first `schedule.kimg` thousand images seen, then holding.

Every value is a function of the images seen alone, set before each step, so a resumed run needs no scheduler
state: it reads the same values at the same image.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gankit.config import Config
from gankit.regularisers import PENALTIES

if TYPE_CHECKING:
    from gankit.training.state import TrainingState
    from gankit.training.step import GANStep

GAMMA_KEYS = ("r1_gamma", "r2_gamma")  # the penalties whose γ schedule.gamma_end scales


def progress(shape: str, images: float, over_images: float) -> float:
    """How far a schedule has moved from its start (0) to its end (1) after `images` of `over_images`: half a cosine
    wave (slow, fast, slow, as R3GAN's `cosine_decay_with_warmup`) or a straight line."""
    t = min(max(images / over_images, 0.0), 1.0)
    return 0.5 * (1.0 - math.cos(math.pi * t)) if shape == "cosine" else t


def between(start: float, end: float, moved: float) -> float:
    return start + moved * (end - start)


@dataclass(frozen=True)
class Schedules:
    config: Config

    @classmethod
    def of(cls, config: Config) -> Schedules | None:
        """The config's schedules, or None where it schedules nothing."""
        return cls(config) if config.schedule.kimg is not None else None

    def moved(self, images: float) -> float:
        s = self.config.schedule
        assert s.kimg is not None
        return progress(s.shape, images, s.kimg * 1000)

    def apply(self, state: TrainingState, step: GANStep, images: float) -> None:
        """Set every scheduled value for the step that starts after `images` images of the run."""
        s, t, moved = self.config.schedule, self.config.train, self.moved(images)
        if s.lr_end is not None:
            for optimiser in (state.opt_g, state.opt_d):
                for group in optimiser.param_groups:
                    group["lr"] = group["base_lr"] * between(1.0, s.lr_end, moved)
        if s.beta2_end is not None:
            d_beta2 = t.beta2 if t.beta2_d is None else t.beta2_d
            for optimiser, start in ((state.opt_g, t.beta2), (state.opt_d, d_beta2)):
                for group in optimiser.param_groups:
                    group["betas"] = (group["betas"][0], between(start, s.beta2_end, moved))
        if s.gamma_end is not None:
            factor = between(1.0, s.gamma_end, moved)
            for name, penalty in PENALTIES.items():
                if penalty.weight_key in GAMMA_KEYS:
                    step.term_weights[name] = factor
        if s.augment_p_end is not None:
            state.augment.set_probability(between(0.0, s.augment_p_end, moved))

    def ema_decay(self, images: float, images_per_update: float) -> float:
        """The moving average's decay per G update: a half-life rising from 0 to schedule.ema_kimg_end thousand
        images, 0.5 ** (images per update / half-life); 0 (a copy of G) while the half-life is 0."""
        end = self.config.schedule.ema_kimg_end
        assert end is not None
        half_life = between(0.0, end * 1000, self.moved(images))
        return 0.5 ** (images_per_update / half_life) if half_life > 0 else 0.0

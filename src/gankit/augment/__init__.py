"""Augmentations of what D sees: DiffAugment's fixed parts (train.diffaugment), or ADA's pipeline at an adaptive
probability (train.ada_target) or a scheduled one (schedule.augment_p_end), one at a time; each is a module of this
package."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from gankit.augment.ada import AdaptiveAugment
from gankit.augment.base import NO_AUGMENTATION, Augmentation
from gankit.augment.diffaugment import POLICIES, DiffAugment, diff_augment, parse_policy
from gankit.errors import GankitError

if TYPE_CHECKING:
    from gankit.config import Config

__all__ = ["POLICIES", "Augmentation", "NO_AUGMENTATION", "build_augmentation", "check", "diff_augment", "parse_policy"]


def check(config: Config) -> None:
    t = config.train
    parse_policy(t.diffaugment)
    scheduled = config.schedule.augment_p_end is not None
    if scheduled and (t.ada_target is not None or t.diffaugment):
        raise GankitError(
            "schedule.augment_p_end sets the probability of ADA's pipeline: it goes with neither "
            "train.ada_target (which adapts it) nor train.diffaugment"
        )
    if t.ada_target is None and not scheduled:
        return
    if config.data.channels not in (1, 3):
        raise GankitError(f"ADA's colour changes are for 1 or 3 channels, not {config.data.channels}")
    if t.ada_target is None:  # the probability is scheduled
        return
    if not 0.0 < t.ada_target < 1.0:
        raise GankitError(f"train.ada_target must be in (0, 1) (ADA's paper: 0.6), got {t.ada_target}")
    if not t.ada_kimg > 0:
        raise GankitError(f"train.ada_kimg must be > 0, got {t.ada_kimg}")
    if t.ada_interval < 1:
        raise GankitError(f"train.ada_interval must be >= 1, got {t.ada_interval}")
    if t.diffaugment:
        raise GankitError("train.ada_target and train.diffaugment each augment D's images: choose one")


def build_augmentation(config: Config, value_range: tuple[float, float], device: torch.device) -> Augmentation:
    t = config.train
    if t.ada_target is not None or config.schedule.augment_p_end is not None:
        return AdaptiveAugment(
            value_range, target=t.ada_target, speed_kimg=t.ada_kimg, interval=t.ada_interval, device=device
        )
    policy = parse_policy(t.diffaugment)
    return DiffAugment(policy, value_range) if policy else NO_AUGMENTATION

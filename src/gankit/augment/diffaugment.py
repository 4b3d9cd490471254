"""DiffAugment (Zhao et al. 2020): the same random, differentiable changes to real and generated images
before D sees them, in D's step and in G's (and in its penalties), so D cannot memorise a small data set.

Every draw comes from torch's RNG of the images' device, which checkpoints save, so a resumed run
draws what an uninterrupted one would.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from gankit.augment.base import Augmentation
from gankit.errors import GankitError


def brightness(x: torch.Tensor) -> torch.Tensor:
    return x + (torch.rand(x.shape[0], 1, 1, 1, device=x.device, dtype=x.dtype) - 0.5)


def saturation(x: torch.Tensor) -> torch.Tensor:
    mean = x.mean(dim=1, keepdim=True)
    return (x - mean) * (torch.rand(x.shape[0], 1, 1, 1, device=x.device, dtype=x.dtype) * 2) + mean


def contrast(x: torch.Tensor) -> torch.Tensor:
    mean = x.mean(dim=[1, 2, 3], keepdim=True)
    return (x - mean) * (torch.rand(x.shape[0], 1, 1, 1, device=x.device, dtype=x.dtype) + 0.5) + mean


def translation(x: torch.Tensor, ratio: float = 0.125) -> torch.Tensor:
    """Shift each image by up to `ratio` of its size in each direction, filling with zeros."""
    n, _, h, w = x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    dy = torch.randint(-sh, sh + 1, (n, 1, 1), device=x.device)
    dx = torch.randint(-sw, sw + 1, (n, 1, 1), device=x.device)
    rows = (torch.arange(h, device=x.device)[None, :, None] + dy).clamp(-1, h)  # -1 and h land in the padding
    cols = (torch.arange(w, device=x.device)[None, None, :] + dx).clamp(-1, w)
    padded = F.pad(x, [1, 1, 1, 1])  # (N, C, H + 2, W + 2)
    batch = torch.arange(n, device=x.device)[:, None, None]
    return padded.permute(0, 2, 3, 1)[batch, rows + 1, cols + 1].permute(0, 3, 1, 2)


def cutout(x: torch.Tensor, ratio: float = 0.5) -> torch.Tensor:
    """Zero one square of `ratio` of the image's size at a random place in each image."""
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    cy = torch.randint(0, h + (1 - ch % 2), (n, 1, 1), device=x.device)
    cx = torch.randint(0, w + (1 - cw % 2), (n, 1, 1), device=x.device)
    rows = torch.arange(h, device=x.device)[None, :, None]
    cols = torch.arange(w, device=x.device)[None, None, :]
    inside = (
        ((rows - cy + ch // 2) >= 0)
        & ((rows - cy + ch // 2) < ch)
        & ((cols - cx + cw // 2) >= 0)
        & ((cols - cx + cw // 2) < cw)
    )
    return x * (~inside).unsqueeze(1).to(x.dtype)


POLICIES: dict[str, tuple[Callable[[torch.Tensor], torch.Tensor], ...]] = {
    "color": (brightness, saturation, contrast),
    "translation": (translation,),
    "cutout": (cutout,),
}


def parse_policy(text: str) -> list[str]:
    """'color,translation,cutout' -> its parts, each checked; '' -> none."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    for part in parts:
        if part not in POLICIES:
            raise GankitError(f"train.diffaugment: unknown part '{part}' (known: {', '.join(POLICIES)})")
    return parts


def diff_augment(x: torch.Tensor, policy: list[str], value_range: tuple[float, float] = (-1.0, 1.0)) -> torch.Tensor:
    """x changed by every function of each named part, in order; the identity for an empty policy.

    The changes are DiffAugment's for pixels in [-1, 1] (brightness ±0.5, padding and cutout at 0,
    mid-grey); images in another `value_range` are mapped there and back.
    """
    if not policy:
        return x
    low, high = value_range
    mid, half = (high + low) / 2, (high - low) / 2
    x = (x - mid) / half
    for part in policy:
        for change in POLICIES[part]:
            x = change(x)
    return x * half + mid


class DiffAugment(Augmentation):
    """DiffAugment's parts (train.diffaugment) on every image D sees, for G's `value_range`."""

    def __init__(self, policy: list[str], value_range: tuple[float, float]):
        self.policy, self.value_range = policy, value_range

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return diff_augment(x, self.policy, self.value_range)

"""How different G's samples are from one another, against the real images: the mean distance between the images of a
batch, in pixels and in the features of a small fixed network, each as a fraction of the same on real images. A G
whose samples are all alike (mode collapse) scores near 0 there, whatever D's accuracy says; real images score 1."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

FEATURE_SIDE = 32  # images are resized to this side before the feature network
FEATURE_SEED = 20240601  # the feature network's weights: random, and the same in every run


def mean_pairwise_distance(vectors: torch.Tensor) -> float:
    """The mean Euclidean distance over all pairs of distinct rows of `vectors` (N, D), N >= 2."""
    # exact differences, not the matrix-product shortcut, whose rounding leaves identical rows ~1e-8 apart
    distances = torch.cdist(vectors.double(), vectors.double(), compute_mode="donot_use_mm_for_euclid_dist")
    n = vectors.shape[0]
    return float(distances.sum() / (n * (n - 1)))


def feature_network(channels: int) -> nn.Module:
    """Three stride-2 convolutions with ReLU, randomly initialised from a fixed seed and never trained: features that
    see shapes as well as pixels, for any data set, without downloading anything. Torch's global RNG is left alone."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(FEATURE_SEED)
        net = nn.Sequential(
            nn.Conv2d(channels, 32, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(32, 64, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(64, 64, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Flatten(),
        )
    return net.eval().requires_grad_(False)


class SampleSpread:
    """The spread of a batch of images (uint8, N >= 2) as a fraction of the spread of `real` (uint8, the same shape
    per image): `fractions(images)` gives {"spread_pixels": ..., "spread_features": ...}."""

    def __init__(self, real: torch.Tensor):
        if real.shape[0] < 2:
            raise ValueError(f"the spread of real images needs at least 2 of them, got {real.shape[0]}")
        self.net = feature_network(real.shape[1])
        self.real = self._spreads(real)

    def fractions(self, images: torch.Tensor) -> dict[str, float]:
        spreads = self._spreads(images)
        return {f"spread_{kind}": spreads[kind] / self.real[kind] if self.real[kind] else 0.0 for kind in spreads}

    @torch.no_grad()
    def _spreads(self, images: torch.Tensor) -> dict[str, float]:
        x = images.detach().cpu().float().div(255.0)
        small = F.interpolate(
            x, size=(FEATURE_SIDE, FEATURE_SIDE), mode="bilinear", antialias=True, align_corners=False
        )
        return {
            "pixels": mean_pairwise_distance(x.flatten(1)),
            "features": mean_pairwise_distance(self.net(small * 2 - 1)),
        }

"""Kernel Inception Distance: unbiased MMD² with the kernel k(x, y) = (x·y / d + 1)³, over random subsets."""

from __future__ import annotations

import torch

from gankit.metrics.features import FeatureSet
from gankit.metrics.registry import register_metric

SUBSETS = 100
SUBSET_SIZE = 1000


def mmd2_unbiased(x: torch.Tensor, y: torch.Tensor) -> float:
    d = x.shape[1]
    k_xx, k_yy, k_xy = ((a @ b.T / d + 1) ** 3 for a, b in ((x, x), (y, y), (x, y)))
    m = x.shape[0]
    off_diagonal = (k_xx.sum() - k_xx.diagonal().sum() + k_yy.sum() - k_yy.diagonal().sum()) / (m * (m - 1))
    return float(off_diagonal - 2 * k_xy.mean())


@register_metric("kid", keys=("kid_mean", "kid_std"), panel="KID", plotted=("kid_mean",))
def kid(
    real: FeatureSet, generated: FeatureSet, *, subsets: int = SUBSETS, subset_size: int = SUBSET_SIZE, seed: int = 0
) -> dict[str, float]:
    size = min(subset_size, len(real.features), len(generated.features))
    if size == len(real.features) == len(generated.features):  # every subset would be both sets whole: one will do
        subsets = 1
    gen = torch.Generator().manual_seed(seed)
    values = torch.tensor(
        [
            mmd2_unbiased(
                real.features[torch.randperm(len(real.features), generator=gen)[:size]],
                generated.features[torch.randperm(len(generated.features), generator=gen)[:size]],
            )
            for _ in range(subsets)
        ],
        dtype=torch.float64,  # the subsets' MMDs are float64 sums; their mean should not round to float32
    )
    return {"kid_mean": float(values.mean()), "kid_std": float(values.std()) if subsets > 1 else 0.0}

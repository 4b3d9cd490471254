"""Inception Score: exp(E_x KL(p(y|x) || p(y))), mean and std over 10 splits; with gankit's
evaluator it is the same formula over the data set's own classes (at most 10 for MNIST)."""

from __future__ import annotations

import torch

from gankit.metrics.features import FeatureSet
from gankit.metrics.registry import register_metric

SPLITS = 10


@register_metric(
    "is",
    keys=("is_mean", "is_std"),
    panel="Inception Score (classifier)",
    plotted=("is_mean",),
    needs_probabilities=True,
)
def inception_score(real: FeatureSet, generated: FeatureSet, *, splits: int = SPLITS) -> dict[str, float]:
    scores = []
    for part in generated.probs.chunk(splits):
        marginal = part.mean(0, keepdim=True)
        kl = (part * (part.clamp_min(1e-12).log() - marginal.clamp_min(1e-12).log())).sum(1).mean()
        scores.append(kl.exp())
    values = torch.stack(scores)
    return {"is_mean": float(values.mean()), "is_std": float(values.std())}

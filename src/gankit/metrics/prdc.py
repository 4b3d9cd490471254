"""Precision and recall (Kynkäänniemi et al., 2019), density and coverage (Naeem et al., 2020).

Each real (or generated) feature owns a ball reaching its k-th nearest neighbour in its own set.
precision: share of generated points inside some real ball; recall: share of real points inside
some generated ball; density: real balls holding each generated point, / k, averaged; coverage:
share of real balls holding at least one generated point.
"""

from __future__ import annotations

import torch

from gankit.metrics.features import FeatureSet
from gankit.metrics.registry import register_metric

K = 3
CHUNK = 2048


def kth_neighbour_radii(x: torch.Tensor, k: int) -> torch.Tensor:
    """Distance from each row to its k-th nearest other row."""
    radii = [torch.cdist(part, x).kthvalue(k + 1, dim=1).values for part in x.split(CHUNK)]  # +1: itself at 0
    return torch.cat(radii)


@register_metric(
    "pr",
    keys=("precision", "recall", "density", "coverage"),
    panel="Precision, recall, density, coverage",
    min_samples=K + 1,
)  # each point's k-th neighbour
def prdc(real: FeatureSet, generated: FeatureSet, *, k: int = K) -> dict[str, float]:
    r, g = real.features, generated.features
    real_radii, fake_radii = kth_neighbour_radii(r, k), kth_neighbour_radii(g, k)
    inside_real = torch.cat([(torch.cdist(part, r) < real_radii[None]) for part in g.split(CHUNK)])  # (G, R)
    recall_hits = torch.cat([(torch.cdist(part, g) < fake_radii[None]).any(1) for part in r.split(CHUNK)])
    return {
        "precision": float(inside_real.any(1).double().mean()),
        "recall": float(recall_hits.double().mean()),
        "density": float(inside_real.sum(1).double().mean() / k),
        "coverage": float(inside_real.any(0).double().mean()),
    }

"""Quality metrics chosen by name. Each is a pure function of two feature sets returning named floats.

    fid       Fréchet distance between Gaussian fits of the features (Heusel et al., 2017)
    kid       unbiased polynomial-kernel MMD², mean and std over subsets (Bińkowski et al., 2018)
    is        Inception Score, or its analogue with gankit's classifier (Salimans et al., 2016)
    pr        precision, recall (Kynkäänniemi et al., 2019) and density, coverage (Naeem et al., 2020), k = 3
    coverage  the classifier's predicted classes over the samples: classes covered and KL to the real mix
"""

from __future__ import annotations

from typing import Any

from gankit.errors import GankitError
from gankit.metrics import fid, kid, inception_score, prdc, classes  # noqa: F401, I001  (registered in this order)
from gankit.metrics.features import EXTRACTORS, FeatureSet
from gankit.metrics.registry import METRICS, quality_keys

__all__ = ["EXTRACTORS", "METRICS", "compute", "parse_metrics", "quality_keys"]


def parse_metrics(text: str) -> list[str]:
    """Comma-separated metric names, checked against the registry."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise GankitError(f"no metric named in '{text}' (known: {', '.join(METRICS)})")
    for name in names:
        METRICS[name]  # noqa: B018  (an unknown name is a user error listing the known ones)
    return names


def compute(names: list[str], real: FeatureSet, generated: FeatureSet) -> dict[str, Any]:
    """All the named metrics of `generated` against `real`, as one flat dict."""
    results: dict[str, Any] = {}
    for name in names:
        results.update(METRICS[name].compute(real, generated))
    return results

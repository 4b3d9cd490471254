"""Quality metrics chosen by name. Each is a pure function of two feature sets returning named floats.

    fid       Fréchet distance between Gaussian fits of the features (Heusel et al., 2017)
    kid       unbiased polynomial-kernel MMD², mean and std over subsets (Bińkowski et al., 2018)
    is        Inception Score, or its analogue with gankit's classifier (Salimans et al., 2016)
    pr        precision, recall (Kynkäänniemi et al., 2019) and density, coverage (Naeem et al., 2020), k = 3
    coverage  the classifier's predicted classes over the samples: classes covered and KL to the real mix
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gankit.config import METRIC_NAMES
from gankit.errors import GankitError
from gankit.metrics.classes import class_coverage
from gankit.metrics.features import FeatureSet
from gankit.metrics.fid import fid
from gankit.metrics.inception_score import inception_score
from gankit.metrics.kid import kid
from gankit.metrics.prdc import prdc

METRICS: dict[str, Callable[[FeatureSet, FeatureSet], dict[str, Any]]] = {
    "fid": fid,
    "kid": kid,
    "is": inception_score,
    "pr": prdc,
    "coverage": class_coverage,
}
assert tuple(METRICS) == METRIC_NAMES  # the config validates names against the same list


def parse_metrics(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in METRICS]
    if unknown or not names:
        raise GankitError(f"unknown metric '{(unknown or [text])[0]}' (known: {', '.join(METRICS)})")
    return names


def compute(names: list[str], real: FeatureSet, generated: FeatureSet) -> dict[str, Any]:
    """All the named metrics of `generated` against `real`, as one flat dict."""
    results: dict[str, Any] = {}
    for name in names:
        results.update(METRICS[name](real, generated))
    return results

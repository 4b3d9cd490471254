"""The metric registry: each metric file registers its function with the names of the numbers it returns."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gankit.metrics.features import FeatureSet
from gankit.registry import Registry

MetricFunction = Callable[[FeatureSet, FeatureSet], dict[str, Any]]


@dataclass(frozen=True)
class Metric:
    compute: MetricFunction  # (real features, generated features) -> named results
    keys: tuple[str, ...]  # the named numbers it returns (curves, TensorBoard and reports tell them from step stats)
    panel: str  # title of its panel in the training curves
    plotted: tuple[str, ...]  # the keys drawn in that panel
    # needs the class of each image: the true one of real images, the requested one of samples
    conditional: bool = False
    needs_probabilities: bool = False  # reads the extractor's class probabilities
    needs_evaluator: bool = False  # reads class probabilities over the data's own classes (gankit's classifier)
    min_samples: int = 2  # the fewest images on each side it can score (a covariance needs two)
    by_default: bool = True  # among the metrics `eval` computes when none are named
    # reads the samples alone (of the real side only its class count), so it scores n samples however few real
    # images there are
    samples_only: bool = False


METRICS: Registry[Metric] = Registry("metric")
LOWER_IS_BETTER = ("fid", "kid_mean", "intra_fid", "class_kl", "modes_kl")  # the scores that rank runs best-first


def register_metric(
    name: str,
    *,
    keys: tuple[str, ...],
    panel: str,
    plotted: tuple[str, ...] | None = None,
    conditional: bool = False,
    needs_probabilities: bool = False,
    needs_evaluator: bool = False,
    min_samples: int = 2,
    by_default: bool = True,
    samples_only: bool = False,
) -> Callable[[MetricFunction], MetricFunction]:
    def add(function: MetricFunction) -> MetricFunction:
        METRICS.register(name)(
            Metric(
                function,
                keys,
                panel,
                plotted or keys,
                conditional,
                needs_probabilities or needs_evaluator,
                needs_evaluator,
                min_samples,
                by_default,
                samples_only,
            )
        )
        return function

    return add


def quality_keys() -> set[str]:
    """Every number a registered metric can put into a run's records."""
    return {key for _, metric in METRICS.items() for key in metric.keys}

"""Quality metrics chosen by name. Each is a pure function of two feature sets returning named floats.

fid       Fréchet distance between Gaussian fits of the features (Heusel et al., 2017)
kid       unbiased polynomial-kernel MMD², mean and std over subsets (Bińkowski et al., 2018)
is        Inception Score, or its analogue with gankit's classifier (Salimans et al., 2016)
pr        precision, recall (Kynkäänniemi et al., 2019) and density, coverage (Naeem et al., 2020), k = 3
coverage  the classifier's predicted classes over the samples: classes covered and KL to the real mix
class_acc conditional runs: the share of samples the classifier assigns to the class asked for
intra_fid conditional runs: FID per class against that class's test images, and the mean
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gankit.errors import GankitError

# registered in this order, the order of the CLI's lists and the report's tables
from gankit.metrics import fid, kid, inception_score, prdc, classes, class_accuracy, intra_fid, modes  # noqa: F401  # isort: skip
from gankit.metrics import dinov2  # noqa: F401  (its feature extractors)
from gankit.metrics.features import EXTRACTORS, FeatureSet, Reads, reads
from gankit.metrics.registry import METRICS, Metric, quality_keys

if TYPE_CHECKING:
    from gankit.config import Config

__all__ = [
    "EXTRACTORS",
    "METRICS",
    "applicable",
    "check_applicable",
    "compute",
    "fewest_samples",
    "parse_metrics",
    "quality_keys",
    "reads",
    "scored_metrics",
]


def parse_metrics(text: str) -> list[str]:
    """Comma-separated metric names, checked against the registry."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise GankitError(f"no metric named in '{text}' (known: {', '.join(METRICS)})")
    for name in names:
        METRICS[name]  # noqa: B018  (an unknown name is a user error listing the known ones)
    return names


def applicable(conditional: bool, reads: Reads) -> list[str]:
    """The metrics that score a generator of this kind with features that give what `reads` says: the
    class-conditional ones only for a conditional generator, those reading classes only where there are some."""
    return [name for name, metric in METRICS.items() if _problem(metric, conditional, reads) is None]


def scored_metrics(config: Config) -> list[str]:
    """What a run scores while it trains: output.eval_metrics (none named: every default metric that applies), and
    a conditional run also whether it makes the classes asked for."""
    o = config.output
    conditional = bool(config.model.num_classes)
    fits = applicable(conditional, reads(o.eval_features, config.data.dataset))
    named = o.eval_metrics or [m for m in fits if METRICS[m].by_default]
    unconditional = applicable(False, reads(o.eval_features, config.data.dataset))
    return [*named, *(m for m in fits if m not in unconditional + named)]


def check_applicable(names: list[str], conditional: bool, features: str, dataset: str) -> None:
    """Refuse, naming them, metrics that cannot score this generator with these features on this data set."""
    what = reads(features, dataset)
    for name in names:
        problem = _problem(METRICS[name], conditional, what)  # an unknown name is a user error listing the known ones
        if problem == "conditional":
            raise GankitError(f"metric {name} scores class-conditional samples; this generator is unconditional")
        if problem:
            source = (
                f"gankit's evaluator of {dataset} (a contrastive encoder: the data set has no classifier)"
                if features == "evaluator"
                else f"{features} features"
            )
            raise GankitError(f"metric {name} reads {problem}, which {source} cannot give")


def _problem(metric: Metric, conditional: bool, what: Reads) -> str | None:
    if metric.conditional and not conditional:
        return "conditional"
    if metric.needs_evaluator and not what.data_classes:
        return "the data's classes from gankit's classifier"
    if metric.needs_probabilities and not what.probabilities:
        return "class probabilities"
    return None


def fewest_samples(names: list[str]) -> tuple[int, str]:
    """The fewest images on each side that all the named metrics can score, and the metric that needs them."""
    return max(((METRICS[name].min_samples, name) for name in names), default=(2, "any metric"))


def compute(names: list[str], real: FeatureSet, generated: FeatureSet) -> dict[str, Any]:
    """All the named metrics of `generated` against `real`, as one flat dict."""
    results: dict[str, Any] = {}
    for name in names:
        if METRICS[name].conditional and (real.labels is None or generated.labels is None):
            side = "the real images" if real.labels is None else "the samples"
            raise GankitError(f"metric {name} needs the class of every image, and {side} have none")
        results.update(METRICS[name].compute(real, generated))
    return results

"""Scoring a generator: its samples against the held-out real split, beside the real-versus-real floor."""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from gankit.config import Config
from gankit.data import ImageSet, load_images
from gankit.data.listing import NoTestSplit
from gankit.data.locate import resolve_data_dir
from gankit.errors import GankitError
from gankit.metrics import EXTRACTORS, METRICS, check_applicable, compute, fewest_samples
from gankit.metrics.features import Extractor, FeatureSet
from gankit.models import CONDITIONINGS, Generator
from gankit.records import is_number
from gankit.sampling import sample_images

log = logging.getLogger(__name__)


@dataclass
class Scorer:
    """Everything about the real side, computed once: the extractor, the test split's features and the floor."""

    extractor: Extractor
    real: FeatureSet
    floor: dict[str, Any]
    metrics: list[str]
    n: int  # real images
    n_generated: int
    real_is: str  # what the samples are scored against
    floor_is: str


def make_scorer(
    config: Config,
    *,
    n: int,
    metrics: list[str],
    features: str,
    data_dir: Path | None = None,
    weights: Path | None = None,
    progress: bool = True,
) -> Scorer:
    """Load (or train) the extractor and score a real training subset against the test split; a folder with no
    test split is scored against its training images, and its floor is one half of them against the other."""
    least, needing = fewest_samples(metrics)
    if n < least:
        raise GankitError(f"n must be at least {least} (metric {needing} needs them), got {n}", option="n")
    check_applicable(metrics, config.model.conditioning != "none", features, config.data.dataset)
    root = resolve_data_dir(data_dir, config.data.dir)
    data = dataclasses.replace(config.data, limit=None, dir=str(root) if root else None)
    train = load_images(data, train=True)
    try:
        test: ImageSet | None = load_images(data, train=False)
    except NoTestSplit:
        test = None
    for split in (train,) if test is None else (test, train):
        CONDITIONINGS[config.model.conditioning].check_split(config, split.classes, split.source)
    pick = torch.randperm(len(train), generator=torch.Generator().manual_seed(0))
    # without a test split the floor is one half of the training images against the other
    n_real = min(n, len(train)) if test is None else min(n, len(test), len(train))
    per_side = n_real // 2 if test is None else n_real
    if per_side < least:
        raise GankitError(f"the real images number {n_real}, and metric {needing} needs at least {least} per side")
    samples_only = all(METRICS[name].samples_only for name in metrics)
    if n_real < n and not samples_only:
        log.warning("the real images number %d: scoring with %d on each side", n_real, n_real)
    extractor = EXTRACTORS[features](data, weights, progress)
    if test is None:
        chosen = pick[:n_real]
        real = extractor(train.images[chosen], train.labels[chosen])
        other = pick[per_side : 2 * per_side]
        floor = compute(metrics, real.rows(per_side), extractor(train.images[other], train.labels[other]))
        real_is = "training images (no test split)"
        floor_is = f"one half of the training images against the other ({per_side} each, so FD's bias is larger)"
    else:
        real = extractor(test.images[:n_real], test.labels[:n_real])
        floor = compute(metrics, real, extractor(train.images[pick[:n_real]], train.labels[pick[:n_real]]))
        real_is, floor_is = "test split", "real training subset against the test split"
    n_generated = n if samples_only else n_real
    return Scorer(extractor, real, floor, metrics, n_real, n_generated, real_is, floor_is)


def score(scorer: Scorer, G: Generator, *, seed: int = 0) -> dict[str, Any]:
    """The metrics of n samples of G (noise seed `seed`), with the floor and what they were measured with.

    A conditional G is asked for every class equally often (label i % K for sample i)."""
    start = time.perf_counter()
    labels = torch.arange(scorer.n_generated) % max(G.num_classes, 1)
    generated = scorer.extractor(sample_images(G, scorer.n_generated, seed=seed, labels=labels), labels)
    return {
        "features": scorer.extractor.name,
        "n_generated": scorer.n_generated,
        "n_real": scorer.n,
        "real": scorer.real_is,
        "metrics": compute(scorer.metrics, scorer.real, generated),
        "floor": scorer.floor,
        "floor_is": scorer.floor_is,
        "seconds": time.perf_counter() - start,
    }


def numbers(metrics: dict[str, Any]) -> dict[str, float]:
    """The scalar results (lists such as class histograms stay in the full result)."""
    return {k: v for k, v in metrics.items() if is_number(v)}

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
from gankit.data import load_images
from gankit.data.locate import resolve_data_dir
from gankit.errors import GankitError
from gankit.metrics import EXTRACTORS, compute, fewest_samples
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
    n: int


def make_scorer(
    config: Config,
    *,
    n: int,
    metrics: list[str],
    features: str,
    data_dir: Path | None = None,
    inception_weights: Path | None = None,
    progress: bool = True,
) -> Scorer:
    """Load (or train) the extractor and score a real training subset against the test split."""
    least, needing = fewest_samples(metrics)
    if n < least:
        raise GankitError(f"n must be at least {least} (metric {needing} needs them), got {n}", option="n")
    root = resolve_data_dir(data_dir, config.data.dir)
    extractor = EXTRACTORS[features](config.data.dataset, root, inception_weights, progress)
    data = dataclasses.replace(config.data, limit=None, dir=str(root) if root else None)
    test = load_images(data, train=False)
    train = load_images(data, train=True)
    for split in (test, train):
        CONDITIONINGS[config.model.conditioning].check_split(config, split.classes, split.source)
    n_real = min(n, len(test), len(train))
    if n_real < least:
        raise GankitError(f"the real splits hold {n_real} images, and metric {needing} needs at least {least}")
    if n_real < n:
        log.warning("the real splits hold %d images: scoring with %d on each side", n_real, n_real)
    pick = torch.randperm(len(train), generator=torch.Generator().manual_seed(0))[:n_real]
    real = extractor(test.images[:n_real], test.labels[:n_real])
    floor = compute(metrics, real, extractor(train.images[pick], train.labels[pick]))
    return Scorer(extractor, real, floor, metrics, n_real)


def score(scorer: Scorer, G: Generator, *, seed: int = 0) -> dict[str, Any]:
    """The metrics of n samples of G (noise seed `seed`), with the floor and what they were measured with.

    A conditional G is asked for every class equally often (label i % K for sample i)."""
    start = time.perf_counter()
    labels = torch.arange(scorer.n) % max(G.num_classes, 1)
    generated = scorer.extractor(sample_images(G, scorer.n, seed=seed, labels=labels), labels)
    return {
        "features": scorer.extractor.name,
        "n_generated": scorer.n,
        "n_real": scorer.n,
        "real": "test split",
        "metrics": compute(scorer.metrics, scorer.real, generated),
        "floor": scorer.floor,
        "floor_is": "real training subset against the test split",
        "seconds": time.perf_counter() - start,
    }


def numbers(metrics: dict[str, Any]) -> dict[str, float]:
    """The scalar results (lists such as class histograms stay in the full result)."""
    return {k: v for k, v in metrics.items() if is_number(v)}

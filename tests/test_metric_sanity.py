"""The metrics move the right way (bench/metric_sanity.py's ladders, short): real MNIST images made noisier, blurrier
or missing classes score worse at every step in gankit's evaluator's features and in the contrastive encoder's, and
one image repeated has recall and coverage near 0."""

from __future__ import annotations

import dataclasses
import runpy
from pathlib import Path

import pytest
import torch

from gankit.config import DataConfig
from gankit.data import ImageSet, load_images
from gankit.evaluators import contrastive
from gankit.metrics.features import EncoderExtractor

BENCH = Path(__file__).resolve().parents[1] / "bench"
SHORT = {"noise": [0.0, 0.1, 0.3], "blur": [0.0, 1.0, 2.0], "classes": [0, 3, 6]}


pytestmark = pytest.mark.usefixtures("one_epoch_evaluator")  # the evaluator every scoring module uses


@pytest.fixture(scope="module")
def sanity():
    return runpy.run_path(str(BENCH / "metric_sanity.py"))


@pytest.fixture(scope="module")
def split(mnist_dir):
    data = DataConfig(dataset="mnist", dir=str(mnist_dir))
    real = load_images(data, train=False).head(500)
    train = load_images(data, train=True)
    pick = torch.randperm(len(train), generator=torch.Generator().manual_seed(1))[:500]
    return data, real, ImageSet(train.images[pick], train.labels[pick], train.classes, train.source)


CLASS_KEYS = {"is_mean", "classes_covered", "class_kl"}  # from class probabilities, which the encoder lacks
# the moves the short ladders must show on 500 images; precision and density need not fall with blur at k = 3 (the
# bench's full ladders show where they do)
ROBUST = {
    "noise": {"fid", "kid_mean"},
    "blur": {"fid", "kid_mean"},
    "classes": {"fid", "kid_mean", "recall", "coverage"},
}


@pytest.mark.parametrize("features", ["evaluator", "contrastive"])
def test_each_metric_worsens_along_each_ladder(sanity, split, features, monkeypatch):
    data, real, fake = split
    if features == "contrastive":  # trained briefly on 1,000 training images: the same code, seconds
        monkeypatch.setattr(contrastive, "RECIPE", dataclasses.replace(contrastive.RECIPE, steps=60, batch=64, width=8))
        train = load_images(data, train=True).head(1000)
        encoder, _, name = contrastive.load_contrastive(train.images, progress=False)
        extractor = EncoderExtractor(encoder, name)
    else:
        extractor = sanity["build"](features, data, None)
    metrics = sanity["metrics_for"](features, "mnist")
    steps = {name: (SHORT[name], expected) for name, (_, expected) in sanity["LADDERS"].items()}
    results = sanity["ladders"](extractor, metrics, real, fake, steps)
    for name, (_, expected) in steps.items():
        present = set(expected) - (CLASS_KEYS if features == "contrastive" else set())
        assert present <= set(results[name][0]), (features, name)  # no metric silently missing
        for key in present & ROBUST[name]:
            values = [row[key] for row in results[name]]
            assert sanity["monotone"](values, key), (features, name, key, values)
    assert results["noise"][0]["fid"] < 0.2 * results["noise"][-1]["fid"]  # real against real is near the floor
    one = sanity["collapsed"](extractor, metrics, real, fake)
    assert one["recall"] < 0.05 and one["coverage"] < 0.05 and one["precision"] >= one["recall"]

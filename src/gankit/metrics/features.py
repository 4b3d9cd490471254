"""Feature extractors by name (`EXTRACTORS`): gankit's own evaluator for the data set, or Inception-v3 pool features."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from gankit.errors import GankitError
from gankit.registry import Registry

if TYPE_CHECKING:
    from gankit.evaluators.nets import Evaluator

log = logging.getLogger(__name__)

BATCH = 500
INCEPTION_FILE = "weights-inception-2015-12-05-6726825d.pth"
INCEPTION_URL = f"https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/{INCEPTION_FILE}"


@dataclass
class FeatureSet:
    features: torch.Tensor  # (N, F) float64
    probs: torch.Tensor  # (N, K) class probabilities
    labels: torch.Tensor | None = None  # (N,) true classes of real images, or the classes samples were asked for

    def known_labels(self) -> torch.Tensor:
        """The images' classes, for a metric of classes (`metrics.compute` refuses it on images of unknown class)."""
        if self.labels is None:
            raise ValueError("a class metric needs the class of every image")
        return self.labels


class Extractor:
    """Maps uint8 images (N, C, H, W) to features and class probabilities, in batches, on the CPU."""

    name: str

    @torch.no_grad()
    def __call__(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> FeatureSet:
        features, probs = zip(*(self.batch(x) for x in images.split(BATCH)))
        return FeatureSet(torch.cat(features).double(), torch.cat(probs).double(), labels)

    def batch(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError


class EvaluatorExtractor(Extractor):
    """The penultimate layer of gankit's classifier for the data set, and its softmax."""

    def __init__(self, net: Evaluator, dataset: str):
        self.net, self.name = net.eval(), f"evaluator-{dataset}"

    def batch(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.net.features(images)
        return features, self.net.head(features).softmax(1)


class InceptionExtractor(Extractor):
    """Inception-v3's 2048 pool features and 1008 logits, the standard FID network, via torch-fidelity."""

    name = "inception-v3"

    def __init__(self, weights: Path | None):
        path = weights or Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_FILE
        if not path.is_file():
            raise GankitError(
                f"Inception-v3 weights not found at {path}; download {INCEPTION_URL} and name the file "
                "with inception_weights (or use the evaluator features)",
                option="inception_weights",
            )
        try:
            torch.load(path, map_location="cpu", weights_only=True)  # refuse anything but tensors before
        except Exception as exc:  # noqa: BLE001 - torch-fidelity unpickles the file itself
            raise GankitError(
                f"{path} is not an Inception-v3 weights file or is unsafe to load ({type(exc).__name__})"
            ) from None
        try:
            from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
        except ImportError:
            raise GankitError("Inception features need torch-fidelity: pip install 'gankit[inception]'") from None
        self.net = FeatureExtractorInceptionV3(
            "inception-v3-compat", ["2048", "logits_unbiased"], feature_extractor_weights_path=str(path)
        )

    def batch(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if images.shape[1] == 1:
            images = images.expand(-1, 3, -1, -1)  # grey -> RGB
        features, logits = self.net(images)
        return features, logits.softmax(1)


# name -> factory(dataset, data_dir, inception_weights, progress) building the extractor
EXTRACTORS: Registry[Callable[[str, Path | None, Path | None, bool], Extractor]] = Registry("feature extractor")


@EXTRACTORS.register("evaluator")
def evaluator_features(dataset: str, data_dir: Path | None, weights: Path | None, progress: bool) -> Extractor:
    from gankit.evaluators import load_evaluator  # trains it on first use, from the data set's real images

    net, info = load_evaluator(dataset, data_dir, progress=progress)
    log.info("features: the %s evaluator (test accuracy %.2f%%)", dataset, 100 * info["test_accuracy"])
    return EvaluatorExtractor(net, dataset)


@EXTRACTORS.register("inception")
def inception_features(dataset: str, data_dir: Path | None, weights: Path | None, progress: bool) -> Extractor:
    return InceptionExtractor(weights)

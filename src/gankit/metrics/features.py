"""Feature extractors by name (`EXTRACTORS`): gankit's own evaluator for the data set (its classifier, or for data
without one a contrastive encoder trained on the images), or Inception-v3 pool features."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from gankit.errors import GankitError
from gankit.registry import Registry
from gankit.resizing import resize_like_pil

if TYPE_CHECKING:
    from gankit.config import DataConfig
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

    def rows(self, count: int) -> FeatureSet:
        """The first `count` images' features."""
        labels = None if self.labels is None else self.labels[:count]
        return FeatureSet(self.features[:count], self.probs[:count], labels)

    def known_labels(self) -> torch.Tensor:
        """The images' classes, for a metric of classes (`metrics.compute` refuses it on images of unknown class)."""
        if self.labels is None:
            raise ValueError("a class metric needs the class of every image")
        return self.labels


class Extractor:
    """Maps uint8 images (N, C, H, W) to features and class probabilities, in batches, on the CPU."""

    name: str
    batch_size = BATCH

    @torch.no_grad()
    def __call__(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> FeatureSet:
        features, probs = zip(*(self.batch(x) for x in images.split(self.batch_size)))
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


class EncoderExtractor(Extractor):
    """A contrastive encoder's features; it knows no classes, so its probabilities are empty (N, 0)."""

    def __init__(self, net: Evaluator, name: str):
        self.net, self.name = net.eval(), name

    def batch(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.net.features(images)
        return features, features.new_zeros(len(features), 0)


@dataclass(frozen=True)
class Reads:
    """What an extractor gives metrics beyond features."""

    probabilities: bool  # class probabilities (the Inception Score, the classes covered)
    data_classes: bool  # over the data set's own classes (a classifier trained on them)


def reads(features: str, dataset: str) -> Reads:
    """What `features` give on `dataset`: gankit's evaluator is a classifier only where the data set has one,
    Inception-v3 classifies ImageNet's classes, and self-supervised networks (DINOv2) classify nothing."""
    if features == "inception":
        return Reads(probabilities=True, data_classes=False)
    if features != "evaluator":
        return Reads(probabilities=False, data_classes=False)
    from gankit.evaluators import has_classifier

    classified = has_classifier(dataset)
    return Reads(probabilities=classified, data_classes=classified)


def weights_file(given: Path | None, file: str, network: str, url: str, hint: str = "") -> Path:
    """A feature network's weights: the file the user named, else torch's hub cache under the published file name."""
    path = given or Path(torch.hub.get_dir()) / "checkpoints" / file
    if not path.is_file():
        raise GankitError(
            f"no {network} weight file at {path}; download {url} and name it with weights{hint}", option="weights"
        )
    return path


class InceptionExtractor(Extractor):
    """Inception-v3's 2048 pool features and 1008 logits, the standard FID network, via torch-fidelity."""

    name = "inception-v3"

    def __init__(self, weights: Path | None):
        path = weights_file(weights, INCEPTION_FILE, "Inception-v3", INCEPTION_URL, " (or use the evaluator features)")
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
        # to 299x299 with PIL's bicubic as clean-fid does, not the network's own bilinear; it takes uint8
        images = (resize_like_pil(images, 299) * 255).round().to(torch.uint8)
        features, logits = self.net(images)
        return features, logits.softmax(1)


# name -> factory(data (its dir resolved), weights file of a network, progress) building the extractor
EXTRACTORS: Registry[Callable[[DataConfig, Path | None, bool], Extractor]] = Registry("feature extractor")


@EXTRACTORS.register("evaluator")
def evaluator_features(data: DataConfig, weights: Path | None, progress: bool) -> Extractor:
    from gankit.evaluators import has_classifier, load_evaluator  # trained on first use, from the real images

    if not has_classifier(data.dataset):
        from gankit.data import load_images
        from gankit.evaluators.contrastive import load_contrastive

        encoder, info, name = load_contrastive(load_images(data, train=True).images, progress=progress)
        log.info("features: %s, a contrastive encoder trained on the %d training images", name, info["train_images"])
        return EncoderExtractor(encoder, name)
    net, info = load_evaluator(data.dataset, Path(data.dir) if data.dir else None, progress=progress)
    log.info("features: the %s evaluator (test accuracy %.2f%%)", data.dataset, 100 * info["test_accuracy"])
    return EvaluatorExtractor(net, data.dataset)


@EXTRACTORS.register("inception")
def inception_features(data: DataConfig, weights: Path | None, progress: bool) -> Extractor:
    return InceptionExtractor(weights)

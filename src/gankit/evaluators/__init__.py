"""gankit's own evaluators: classifiers trained on each data set's real training split, cached.

`load_evaluator` returns the cached classifier for a data set, training it first (with a progress
bar) when the cache has none for exactly these training images. Data without a classifier (a folder of
one's own images) gets a contrastive encoder instead: `gankit.evaluators.contrastive`.
"""

from __future__ import annotations

import hashlib
import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from tqdm import tqdm

from gankit.checkpoint import torch_save
from gankit.config import DataConfig
from gankit.data import DATASETS, ImageSet, load_images
from gankit.data.locate import cache_dir
from gankit.errors import GankitError
from gankit.evaluators.nets import ColourNet, Evaluator, GreyNet, PerChannel
from gankit.files import atomic_write, ensure_parent

log = logging.getLogger(__name__)

RECIPE_VERSION = 2  # bump when a recipe changes, so cached evaluators are retrained
LOG_EVERY_S = 30.0  # progress lines while training with no progress bar


@dataclass(frozen=True)
class Recipe:
    net: type[Evaluator]
    epochs: int
    max_lr: float  # peak of the one-cycle schedule (SGD, Nesterov momentum 0.9)
    flip: bool  # random horizontal flips
    crop_pad: int  # random translations of up to this many pixels
    batch: int = 128
    weight_decay: float = 5e-4
    minutes: int = 2  # about how long training takes on two CPU cores, said up front


RECIPES = {
    "mnist": Recipe(GreyNet, epochs=4, max_lr=0.05, flip=False, crop_pad=2),
    "fashion-mnist": Recipe(GreyNet, epochs=10, max_lr=0.05, flip=True, crop_pad=2, minutes=5),
    "cifar10": Recipe(ColourNet, epochs=13, max_lr=0.1, flip=True, crop_pad=4, batch=256, minutes=15),
}


STACKED = {"stacked-mnist": "mnist"}  # data sets read channel by channel with another's evaluator


def has_classifier(dataset: str) -> bool:
    """Whether gankit trains a classifier for `dataset`; data without one is scored in a contrastive encoder's features."""
    return dataset in RECIPES or dataset in STACKED


def load_evaluator(dataset: str, data_dir: Path | None, *, progress: bool = True) -> tuple[Evaluator, dict[str, Any]]:
    """The evaluator for `dataset` and its record (test accuracy, training time), trained on first use."""
    if dataset in STACKED:  # MNIST's evaluator on each channel
        grey, grey_info = load_evaluator(STACKED[dataset], data_dir, progress=progress)
        stacked = PerChannel(grey).eval()
        return stacked, {
            **grey_info,
            "channel_evaluator": STACKED[dataset],
            "channel_test_accuracy": grey_info["test_accuracy"],
            "test_accuracy": test_accuracy(stacked, _real(dataset, data_dir, train=False)),  # all three digits right
        }
    if dataset not in RECIPES:
        raise GankitError(f"no evaluator for data set '{dataset}' (there are: {', '.join([*RECIPES, *STACKED])})")
    train = _real(dataset, data_dir, train=True)
    path = _cache_path(dataset, train)
    if path.is_file():
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
            net = _build(dataset, state["mean"], state["std"])
            net.load_state_dict(state["weights"])
            return net.eval(), state["info"]
        except Exception as exc:  # noqa: BLE001 - a damaged file fails inside torch's readers in many ways
            # gankit's own cache: what it wrote can be written again (nothing in the file is run: weights_only)
            log.warning(
                "the cached %s evaluator %s is damaged (%s): training it again", dataset, path, type(exc).__name__
            )
    log.info(
        "training the %s evaluator once, %d epochs: about %d minutes on 2 CPU cores (cached afterwards at %s)",
        dataset,
        RECIPES[dataset].epochs,
        RECIPES[dataset].minutes,
        path,
    )
    net, info = train_evaluator(dataset, train, _real(dataset, data_dir, train=False), progress=progress)
    ensure_parent(path)
    state = {"weights": net.state_dict(), "mean": float(net.mean), "std": float(net.std), "info": info}
    atomic_write(path, lambda tmp: torch_save(state, tmp))
    return net.eval(), info


def train_evaluator(
    dataset: str, train: ImageSet, test: ImageSet, *, progress: bool = True, epochs: int | None = None, seed: int = 0
) -> tuple[Evaluator, dict[str, Any]]:
    """Train the data set's classifier on `train`; the record holds its accuracy on `test`."""
    recipe = RECIPES[dataset]
    epochs = epochs or recipe.epochs
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    pixels = train.images.float() / 255
    net = _build(dataset, pixels.mean().item(), pixels.std().item())
    del pixels
    steps = len(train) // recipe.batch
    optimiser = torch.optim.SGD(
        net.parameters(), lr=recipe.max_lr, momentum=0.9, nesterov=True, weight_decay=recipe.weight_decay
    )
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, recipe.max_lr, total_steps=epochs * steps)
    start = last_log = time.perf_counter()
    for epoch in range(1, epochs + 1):
        net.train()
        order = torch.randperm(len(train), generator=gen)
        bar = tqdm(
            range(steps),
            desc=f"{dataset} evaluator, epoch {epoch}/{epochs}",
            leave=False,
            disable=None if progress else True,
            file=sys.stderr,
        )  # None: on a terminal only
        for i in bar:
            idx = order[i * recipe.batch : (i + 1) * recipe.batch]
            images = augment(train.images[idx], recipe, gen)
            loss = F.cross_entropy(net(images), train.labels[idx])
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            schedule.step()
            if (
                bar.disable and time.perf_counter() - last_log >= LOG_EVERY_S
            ):  # no bar (a log file): a line now and then
                last_log = time.perf_counter()
                log.info(
                    "%s evaluator: epoch %d/%d, step %d/%d, %.0f s so far",
                    dataset,
                    epoch,
                    epochs,
                    i + 1,
                    steps,
                    last_log - start,
                )
        bar.close()
    seconds = time.perf_counter() - start
    accuracy = test_accuracy(net, test)
    log.info("%s evaluator: test accuracy %.2f%% after %d epochs, %.0f s", dataset, 100 * accuracy, epochs, seconds)
    info = {
        "dataset": dataset,
        "test_accuracy": accuracy,
        "epochs": epochs,
        "train_seconds": seconds,
        "train_images": len(train),
        "test_images": len(test),
    }
    return net.eval(), info


@torch.no_grad()
def test_accuracy(net: Evaluator, test: ImageSet) -> float:
    net.eval()
    correct = sum(int((net(x).argmax(1) == y).sum()) for x, y in zip(test.images.split(1000), test.labels.split(1000)))
    return correct / len(test)


def augment(images: torch.Tensor, recipe: Recipe, gen: torch.Generator) -> torch.Tensor:
    """Random translations (zero padding) and, where the recipe says, horizontal flips of uint8 images."""
    n, _, h, w = images.shape
    if recipe.crop_pad:
        p = recipe.crop_pad
        padded = F.pad(images, (p, p, p, p))
        dy = torch.randint(0, 2 * p + 1, (n,), generator=gen)
        dx = torch.randint(0, 2 * p + 1, (n,), generator=gen)
        rows = (dy[:, None] + torch.arange(h))[:, None, :, None]  # (N, 1, H, 1)
        cols = (dx[:, None] + torch.arange(w))[:, None, None, :]  # (N, 1, 1, W)
        images = padded[
            torch.arange(n)[:, None, None, None], torch.arange(images.shape[1])[None, :, None, None], rows, cols
        ]
    if recipe.flip:
        flip = torch.rand(n, generator=gen) < 0.5
        images = torch.where(flip[:, None, None, None], images.flip(3), images)
    return images


def _real(dataset: str, data_dir: Path | None, *, train: bool) -> ImageSet:
    source = DATASETS[dataset]  # a data set with an evaluator has one shape: the data set's entry says which
    if source.size is None or source.channels is None:
        raise GankitError(f"data set {dataset} has no one shape for an evaluator")
    config = DataConfig(dataset=dataset, image_size=source.size, channels=source.channels)
    images = load_images(config, data_dir, train=train)
    if not images.classes:
        raise GankitError(f"{images.source} has no class labels; an evaluator needs them")
    return images


def _build(dataset: str, mean: float, std: float) -> Evaluator:
    return RECIPES[dataset].net(mean, std).to(memory_format=torch.channels_last)  # faster convolutions on the CPU


def _cache_path(dataset: str, train: ImageSet) -> Path:
    digest = hashlib.sha256(f"v{RECIPE_VERSION}|{dataset}|".encode())
    digest.update(train.images.numpy().tobytes())
    digest.update(train.labels.numpy().tobytes())
    return cache_dir() / "evaluators" / f"{dataset}-{digest.hexdigest()[:16]}.pt"

"""Stacked MNIST (Metz et al. 2017; the protocol of PacGAN, Lin et al. 2018): each image is three MNIST digits drawn
independently, one per colour channel, so the data set has 10 x 10 x 10 = 1,000 modes. A sample's mode is read by
classifying each channel with the MNIST evaluator (`gankit.evaluators`), and the `modes` metric counts the modes a
generator covers.

The train split stacks 60,000 triples of MNIST's training digits, the test split 10,000 of its test digits, each drawn
with a fixed seed, so every run and machine sees the same images. The label of a stack is 100·first + 10·second +
third digit, named "000" to "999".
"""

from __future__ import annotations

from pathlib import Path

import torch

from gankit.data.imageset import ImageSet
from gankit.data.mnist import load_mnist
from gankit.data.sources import DATASETS, Dataset

SEEDS = {True: 2017, False: 2018}  # the draws of the train and test splits
CLASSES = tuple(f"{k:03d}" for k in range(1000))


def load_stacked_mnist(root: Path | None, *, train: bool = True) -> ImageSet:
    """As many stacks (N, 3, 28, 28) as the MNIST split has digits, with labels 0-999."""
    digits = load_mnist("mnist", root, train=train)
    n = len(digits)
    picks = torch.randint(n, (n, 3), generator=torch.Generator().manual_seed(SEEDS[train]))
    images = digits.images[picks, 0]  # (N, 3, 28, 28): channel c is digit picks[:, c]
    parts = digits.labels[picks]
    labels = 100 * parts[:, 0] + 10 * parts[:, 1] + parts[:, 2]
    return ImageSet(images.contiguous(), labels, list(CLASSES), f"stacked-mnist from {digits.source}")


DATASETS.register("stacked-mnist")(
    Dataset(
        load=lambda root, train, config: load_stacked_mnist(root, train=train),
        channels=3,
        size=28,
        paddable=True,
        classes=CLASSES,
    )
)

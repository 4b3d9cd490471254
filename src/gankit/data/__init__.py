"""Training images as one uint8 tensor: MNIST, Fashion-MNIST, CIFAR-10 or any folder of images."""

from __future__ import annotations

from pathlib import Path

import torch

from gankit.config import DataConfig
from gankit.data import cifar, images, mnist, stacked_mnist  # noqa: F401  (each registers its data sets)
from gankit.data.imageset import ImageSet, unlabelled
from gankit.data.locate import resolve_data_dir
from gankit.data.sources import DATASETS, Dataset
from gankit.errors import GankitError

__all__ = ["DATASETS", "Dataset", "ImageSet", "load_images", "unlabelled"]


def load_images(config: DataConfig, data_dir: Path | None = None, *, train: bool = True) -> ImageSet:
    """The data set the config names, from `data_dir`, else data.dir, else $GANKIT_DATA_DIR, else the cache."""
    source = DATASETS[config.dataset]
    root = resolve_data_dir(data_dir, config.dir)
    if root is None and source.needs_dir:
        raise GankitError(
            f"data.dataset {config.dataset} needs a folder or archive of images: name it with data_dir "
            f"(or data.dir, or $GANKIT_DATA_DIR)",
            option="data_dir",
        )
    loaded = _fit(source.load(root, train, config), config)
    return loaded.head(config.limit) if config.limit is not None else loaded


def _fit(loaded: ImageSet, config: DataConfig) -> ImageSet:
    """Zero-pad smaller images (MNIST 28 -> 32) and check the shape against the config."""
    c, h, w = loaded.images.shape[1:]
    size = config.image_size
    if c != config.channels:
        raise GankitError(
            f"{loaded.source} has {c}-channel images; the config asks for data.channels {config.channels}"
        )
    if (h, w) != (size, size):
        if h > size or w > size or (size - h) % 2 or (size - w) % 2:
            raise GankitError(f"{loaded.source} has {h}x{w} images; cannot pad them to data.image_size {size}")
        ph, pw = (size - h) // 2, (size - w) // 2
        padded = torch.nn.functional.pad(loaded.images, (pw, pw, ph, ph))
        loaded = ImageSet(padded, loaded.labels, loaded.classes, loaded.source)
    return loaded

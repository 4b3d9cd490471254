"""Training images as one uint8 tensor: MNIST, Fashion-MNIST, CIFAR-10 or any folder of images."""

from __future__ import annotations

from pathlib import Path

import torch

from gankit.config import DataConfig
from gankit.data.cifar import load_cifar10
from gankit.data.imageset import ImageSet
from gankit.data.images import load_image_folder
from gankit.data.mnist import load_mnist
from gankit.errors import GankitError
from gankit.data.locate import explicit_data_dir

__all__ = ["ImageSet", "load_images"]


def load_images(config: DataConfig, data_dir: Path | None, *, train: bool = True) -> ImageSet:
    """The data set the config names, found through `data_dir`, $GANKIT_DATA_DIR or the cache."""
    root = explicit_data_dir(data_dir)
    if config.dataset in ("mnist", "fashion-mnist"):
        images = load_mnist(config.dataset, root, train=train)
    elif config.dataset == "cifar10":
        images = load_cifar10(root, train=train, skip_bad=config.skip_bad_images)
    else:
        if root is None:
            raise GankitError("data.dataset folder needs --data-dir (or $GANKIT_DATA_DIR) naming a folder or archive of images")
        images = load_image_folder(root, train=train, size=config.image_size, channels=config.channels, skip_bad=config.skip_bad_images)
    images = _fit(images, config)
    if config.limit is not None:
        images = images.head(config.limit)
    return images


def _fit(images: ImageSet, config: DataConfig) -> ImageSet:
    """Zero-pad smaller images (MNIST 28 -> 32) and check the shape against the config."""
    c, h, w = images.images.shape[1:]
    size = config.image_size
    if c != config.channels:
        raise GankitError(f"{images.source} has {c}-channel images; the config asks for data.channels {config.channels}")
    if (h, w) != (size, size):
        if h > size or w > size or (size - h) % 2 or (size - w) % 2:
            raise GankitError(f"{images.source} has {h}x{w} images; cannot pad them to data.image_size {size}")
        ph, pw = (size - h) // 2, (size - w) // 2
        padded = torch.nn.functional.pad(images.images, (pw, pw, ph, ph))
        images = ImageSet(padded, images.labels, images.classes, images.source)
    return images

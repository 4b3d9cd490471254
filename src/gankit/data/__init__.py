"""Training images as one uint8 tensor: MNIST, Fashion-MNIST, CIFAR-10 or any folder of images."""

from __future__ import annotations

from pathlib import Path

import torch

from gankit.config import DataConfig
from gankit.data import cifar, images, mnist, stacked_mnist  # noqa: F401  (each registers its data sets)
from gankit.data.imageset import ImageSet, unlabelled
from gankit.data.locate import resolve_data_dir
from gankit.data.placement import device_memory
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
    loaded = source.load(root, train, config)
    return _fit(loaded.head(config.limit) if config.limit is not None else loaded, config)  # only those kept grow


def _fit(loaded: ImageSet, config: DataConfig) -> ImageSet:
    """Zero-pad smaller images (MNIST 28 -> 32) and check the shape against the config; padding that would take
    more than half the machine's memory is refused before it is tried."""
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
        needed, memory = len(loaded) * c * size * size, device_memory(torch.device("cpu"))
        if needed > memory // 2:
            raise GankitError(
                f"padding the {len(loaded):,} images of {loaded.source} from {h}x{w} to data.image_size {size} "
                f"would take {needed / 2**30:.1f} GiB, more than half of this machine's {memory / 2**30:.1f} GiB; "
                "choose a smaller data.image_size, or fewer images (data.limit)"
            )
        padded = torch.nn.functional.pad(loaded.images, (pw, pw, ph, ph))
        loaded = ImageSet(padded, loaded.labels, loaded.classes, loaded.source)
    return loaded

"""CIFAR-10: torchvision's python format (downloaded when online) or a tree/archive of images."""

from __future__ import annotations

import contextlib
import io
import logging
from pathlib import Path

import torch
import torchvision

from gankit.data.images import load_image_folder
from gankit.data.imageset import ImageSet
from gankit.data.listing import is_archive
from gankit.data.locate import download_dir
from gankit.data.sources import DATASETS, Dataset
from gankit.errors import GankitError

log = logging.getLogger(__name__)

SUBFOLDERS = ("cifar10", "cifar-10", "cifar10-jpeg")
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
ARCHIVE_NAMES = ("cifar10-jpeg.tar.gz", "cifar10.tar.gz", "cifar10.zip")


def load_cifar10(root: Path | None, *, train: bool = True, skip_bad: bool = False) -> ImageSet:
    if root is None:
        return _torchvision(download_dir(), train, download=True)
    candidates = [root, *(root / s for s in SUBFOLDERS)]
    for candidate in candidates:
        if (candidate / "cifar-10-batches-py").is_dir():
            return _torchvision(candidate, train, download=False)
    for candidate in candidates:
        archives = (
            [candidate]
            if is_archive(candidate)
            else [candidate / n for n in ARCHIVE_NAMES if (candidate / n).is_file()]
        )
        if (candidate / "train").is_dir():
            archives.insert(0, candidate)
        if archives:
            return load_image_folder(archives[0], train=train, size=32, channels=3, skip_bad=skip_bad)
    raise GankitError(
        f"no CIFAR-10 found in {root} (looked for cifar-10-batches-py/, train/<class>/ images "
        f"or {', '.join(ARCHIVE_NAMES)} in it and in {', '.join(SUBFOLDERS)}/)"
    )


def _torchvision(root: Path, train: bool, *, download: bool) -> ImageSet:
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            dataset = torchvision.datasets.CIFAR10(str(root), train=train, download=download)
    except Exception as exc:  # noqa: BLE001 - a failed download or check ends in the same advice
        where = "could not be downloaded" if download else "is incomplete or corrupt"
        raise GankitError(
            f"CIFAR-10 in {root} {where} ({type(exc).__name__}: {exc}); "
            "name cifar-10-batches-py's parent or a folder/archive of CIFAR-10 images with data_dir",
            option="data_dir",
        ) from None
    images = torch.from_numpy(dataset.data).permute(0, 3, 1, 2).contiguous()  # (N, 32, 32, 3) -> (N, 3, 32, 32)
    return ImageSet(images, torch.tensor(dataset.targets), list(dataset.classes), f"cifar10 ({root})")


DATASETS.register("cifar10")(
    Dataset(
        load=lambda root, train, config: load_cifar10(root, train=train, skip_bad=config.skip_bad_images),
        channels=3,
        size=32,
        classes=CLASSES,
    )
)

"""Any folder or archive of images, decoded once into a uint8 array cached on disk.

Layouts: a class-per-folder tree (`cat/001.png`) or a flat folder; a top-level `train/` and
`test/` pair selects the split. Archives (.tar, .tar.gz, .tgz, .zip) are read without
unpacking (listing.py). Images are converted to RGB or grey, then resized and centre-cropped to a square, by a
pool of processes (one per core), into a .npy file that training maps from disk; an interrupted
decode resumes where it stopped (decoding.py).
The order is round-robin over classes (each class's first image, then each class's second, ...),
so `data.limit` keeps the classes balanced.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from filelock import FileLock

from gankit.data.decoding import (
    CLASSES_FILE,
    FLAT,
    IMAGES_FILE,
    LABELS_FILE,
    STATUS_FILE,
    TODO,
    UNREADABLE,
    decode_into,
    keep_rows,
    open_partial,
)
from gankit.data.imageset import ImageSet
from gankit.data.listing import (
    ARCHIVE_SUFFIXES,
    IMAGE_EXTENSIONS,
    check_sizes,
    is_archive,
    label_of,
    list_images,
    round_robin,
    select_split,
)
from gankit.data.locate import cache_dir
from gankit.data.sources import DATASETS, Dataset
from gankit.errors import GankitError

if TYPE_CHECKING:
    from gankit.config import DataConfig


log = logging.getLogger(__name__)
DECODER_VERSION = 3  # bump when decoding or the cache's layout changes, so old caches are not reused


def load_image_folder(source: Path, *, train: bool, size: int, channels: int, skip_bad: bool = False) -> ImageSet:
    """Every image of the split as (N, C, size, size) uint8, mapped from the decoded cache (decoded first if need be).

    The cache is a .npy file read through a memory map, so a data set larger than memory trains from disk
    (data.in_memory decides whether it is copied into memory or onto the GPU first)."""
    if not (source.is_dir() or is_archive(source)):
        raise GankitError(f"{source} is neither a folder nor an archive ({', '.join(ARCHIVE_SUFFIXES)}) of images")
    folder = cache_dir() / "decoded" / _cache_key(source, train, size, channels, skip_bad)
    if (folder / CLASSES_FILE).is_file():  # written last: the folder is complete
        log.info("loaded %d decoded images from the cache %s", _rows(folder / IMAGES_FILE), folder)
    else:
        folder.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(folder) + ".lock"):  # a second process decoding the same images waits, then reads them
            if not (folder / CLASSES_FILE).is_file():
                _decode_all(source, folder, train, size, channels, skip_bad)
                log.info("cached the decoded images at %s; later runs skip decoding", folder)
    images = np.load(folder / IMAGES_FILE, mmap_mode="c")  # copy-on-write: pages are read when a batch needs them
    labels = np.load(folder / LABELS_FILE)
    classes = json.loads((folder / CLASSES_FILE).read_text())
    return ImageSet(
        torch.from_numpy(images),
        torch.from_numpy(labels).long().clamp_(min=0),  # an unlabelled folder's cache holds -1: all class 0
        classes,
        f"{source} ({'train' if train else 'test'})",
        mapped=True,
    )


def _rows(path: Path) -> int:
    return np.load(path, mmap_mode="r").shape[0]


def _decode_all(source: Path, folder: Path, train: bool, size: int, channels: int, skip_bad: bool) -> None:
    """List the split's images, then decode them with all cores into `folder`.partial, which is renamed to
    `folder` when complete. An interrupted decode leaves the partial folder, and the next call decodes only
    what it lacks."""
    start = time.perf_counter()
    sizes = list_images(source)
    if not sizes:
        raise GankitError(f"{source} holds no images ({', '.join(sorted(IMAGE_EXTENSIONS))})")
    check_sizes(source, sizes)
    chosen = select_split(list(sizes), train, source)
    classes = sorted({p.parts[0] for p in chosen.values()}) if all(len(p.parts) > 1 for p in chosen.values()) else []
    order = round_robin(chosen, classes)
    shape = (len(order), channels, size, size)
    partial = folder.with_name(folder.name + ".partial")
    images, status = open_partial(partial, shape, source)
    todo = {order[i]: int(i) for i in np.flatnonzero(status == TODO)}
    if len(todo) < len(order):
        log.info("resuming an interrupted decode of %s: %d of %d images left", source, len(todo), len(order))
    try:
        decode_into(images, status, source, todo, "RGB" if channels == 3 else "L", size, skip_bad)
    except GankitError:
        del images, status
        shutil.rmtree(partial, ignore_errors=True)  # a bad file: the fixed folder gets a cache of its own
        raise
    flat = [order[i] for i in np.flatnonzero(status == FLAT)]
    if flat:
        log.warning(
            "%d of the images in %s are a single flat colour and would train as blank pictures: %s%s",
            len(flat),
            source,
            ", ".join(flat[:3]),
            ", ..." if len(flat) > 3 else "",
        )
    readable = status != UNREADABLE
    n = int(readable.sum())
    if n == 0:
        shutil.rmtree(partial, ignore_errors=True)
        raise GankitError(f"{source}: none of its {len(order)} images could be read")
    if n < len(order):
        log.warning("skipped %d unreadable images of %d in %s", len(order) - n, len(order), source)
        keep_rows(partial / IMAGES_FILE, images, readable)
    images.flush()
    del images, status
    labels = np.array([label_of(chosen[name], classes) for name in order], dtype=np.int64)
    np.save(partial / LABELS_FILE, labels[readable])
    (partial / CLASSES_FILE).write_text(json.dumps(classes))
    (partial / STATUS_FILE).unlink()
    os.replace(partial, folder)
    log.info("decoded %d images from %s in %.1f s", n, source, time.perf_counter() - start)


def _cache_key(source: Path, train: bool, size: int, channels: int, skip_bad: bool) -> str:
    key = hashlib.sha256(f"v{DECODER_VERSION}|{source.resolve()}|{train}|{size}|{channels}|{skip_bad}".encode())
    paths = sorted(source.rglob("*")) if source.is_dir() else [source]
    for path in paths:
        stat = path.lstat()  # a broken link or a loop is keyed, not followed
        key.update(f"{path}|{stat.st_size}|{stat.st_mtime_ns};".encode())
    return key.hexdigest()[:24]


def _load_folder(root: Path | None, train: bool, config: DataConfig) -> ImageSet:
    if root is None:
        raise ValueError("the folder data set needs its folder: load_images refuses a missing one first (needs_dir)")
    return load_image_folder(
        root, train=train, size=config.image_size, channels=config.channels, skip_bad=config.skip_bad_images
    )


DATASETS.register("folder")(
    Dataset(
        load=_load_folder,
        needs_dir=True,
    )
)

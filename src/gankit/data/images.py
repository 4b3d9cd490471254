"""Any folder or archive of images, decoded once into a uint8 array cached on disk.

Layouts: a class-per-folder tree (`cat/001.png`) or a flat folder; a top-level `train/` and
`test/` pair selects the split. Archives (.tar, .tar.gz, .tgz, .zip) are read without
unpacking. Images are converted to RGB or grey, then resized and centre-cropped to a square.
The order is round-robin over classes (each class's first image, then each class's second, ...),
so `data.limit` keeps the classes balanced.
"""

from __future__ import annotations

import hashlib
import io
import logging
import tarfile
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from gankit.data.imageset import ImageSet
from gankit.data.locate import cache_dir
from gankit.data.sources import DATASETS, Dataset
from gankit.errors import GankitError
from gankit.files import atomic_write

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"}
ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".zip")
DECODER_VERSION = 1  # bump when decoding changes, so old caches are not reused


def is_archive(path: Path) -> bool:
    return path.is_file() and path.name.lower().endswith(ARCHIVE_SUFFIXES)


def load_image_folder(source: Path, *, train: bool, size: int, channels: int, skip_bad: bool = False) -> ImageSet:
    """Decode (or read from the cache) every image of the split as (N, C, size, size) uint8."""
    if not (source.is_dir() or is_archive(source)):
        raise GankitError(f"{source} is neither a folder nor an archive ({', '.join(ARCHIVE_SUFFIXES)}) of images")
    key = _cache_key(source, train, size, channels, skip_bad)
    cached = cache_dir() / "decoded" / f"{key}.npz"
    if cached.is_file():
        with np.load(cached) as f:
            images, labels, classes = f["images"], f["labels"], list(f["classes"])
        log.info("loaded %d decoded images from the cache %s", len(images), cached)
    else:
        images, labels, classes = _decode_all(source, train, size, channels, skip_bad)
        _save_cache(cached, images=images, labels=labels, classes=np.array(classes, dtype=str))
        log.info("cached the decoded images at %s; later runs skip decoding", cached)
    return ImageSet(
        torch.from_numpy(images),
        torch.from_numpy(labels).long() if classes else None,
        classes,
        f"{source} ({'train' if train else 'test'})",
    )


def _decode_all(source: Path, train: bool, size: int, channels: int, skip_bad: bool) -> tuple[np.ndarray, np.ndarray, list[str]]:
    start = time.perf_counter()
    files = dict(_read_files(source))
    if not files:
        raise GankitError(f"{source} holds no images ({', '.join(sorted(IMAGE_EXTENSIONS))})")
    chosen = _select_split(list(files), train, source)
    classes = sorted({p.parts[0] for p in chosen.values()}) if all(len(p.parts) > 1 for p in chosen.values()) else []
    order = _round_robin(chosen, classes)
    mode = "RGB" if channels == 3 else "L"
    out = np.empty((len(order), channels, size, size), dtype=np.uint8)
    labels = np.empty(len(order), dtype=np.int64)
    n, bad = 0, 0
    for name in order:
        try:
            out[n] = _decode(files[name], mode, size)
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
            if not skip_bad:
                reason = "not an image format Pillow reads" if isinstance(exc, UnidentifiedImageError) else str(exc)[:200]
                raise GankitError(f"cannot read image {source}:{name}: {reason} (set data.skip_bad_images=true to skip "
                                  "such files)") from None
            bad += 1
            continue
        labels[n] = classes.index(chosen[name].parts[0]) if classes else -1
        n += 1
    if n == 0:
        raise GankitError(f"{source}: none of its {len(order)} images could be read")
    if bad:
        log.warning("skipped %d unreadable images of %d in %s", bad, len(order), source)
    log.info("decoded %d images from %s in %.1f s", n, source, time.perf_counter() - start)
    return out[:n], labels[:n], classes


def _decode(data: bytes, mode: str, size: int) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as img:
        img.load()
        img = img.convert(mode)
        if img.size != (size, size):
            img = ImageOps.fit(img, (size, size), Image.Resampling.BICUBIC)  # resize the short side, crop the centre
        array = np.asarray(img, dtype=np.uint8)
    return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)  # (H, W, C) -> (C, H, W)


def _read_files(source: Path) -> Iterator[tuple[str, bytes]]:
    """(relative posix path, bytes) for every image file of a folder or archive."""
    def wanted(name: str) -> bool:
        return PurePosixPath(name).suffix.lower() in IMAGE_EXTENSIONS and not PurePosixPath(name).name.startswith(".")

    try:
        if source.is_dir():
            for path in sorted(source.rglob("*")):
                rel = path.relative_to(source).as_posix()
                if path.is_file() and wanted(rel):
                    yield rel, path.read_bytes()
        elif source.name.lower().endswith(".zip"):
            with zipfile.ZipFile(source) as zf:
                for info in zf.infolist():
                    if not info.is_dir() and wanted(info.filename):
                        yield info.filename, zf.read(info)
        else:
            with tarfile.open(source, "r:*") as tf:
                for member in tf:
                    if member.isfile() and wanted(member.name):
                        yield member.name, tf.extractfile(member).read()
    except (OSError, EOFError, tarfile.TarError, zipfile.BadZipFile) as exc:
        raise GankitError(f"cannot read {source}: {exc}") from None


def _select_split(names: list[str], train: bool, source: Path) -> dict[str, PurePosixPath]:
    """Map each file of the split to its path below the split's root."""
    paths = {n: PurePosixPath(n) for n in names}
    # strip folders every file shares (an archive's top folder), keeping the split folders
    while all(len(p.parts) > 2 for p in paths.values()) and len({p.parts[0] for p in paths.values()}) == 1 \
            and next(iter(paths.values())).parts[0] not in ("train", "test"):
        paths = {n: PurePosixPath(*p.parts[1:]) for n, p in paths.items()}
    tops = {p.parts[0] for p in paths.values() if len(p.parts) > 1}
    if "train" in tops:
        split = "train" if train else "test"
        chosen = {n: PurePosixPath(*p.parts[1:]) for n, p in paths.items() if p.parts[0] == split and len(p.parts) > 1}
        if not chosen:
            raise GankitError(f"{source} has no images under {split}/")
        return chosen
    if not train:
        raise GankitError(f"{source} has no test/ folder to hold out")
    return paths


def _round_robin(chosen: dict[str, PurePosixPath], classes: list[str]) -> list[str]:
    if not classes:
        return sorted(chosen)
    per_class: dict[str, list[str]] = {c: [] for c in classes}
    for name in sorted(chosen):
        per_class[chosen[name].parts[0]].append(name)
    rank = {name: (i, c) for c, names in per_class.items() for i, name in enumerate(names)}
    return sorted(chosen, key=lambda name: rank[name])


def _cache_key(source: Path, train: bool, size: int, channels: int, skip_bad: bool) -> str:
    key = hashlib.sha256(f"v{DECODER_VERSION}|{source.resolve()}|{train}|{size}|{channels}|{skip_bad}".encode())
    paths = sorted(source.rglob("*")) if source.is_dir() else [source]
    for path in paths:
        stat = path.stat()
        key.update(f"{path}|{stat.st_size}|{stat.st_mtime_ns};".encode())
    return key.hexdigest()[:24]


def _save_cache(path: Path, **arrays: np.ndarray) -> None:
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:  # a file object, so numpy adds no ".npz" to the temporary name
            np.savez(f, **arrays)

    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, write)


DATASETS.register("folder")(Dataset(
    load=lambda root, train, config: load_image_folder(root, train=train, size=config.image_size, channels=config.channels,
                                                       skip_bad=config.skip_bad_images),
    needs_dir=True))

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
import os
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
DECODER_VERSION = 2  # bump when decoding changes, so old caches are not reused
MAX_IMAGES = 5_000_000  # files in one folder or archive
MAX_IMAGE_BYTES = 256 * 2**20  # one image file, uncompressed
MAX_RATIO = 100  # an archive's images may unpack to at most this many times its size ...
RATIO_FLOOR_BYTES = 256 * 2**20  # ... once they pass this much


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
            images, labels, classes = f["images"], f["labels"], [str(name) for name in f["classes"]]  # not np.str_
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
    """Two passes: list the images (and check their sizes), then decode them one at a time into place."""
    start = time.perf_counter()
    sizes = _list_images(source)
    if not sizes:
        raise GankitError(f"{source} holds no images ({', '.join(sorted(IMAGE_EXTENSIONS))})")
    _check_sizes(source, sizes)
    chosen = _select_split(list(sizes), train, source)
    classes = sorted({p.parts[0] for p in chosen.values()}) if all(len(p.parts) > 1 for p in chosen.values()) else []
    order = _round_robin(chosen, classes)
    position = {name: i for i, name in enumerate(order)}
    decoded_bytes = len(order) * channels * size * size
    if decoded_bytes > memory_budget():
        raise GankitError(f"{source}: {len(order):,} images of {channels}x{size}x{size} take {decoded_bytes / 2**30:.1f} GiB "
                          f"decoded, more than the {memory_budget() / 2**30:.1f} GiB this machine can hold for them "
                          "(data.limit takes fewer; data.image_size makes them smaller)")
    mode = "RGB" if channels == 3 else "L"
    out = np.empty((len(order), channels, size, size), dtype=np.uint8)
    decoded = np.zeros(len(order), dtype=bool)
    for name, data in _read_files(source, set(position)):
        try:
            out[position[name]] = _decode(data, mode, size)
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
            if not skip_bad:
                reason = "not an image format Pillow reads" if isinstance(exc, UnidentifiedImageError) else str(exc)[:200]
                raise GankitError(f"cannot read image {source}:{name}: {reason} (set data.skip_bad_images=true to skip "
                                  "such files)") from None
            continue
        decoded[position[name]] = True
    blank = [order[i] for i in np.flatnonzero(decoded) if out[i].min() == out[i].max()]
    if blank:
        log.warning("%d of the images in %s are a single flat colour and would train as blank pictures: %s%s",
                    len(blank), source, ", ".join(blank[:3]), ", ..." if len(blank) > 3 else "")
    n = int(decoded.sum())
    if n == 0:
        raise GankitError(f"{source}: none of its {len(order)} images could be read")
    if n < len(order):
        log.warning("skipped %d unreadable images of %d in %s", len(order) - n, len(order), source)
    labels = np.array([classes.index(chosen[name].parts[0]) if classes else -1 for name in order], dtype=np.int64)
    log.info("decoded %d images from %s in %.1f s", n, source, time.perf_counter() - start)
    return out[decoded], labels[decoded], classes


def memory_budget() -> int:
    """Bytes the decoded images may take: 3/4 of the machine's memory where the OS says, else 16 GiB."""
    try:
        return int(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") * 0.75)
    except (AttributeError, ValueError, OSError):  # no sysconf (Windows)
        return 16 * 2**30


def _check_sizes(source: Path, sizes: dict[str, int]) -> None:
    """Refuse what would exhaust memory before reading it: too many files, a huge one, an archive bomb."""
    if len(sizes) > MAX_IMAGES:
        raise GankitError(f"{source} holds {len(sizes):,} images; gankit reads at most {MAX_IMAGES:,}")
    name, largest = max(sizes.items(), key=lambda item: item[1])
    if largest > MAX_IMAGE_BYTES:
        raise GankitError(f"{source}:{name} is {largest:,} bytes; an image file may have at most {MAX_IMAGE_BYTES:,}")
    total = sum(sizes.values())
    if is_archive(source) and total > RATIO_FLOOR_BYTES and total > MAX_RATIO * source.stat().st_size:
        raise GankitError(f"{source} would unpack to {total:,} bytes, {total / source.stat().st_size:,.0f} times its own "
                          f"size; gankit refuses archives that expand more than {MAX_RATIO} times")


def _decode(data: bytes, mode: str, size: int) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as img:
        img.load()
        img = _to_8_bit(img).convert(mode)
        if img.size != (size, size):
            img = ImageOps.fit(img, (size, size), Image.Resampling.BICUBIC)  # resize the short side, crop the centre
        array = np.asarray(img, dtype=np.uint8)
    return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)  # (H, W, C) -> (C, H, W)


def _to_8_bit(img: Image.Image) -> Image.Image:
    """16-bit and 32-bit integer or float images as 8-bit grey, scaled by their real range.

    Pillow's own conversion clips them at 255 (a 16-bit photo turns white); here a float image in
    [0, 1] and a 32-bit integer image in [0, 255] keep their values; 16-bit images are scaled from their
    type's range (65535), and wider floats and 32-bit integers from their own minimum to maximum.
    """
    if img.mode not in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        return img
    values = np.asarray(img, dtype=np.float64)
    low, high = float(values.min()), float(values.max())
    if img.mode == "F" and 0.0 <= low and high <= 1.0:
        values = values * 255.0
    elif img.mode.startswith("I;16"):
        values = values / 257.0  # 65535 -> 255, a dark picture stays dark
    elif not (0.0 <= low and high <= 255.0):
        values = (values - low) * (255.0 / (high - low)) if high > low else np.zeros_like(values)
    return Image.fromarray(np.clip(np.rint(values), 0, 255).astype(np.uint8), "L")


def _wanted(name: str) -> bool:
    return PurePosixPath(name).suffix.lower() in IMAGE_EXTENSIONS and not PurePosixPath(name).name.startswith(".")


def _list_images(source: Path) -> dict[str, int]:
    """Relative posix path -> size in bytes (uncompressed) of every image file of a folder or archive.

    Only regular files count: links to elsewhere, pipes, sockets and devices are passed over.
    """
    try:
        if source.is_dir():
            found = {}
            for path in sorted(source.rglob("*")):
                rel = path.relative_to(source).as_posix()
                if _wanted(rel) and not path.is_symlink() and path.is_file():
                    found[rel] = path.stat().st_size
            return found
        if source.name.lower().endswith(".zip"):
            with zipfile.ZipFile(source) as zf:
                found = {}
                for info in zf.infolist():
                    if not info.is_dir() and _wanted(info.filename):  # a name held twice counts twice
                        found[info.filename] = found.get(info.filename, 0) + info.file_size
                return found
        with tarfile.open(source, "r:*") as tf:
            return {m.name: m.size for m in tf if m.isfile() and _wanted(m.name)}
    except (OSError, EOFError, tarfile.TarError, zipfile.BadZipFile) as exc:
        raise GankitError(f"cannot read {source}: {exc}") from None


def _read_files(source: Path, names: set[str]) -> Iterator[tuple[str, bytes]]:
    """(relative posix path, bytes) of the named files, one at a time, in the source's own order."""
    try:
        if source.is_dir():
            for name in sorted(names):
                yield name, (source / name).read_bytes()
        elif source.name.lower().endswith(".zip"):
            with zipfile.ZipFile(source) as zf:
                for info in zf.infolist():
                    if info.filename in names:
                        with zf.open(info) as member:  # read no further than the cap, whatever the header says
                            data = member.read(MAX_IMAGE_BYTES + 1)
                        if len(data) > MAX_IMAGE_BYTES:
                            raise GankitError(f"{source}:{info.filename} unpacks to more than {MAX_IMAGE_BYTES:,} bytes")
                        yield info.filename, data
        else:
            with tarfile.open(source, "r:*") as tf:
                for member in tf:
                    if member.isfile() and member.name in names:
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
        stat = path.lstat()  # a broken link or a loop is keyed, not followed
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

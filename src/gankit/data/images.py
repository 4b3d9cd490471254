"""Any folder or archive of images, decoded once into a uint8 array cached on disk.

Layouts: a class-per-folder tree (`cat/001.png`) or a flat folder; a top-level `train/` and
`test/` pair selects the split. Archives (.tar, .tar.gz, .tgz, .zip) are read without
unpacking. Images are converted to RGB or grey, then resized and centre-cropped to a square, by a
pool of processes (one per core), into a .npy file that training maps from disk; an interrupted
decode resumes where it stopped.
The order is round-robin over classes (each class's first image, then each class's second, ...),
so `data.limit` keeps the classes balanced.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import json
import logging
import math
import multiprocessing
import os
import shutil
import sys
import tarfile
import time
import zipfile
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

import numpy as np
import torch
from filelock import FileLock
from PIL import Image, ImageOps, UnidentifiedImageError
from tqdm import tqdm

from gankit.data.imageset import ImageSet
from gankit.data.locate import cache_dir
from gankit.data.sources import DATASETS, Dataset
from gankit.errors import GankitError
from gankit.interrupts import deferred

if TYPE_CHECKING:
    from gankit.config import DataConfig

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"}
ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".zip")
DECODER_VERSION = 3  # bump when decoding or the cache's layout changes, so old caches are not reused
MAX_IMAGES = 5_000_000  # files in one folder or archive
MAX_IMAGE_BYTES = 256 * 2**20  # one image file, uncompressed
MAX_RATIO = 100  # an archive's images may unpack to at most this many times its size ...
RATIO_FLOOR_BYTES = 256 * 2**20  # ... once they pass this much


def is_archive(path: Path) -> bool:
    return path.is_file() and path.name.lower().endswith(ARCHIVE_SUFFIXES)


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
    sizes = _list_images(source)
    if not sizes:
        raise GankitError(f"{source} holds no images ({', '.join(sorted(IMAGE_EXTENSIONS))})")
    _check_sizes(source, sizes)
    chosen = _select_split(list(sizes), train, source)
    classes = sorted({p.parts[0] for p in chosen.values()}) if all(len(p.parts) > 1 for p in chosen.values()) else []
    order = _round_robin(chosen, classes)
    shape = (len(order), channels, size, size)
    partial = folder.with_name(folder.name + ".partial")
    images, status = _open_partial(partial, shape, source)
    todo = {order[i]: int(i) for i in np.flatnonzero(status == TODO)}
    if len(todo) < len(order):
        log.info("resuming an interrupted decode of %s: %d of %d images left", source, len(todo), len(order))
    try:
        _decode_into(images, status, source, todo, "RGB" if channels == 3 else "L", size, skip_bad)
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
        _keep_rows(partial / IMAGES_FILE, images, readable)
    images.flush()
    del images, status
    labels = np.array([_label(chosen[name], classes) for name in order], dtype=np.int64)
    np.save(partial / LABELS_FILE, labels[readable])
    (partial / CLASSES_FILE).write_text(json.dumps(classes))
    (partial / STATUS_FILE).unlink()
    os.replace(partial, folder)
    log.info("decoded %d images from %s in %.1f s", n, source, time.perf_counter() - start)


# each image's state in the partial cache
TODO, DECODED, UNREADABLE, FLAT = 0, 1, 2, 3
IMAGES_FILE, LABELS_FILE, CLASSES_FILE, STATUS_FILE = "images.npy", "labels.npy", "classes.json", "status.npy"
CHUNK = 64  # images per task of the decoding pool
CHUNK_BYTES = 32 * 2**20  # or fewer, where their files are large: the files read ahead stay within 2 x workers x this
POOL_FROM = 512  # fewer images than this decode in this process: starting the pool would cost more


def _open_partial(partial: Path, shape: tuple[int, ...], source: Path) -> tuple[np.memmap, np.memmap]:
    """The partial cache's image array and per-image status, mapped from disk: continued where a decode
    stopped, or new (checking the disk has room)."""
    try:
        images = np.load(partial / IMAGES_FILE, mmap_mode="r+")
        status = np.load(partial / STATUS_FILE, mmap_mode="r+")
        if images.shape == shape and status.shape == shape[:1]:
            for name in (STATUS_FILE, IMAGES_FILE):
                _reserve_blocks(partial / name, source, remove=None)
            return images, status
    except (OSError, ValueError, EOFError):  # none yet, or cut short while it was being created
        pass
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    needed = math.prod(shape)
    free = free_disk_bytes(partial)
    if needed > free:
        shutil.rmtree(partial, ignore_errors=True)
        raise GankitError(
            f"{source}: {shape[0]:,} images of {shape[1]}x{shape[2]}x{shape[3]} take {needed / 2**30:.1f} GiB "
            f"decoded, more than the {free / 2**30:.1f} GiB free in the cache {partial.parent} "
            "(set GANKIT_CACHE_DIR to a larger disk; data.image_size makes them smaller)"
        )
    status = np.lib.format.open_memmap(partial / STATUS_FILE, mode="w+", dtype=np.uint8, shape=shape[:1])
    images = np.lib.format.open_memmap(partial / IMAGES_FILE, mode="w+", dtype=np.uint8, shape=shape)
    for name in (STATUS_FILE, IMAGES_FILE):
        _reserve_blocks(partial / name, source, remove=partial)
    return images, status


def _reserve_blocks(path: Path, source: Path, remove: Path | None) -> None:
    """Allocate the mapped file's disk blocks now: a write through a memory map into a sparse file on a full disk kills
    the process (SIGBUS), where allocating fails with ENOSPC. `remove` goes when there is no room."""
    if not hasattr(os, "posix_fallocate"):  # not on macOS or Windows: the free-space check alone guards them
        return
    fd = os.open(path, os.O_RDWR)
    size = os.fstat(fd).st_size
    try:
        os.posix_fallocate(fd, 0, size)
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            return  # a file system that cannot allocate ahead (EOPNOTSUPP, EINVAL): go on as before
        if remove is not None:
            shutil.rmtree(remove, ignore_errors=True)
        raise GankitError(
            f"{source}: no space left in the cache {path.parent.parent} for its decoded images "
            f"({size / 2**30:.2f} GiB); free some, or set GANKIT_CACHE_DIR to a larger "
            "disk"
        ) from None
    finally:
        os.close(fd)


def free_disk_bytes(path: Path) -> int:
    return shutil.disk_usage(path).free


def _decode_into(
    images: np.ndarray, status: np.ndarray, source: Path, todo: dict[str, int], mode: str, size: int, skip_bad: bool
) -> None:
    """Decode the `todo` images (name -> row) into their rows: files are read here, in the source's order,
    and decoded by a pool of processes, one per core, a chunk at a time."""
    bar = tqdm(
        total=len(status),
        initial=len(status) - len(todo),
        desc=f"decoding {source.name}",
        unit="img",
        disable=None,
        leave=False,
        file=sys.stderr,
    )

    def store(results: list[tuple[int, np.ndarray | None, str]]) -> None:
        for row, array, problem in results:
            if array is None:
                if not skip_bad:
                    raise GankitError(
                        f"cannot read image {source}:{problem} (set data.skip_bad_images=true to skip such files)"
                    )
                status[row] = UNREADABLE
                continue
            images[row] = array
            status[row] = FLAT if array.min() == array.max() else DECODED
        bar.update(len(results))

    chunks = _chunks(_read_files(source, set(todo)), todo)
    workers = decode_workers()
    running: set[Future] = set()
    try:
        if len(todo) < POOL_FROM or workers == 1:
            for chunk in chunks:
                store(_decode_chunk(chunk, mode, size))
            return
        # the pool's bookkeeping runs under deferred(): a signal raised inside it can leave its locks held and the
        # process hanging at exit; between its calls (reading files, storing results) a signal stops the decode. The
        # workers are forked inside deferred() too, so they only note a signal and leave stopping to this process,
        # which shuts them down
        with deferred():
            pool = ProcessPoolExecutor(workers, mp_context=_pool_context())
        try:
            for chunk in chunks:
                with deferred():
                    running.add(pool.submit(_decode_chunk, chunk, mode, size))
                if len(running) >= 2 * workers:  # bounded: the reader never runs far ahead of the decoders
                    with deferred():
                        finished, running = wait(running, return_when=FIRST_COMPLETED)
                    for future in finished:
                        store(future.result())
            for future in list(running):
                with deferred():
                    result = future.result()
                store(result)
                running.discard(future)
        finally:
            with deferred():
                pool.shutdown(wait=True, cancel_futures=True)
    except BaseException:
        # interrupted: keep what the pool finished, so that the next decode does not redo it
        for future in running:
            if future.done() and not future.cancelled() and future.exception() is None:
                with contextlib.suppress(GankitError):
                    store(future.result())
        raise
    finally:
        bar.close()


def decode_workers() -> int:
    """The decoding pool's processes: one per core this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _pool_context() -> multiprocessing.context.BaseContext:
    """fork (quick) where there is one, except once torch.distributed has started threads that a fork would copy."""
    import torch.distributed as dist

    methods = multiprocessing.get_all_start_methods()
    if "fork" in methods and not (dist.is_available() and dist.is_initialized()):
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")


def _chunks(files: Iterator[tuple[str, bytes]], rows: dict[str, int]) -> Iterator[list[tuple[int, str, bytes]]]:
    chunk: list[tuple[int, str, bytes]] = []
    held = 0
    for name, data in files:
        chunk.append((rows[name], name, data))
        held += len(data)
        if len(chunk) == CHUNK or held >= CHUNK_BYTES:
            yield chunk
            chunk, held = [], 0
    if chunk:
        yield chunk


def _decode_chunk(
    chunk: list[tuple[int, str, bytes]], mode: str, size: int
) -> list[tuple[int, np.ndarray | None, str]]:
    """(row, image or None, what went wrong) per file; runs in the pool's processes."""
    results: list[tuple[int, np.ndarray | None, str]] = []
    for row, name, data in chunk:
        try:
            results.append((row, _decode(data, mode, size), ""))
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
            reason = "not an image format Pillow reads" if isinstance(exc, UnidentifiedImageError) else str(exc)[:200]
            results.append((row, None, f"{name}: {reason}"))
    return results


def _keep_rows(path: Path, images: np.ndarray, keep: np.ndarray) -> None:
    """Rewrite the image file with only the `keep` rows, a block at a time (it may not fit in memory)."""
    compact = np.lib.format.open_memmap(
        path.with_name("compact.npy"), mode="w+", dtype=np.uint8, shape=(int(keep.sum()), *images.shape[1:])
    )
    rows = np.flatnonzero(keep)
    for start in range(0, len(rows), 4096):
        block = rows[start : start + 4096]
        compact[start : start + len(block)] = images[block]
    compact.flush()
    del compact
    os.replace(path.with_name("compact.npy"), path)


def _check_sizes(source: Path, sizes: dict[str, int]) -> None:
    """Refuse what would exhaust memory before reading it: too many files, a huge one, an archive bomb."""
    if len(sizes) > MAX_IMAGES:
        raise GankitError(f"{source} holds {len(sizes):,} images; gankit reads at most {MAX_IMAGES:,}")
    name, largest = max(sizes.items(), key=lambda item: item[1])
    if largest > MAX_IMAGE_BYTES:
        raise GankitError(f"{source}:{name} is {largest:,} bytes; an image file may have at most {MAX_IMAGE_BYTES:,}")
    total = sum(sizes.values())
    if is_archive(source) and total > RATIO_FLOOR_BYTES and total > MAX_RATIO * source.stat().st_size:
        raise GankitError(
            f"{source} would unpack to {total:,} bytes, {total / source.stat().st_size:,.0f} times its own "
            f"size; gankit refuses archives that expand more than {MAX_RATIO} times"
        )


def _decode(data: bytes, mode: str, size: int) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as img:
        # a JPEG much larger than `size` is decoded at 1/2, 1/4 or 1/8 of its side (still at least `size`), as
        # Pillow's thumbnails are: a camera's photo then takes a few MB to decode, not hundreds
        img.draft(mode, (size, size))
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
                            raise GankitError(
                                f"{source}:{info.filename} unpacks to more than {MAX_IMAGE_BYTES:,} bytes"
                            )
                        yield info.filename, data
        else:
            with tarfile.open(source, "r:*") as tf:
                for entry in tf:
                    extracted = tf.extractfile(entry) if entry.isfile() and entry.name in names else None
                    if extracted is not None:
                        yield entry.name, extracted.read()
    except (OSError, EOFError, tarfile.TarError, zipfile.BadZipFile) as exc:
        raise GankitError(f"cannot read {source}: {exc}") from None


class NoTestSplit(GankitError):
    """A folder of images with no test/ beside its train/: scoring compares against its training images."""


def _select_split(names: list[str], train: bool, source: Path) -> dict[str, PurePosixPath]:
    """Map each file of the split to its path below the split's root."""
    paths = {n: PurePosixPath(n) for n in names}
    # strip folders every file shares (an archive's top folder), keeping the split folders
    while (
        all(len(p.parts) > 2 for p in paths.values())
        and len({p.parts[0] for p in paths.values()}) == 1
        and next(iter(paths.values())).parts[0] not in ("train", "test")
    ):
        paths = {n: PurePosixPath(*p.parts[1:]) for n, p in paths.items()}
    tops = {p.parts[0] for p in paths.values() if len(p.parts) > 1}
    if "train" in tops:
        split = "train" if train else "test"
        chosen = {n: PurePosixPath(*p.parts[1:]) for n, p in paths.items() if p.parts[0] == split and len(p.parts) > 1}
        if not chosen:
            raise GankitError(f"{source} has no images under {split}/")
        return chosen
    if not train:
        raise NoTestSplit(f"{source} has no test/ folder to hold out")
    return paths


def _label(path: PurePosixPath, classes: list[str]) -> int:
    """An image's class: the index of its top folder among `classes`; 0 in an unlabelled folder (no classes)."""
    return classes.index(path.parts[0]) if classes else 0


def _round_robin(chosen: dict[str, PurePosixPath], classes: list[str]) -> list[str]:
    """The images class by class in turn (each class's first, then each one's second, ...), by name within a class, so
    any first n hold the classes alike; an unlabelled folder's are in name order."""
    taken: Counter[int] = Counter()
    rank = {}
    for name in sorted(chosen):
        label = _label(chosen[name], classes)
        rank[name] = (taken[label], label)
        taken[label] += 1
    return sorted(chosen, key=rank.__getitem__)


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

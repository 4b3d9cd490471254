"""Images decoded by a pool of processes (one per core) into a partial cache of uint8 arrays mapped from disk, each
image's state kept beside them so that an interrupted decode resumes where it stopped."""

from __future__ import annotations

import contextlib
import errno
import io
import logging
import math
import multiprocessing
import os
import shutil
import sys
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError
from tqdm import tqdm

from gankit.data import listing
from gankit.errors import GankitError
from gankit.interrupts import deferred

log = logging.getLogger(__name__)


# each image's state in the partial cache
TODO, DECODED, UNREADABLE, FLAT = 0, 1, 2, 3


IMAGES_FILE, LABELS_FILE, CLASSES_FILE, STATUS_FILE = "images.npy", "labels.npy", "classes.json", "status.npy"
CHUNK = 64  # images per task of the decoding pool
CHUNK_BYTES = 32 * 2**20  # or fewer, where their files are large: the files read ahead stay within 2 x workers x this
POOL_FROM = 512  # fewer images than this decode in this process: starting the pool would cost more


def open_partial(partial: Path, shape: tuple[int, ...], source: Path) -> tuple[np.memmap, np.memmap]:
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


def decode_into(
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

    chunks = _chunks(listing.read_files(source, set(todo)), todo)
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


def keep_rows(path: Path, images: np.ndarray, keep: np.ndarray) -> None:
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

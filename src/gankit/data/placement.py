"""Where a run's training images live: in memory (on the GPU when training there), or read from disk.

`data.in_memory: auto` holds them in memory when they fit the budget and maps them from a file
otherwise; `true` and `false` choose outright. Mapped, each step reads only its batch's rows, so
a data set larger than memory trains, and under torchrun each rank reads only its own shares.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

import numpy as np
import torch

from gankit.config import DataConfig
from gankit.data.imageset import ImageSet
from gankit.data.locate import cache_dir
from gankit.files import atomic_write

log = logging.getLogger(__name__)


def place_images(data: ImageSet, config: DataConfig, device: torch.device, processes_here: int = 1) -> ImageSet:
    """`data` as training will read it: images in memory, or mapped from a file (`ImageSet.mapped`).

    In memory they still go to `device` in `fit`; on the CPU `processes_here` (torchrun's ranks on this
    machine) each hold a copy, so the automatic budget is shared among them (each GPU has its own)."""
    size = data.images.numel()
    each_holds_a_copy = processes_here if device.type == "cpu" else 1  # each GPU has memory of its own
    budget = memory_budget(config.memory_budget_gb, device) // each_holds_a_copy
    keep = config.in_memory == "true" or (config.in_memory == "auto" and size <= budget)
    if keep and data.mapped and device.type == "cpu":
        log.info("reading the %.2f GiB of training images into memory", size / 2**30)
        return ImageSet(data.images.clone(), data.labels, data.classes, data.source)  # off the file, once
    if keep and data.mapped:  # fit copies them from the file to the GPU
        return ImageSet(data.images, data.labels, data.classes, data.source)
    if not keep and not data.mapped:
        data = map_from_disk(data)
    if not keep:
        why = (
            "data.in_memory false" if config.in_memory == "false" else f"more than the {budget / 2**30:.2f} GiB budget"
        )
        log.info("training images (%.2f GiB, %s) are read from disk as batches need them", size / 2**30, why)
    return data


def memory_budget(gigabytes: float, device: torch.device) -> int:
    """Bytes `data.in_memory auto` may hold: the given GiB, else half the machine's memory (a quarter of the GPU's)."""
    if gigabytes:
        return int(gigabytes * 2**30)
    return device_memory(device) // (4 if device.type == "cuda" else 2)


def device_memory(device: torch.device) -> int:
    """All the memory of `device`, in bytes: the GPU's, or the machine's (taken as 8 GiB where it cannot be read)."""
    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).total_memory
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):  # no sysconf (Windows)
        return 8 * 2**30


def map_from_disk(data: ImageSet) -> ImageSet:
    """The in-memory images written once to the cache (keyed by their bytes) and mapped back from there."""
    array = data.images.contiguous().numpy()
    digest = hashlib.sha256(f"{array.shape}".encode())
    digest.update(array.data)
    key = digest.hexdigest()[:24]
    path = cache_dir() / "mapped" / f"{key}.npy"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)

        def write(tmp: Path) -> None:
            with open(tmp, "wb") as f:  # a file object, so numpy adds no ".npy" to the temporary name
                np.save(f, array)

        atomic_write(path, write)
    mapped = torch.from_numpy(np.load(path, mmap_mode="c"))
    return ImageSet(mapped, data.labels, data.classes, data.source, mapped=True)

"""Keep freed memory in the process heap, so each training step reuses the last step's pages.

A CPU training step allocates and frees the same few megabytes of tensors every step. With
glibc's default thresholds some of them are mapped from the kernel on allocation and returned
on free, and the kernel zeroes fresh pages each time: hundreds of page faults per step of the
seed GAN. Raising the thresholds lets malloc hand the same pages back instead.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

_M_TRIM_THRESHOLD = -1  # mallopt parameters, from glibc's malloc.h
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 * 2**20  # glibc's largest allowed value; blocks below it come from the heap
TRIM_THRESHOLD = 1 * 2**30  # free memory at the heap's top kept rather than returned (1 GiB)


@functools.cache
def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return libc if libc is not None and hasattr(libc, "mallopt") else None


def reuse_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds for this process; False where there is no glibc malloc."""
    libc = _libc()
    if libc is None:
        return False
    return bool(libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))

"""Dropout with nn.Dropout's maths and a cheaper random mask on the CPU."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

# SplitMix64's increment and multipliers (Steele, Lea and Flood 2014)
_GAMMA, _MIX1, _MIX2 = np.uint64(0x9E3779B97F4A7C15), np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)


def mask_key() -> int:
    """One draw from torch's CPU RNG that keys a mask: `torch.manual_seed` and checkpointed RNG states govern it."""
    return int(torch.empty((), dtype=torch.int64).random_())


def random_lanes(key: int, count: int) -> np.ndarray:
    """`count` uniform 16-bit numbers: lane i % 4 of word i // 4 of the SplitMix64 sequence seeded with `key`."""
    z = np.uint64(key) + np.arange(1, (count + 3) // 4 + 1, dtype=np.uint64) * _GAMMA  # wraps modulo 2^64
    z ^= z >> np.uint64(30)
    z *= _MIX1
    z ^= z >> np.uint64(27)
    z *= _MIX2
    z ^= z >> np.uint64(31)
    return z.astype("<u8", copy=False).view("<u2")[:count]  # lane k holds bits 16k to 16k + 15


def drop_threshold(p: float) -> int:
    """An element is dropped when its 16-bit number is below this: p rounded to 2^-16 (0.3 -> 0.3000031)."""
    return round(p * 65536)


@torch.compiler.disable  # numpy's uint64 arithmetic is not traceable: under torch.compile the mask is made eagerly
def dropout_mask(
    shape: torch.Size | tuple[int, ...], p: float, dtype: torch.dtype, key: int | None = None
) -> torch.Tensor:
    """A mask of `shape`: 1/(1-p) with probability 1 - p, else 0, independently per element.

    torch's CPU `bernoulli_` draws one Mersenne-twister number and compares a float per element;
    here each 64-bit word gives four elements their 16-bit numbers.
    """
    n = math.prod(shape)
    keep = random_lanes(mask_key() if key is None else key, n) >= drop_threshold(p)
    # through uint8: torch converts bool to float element by element, uint8 with vector instructions
    return torch.from_numpy(keep.view(np.uint8)).view(shape).to(dtype).mul_(1 / (1 - p))


class Dropout(nn.Dropout):
    """nn.Dropout (zero with probability p, scale the rest by 1/(1-p) while training).

    On the CPU the mask comes from `dropout_mask` (bench/speedups.py measures the gain); elsewhere
    (a GPU's RNG is already fast) and in eval mode this is nn.Dropout itself.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and 0 < self.p < 1 and x.device.type == "cpu"):
            return F.dropout(x, self.p, self.training, self.inplace)
        return x * dropout_mask(x.shape, self.p, x.dtype)

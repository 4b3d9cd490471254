"""Dropout with nn.Dropout's maths and a cheaper random mask on the CPU."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F


def random_words(count: int) -> np.ndarray:
    """`count` uniformly random 64-bit words, keyed by one draw from torch's CPU RNG.

    torch's CPU `random_` costs about twice as much per word as numpy's SFC64 generator; keying
    SFC64 from torch's RNG keeps `torch.manual_seed` and the checkpointed RNG state in charge.
    """
    key = int(torch.empty((), dtype=torch.int64).random_())
    return np.random.SFC64(key).random_raw(count)


def dropout_mask(shape: torch.Size, p: float, dtype: torch.dtype) -> torch.Tensor:
    """A mask of `shape`: 1/(1-p) with probability 1 - p, else 0, independently per element.

    torch's CPU `bernoulli_` draws one Mersenne-twister number and compares a float per element;
    here each 64-bit random word is cut into four 16-bit uniforms, and an element is dropped when
    its uniform falls below p rounded to a multiple of 2^-16 (0.3 becomes 0.3000031).
    """
    n = math.prod(shape)
    # compared in numpy, which vectorises this int16 comparison (torch's CPU kernel was several times slower)
    keep = random_words((n + 3) // 4).view(np.int16)[:n] >= round(p * 65536) - 32768  # int16: -32768..32767
    # through uint8: torch converts bool to float element by element, uint8 with vector instructions
    return torch.from_numpy(keep.view(np.uint8)).view(shape).to(dtype).mul_(1 / (1 - p))


class Dropout(nn.Dropout):
    """nn.Dropout (zero with probability p, scale the rest by 1/(1-p) while training).

    On the CPU the mask comes from `dropout_mask` (the seed GAN's step 1.2x-1.3x faster in fp32,
    1.3x-1.55x in bf16: bench/speedups.py); elsewhere (a GPU's RNG is already fast) and in eval mode this is
    nn.Dropout itself.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p in (0, 1) or x.device.type != "cpu":
            return F.dropout(x, self.p, self.training, self.inplace)
        return x * dropout_mask(x.shape, self.p, x.dtype)

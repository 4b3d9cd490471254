"""Dropout with nn.Dropout's maths and a cheaper random mask on the CPU, fused with the LeakyReLU before it."""

from __future__ import annotations

import functools
import math

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from gankit.models import native

# SplitMix64's increment and multipliers (Steele, Lea and Flood 2014), as in leaky_dropout.c
_GAMMA, _MIX1, _MIX2 = np.uint64(0x9E3779B97F4A7C15), np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)


def mask_key() -> int:
    """One draw from torch's CPU RNG that keys a mask: `torch.manual_seed` and checkpointed RNG states govern it."""
    return int(torch.empty((), dtype=torch.int64).random_())


def random_lanes(key: int, count: int) -> np.ndarray:
    """`count` uniform 16-bit numbers: lane i % 4 of word i // 4 of the SplitMix64 sequence seeded with `key`.

    A counter-based sequence: any word can be computed on its own, so the C kernel makes the same
    numbers in any order and on any number of threads.
    """
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


@functools.cache  # asked on every fused call: computed once per (p, dtype)
def mask_value(p: float, dtype: torch.dtype) -> float:
    """1/(1-p) as a mask of `dtype` holds it (rounded to bfloat16 in bfloat16)."""
    return torch.ones((), dtype=dtype).mul_(1 / (1 - p)).item()


def dropout_mask(shape: torch.Size | tuple[int, ...], p: float, dtype: torch.dtype, key: int | None = None) -> torch.Tensor:
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

    On the CPU the mask comes from `dropout_mask`, and `run_fused` computes a LeakyReLU followed by
    this layer in one pass (bench/speedups.py); elsewhere (a GPU's RNG is already fast) and in eval
    mode this is nn.Dropout itself.
    """

    def masks_on(self, x: torch.Tensor) -> bool:
        """Whether this layer applies gankit's mask to `x` (rather than being nn.Dropout)."""
        return self.training and 0 < self.p < 1 and x.device.type == "cpu"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.masks_on(x):
            return F.dropout(x, self.p, self.training, self.inplace)
        return x * dropout_mask(x.shape, self.p, x.dtype)


def run_fused(layers: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    """`layers(x)`, with each LeakyReLU that a masking gankit Dropout follows run together with it.

    Module hooks on the fused pair do not fire; the values and gradients are those of the two layers.
    """
    modules = list(layers)
    i = 0
    while i < len(modules):
        layer, following = modules[i], modules[i + 1] if i + 1 < len(modules) else None
        if isinstance(layer, nn.LeakyReLU) and isinstance(following, Dropout) and following.masks_on(x):
            x = leaky_relu_dropout(x, layer.negative_slope, following.p)
            i += 2
        else:
            x = layer(x)
            i += 1
    return x


def leaky_relu_dropout(x: torch.Tensor, negative_slope: float, p: float, key: int | None = None) -> torch.Tensor:
    """`leaky_relu(x) * dropout_mask(...)` on a CPU tensor, in one pass each way where the C kernel is built.

    Both paths give the same bits: the kernel rounds as torch's two ops do and draws the same mask.
    """
    key = mask_key() if key is None else key
    if native.kernels() is None or x.dtype not in _KERNEL_DTYPES:
        return F.leaky_relu(x, negative_slope) * dropout_mask(x.shape, p, x.dtype, key)
    return _FusedLeakyReLUDropout.apply(x, negative_slope, p, key)


_KERNEL_DTYPES = {torch.float32: "f32", torch.bfloat16: "bf16"}


class _FusedLeakyReLUDropout(torch.autograd.Function):
    """Saves only x and the mask's key: the backward pass makes the mask again, which is cheaper than storing it."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, negative_slope: float, p: float, key: int) -> torch.Tensor:
        x = x.contiguous()
        ctx.save_for_backward(x)
        ctx.arguments = (x.numel(), negative_slope, mask_value(p, x.dtype), drop_threshold(p), key)
        y = torch.empty_like(x)
        _kernel("forward", x.dtype)(x.data_ptr(), y.data_ptr(), *ctx.arguments)
        return y

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, dy: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        (x,) = ctx.saved_tensors
        dy = dy.to(x.dtype).contiguous()
        dx = torch.empty_like(x)
        _kernel("backward", x.dtype)(x.data_ptr(), dy.data_ptr(), dx.data_ptr(), *ctx.arguments)
        return dx, None, None, None


def _kernel(direction: str, dtype: torch.dtype):
    return getattr(native.kernels(), f"leaky_dropout_{direction}_{_KERNEL_DTYPES[dtype]}")

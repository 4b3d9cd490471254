"""nn.Linear for CPU bf16 training: weights cast once per update, narrow layers kept in float32.

Under bf16 autocast every forward casts each float32 weight to bf16 again. In a GAN step D's
weights serve two forwards between two updates (G's step, then the next D step), and a cast of
a large weight costs a quarter to a half of its product on this kind of CPU. A `WeightCasts`
that the training step opens around its forwards keeps one bf16 copy per weight until the step
says the weight changed (or its version counter moves: `load_state_dict`, any in-place op that
autograd sees). Layers with fewer than `NARROW` inputs or outputs (the seed GAN's 100->256 and
256->1) run in float32 under CPU bf16 autocast: there the bf16 products were slower, and D's
logit keeps its precision.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator

import torch
from torch import nn
from torch.nn import functional as F

NARROW = 128

_ACTIVE: contextvars.ContextVar[WeightCasts | None] = contextvars.ContextVar("gankit_weight_casts", default=None)


def _cpu_bf16_autocast(x: torch.Tensor) -> bool:
    return (x.device.type == "cpu" and torch.is_autocast_enabled("cpu")
            and torch.get_autocast_dtype("cpu") == torch.bfloat16)


class WeightCasts:
    """bf16 copies of Linear weights, reused by every forward inside `active()` until `forget`."""

    def __init__(self) -> None:
        self._copies: dict[nn.Module, tuple[tuple[int, ...], torch.Tensor, torch.Tensor | None]] = {}

    @contextlib.contextmanager
    def active(self) -> Iterator[None]:
        token = _ACTIVE.set(self)
        try:
            yield
        finally:
            _ACTIVE.reset(token)

    def forget(self, module: nn.Module) -> None:
        """Drop the copies of `module`'s layers: call after changing its weights behind autograd's back
        (a fused optimiser step does not move the version counters)."""
        for layer in module.modules():
            self._copies.pop(layer, None)

    def get(self, layer: nn.Linear) -> tuple[torch.Tensor, torch.Tensor | None]:
        params = [p for p in (layer.weight, layer.bias) if p is not None]
        key = tuple(v for p in params for v in (p.data_ptr(), p._version))
        entry = self._copies.get(layer)
        if entry is None or entry[0] != key:
            bias = None if layer.bias is None else layer.bias.detach().to(torch.bfloat16)
            entry = (key, layer.weight.detach().to(torch.bfloat16), bias)
            self._copies[layer] = entry
        return entry[1], entry[2]


class _CastLinear(torch.autograd.Function):
    """F.linear on given bf16 copies, its gradients sent to the float32 weight and bias.

    The products are the ones autocast's linear and its backward make (the weight's gradient as
    grad^T @ x, then cast to float32), so the results are the same bits.
    """

    @staticmethod
    def forward(ctx, x16: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,  # type: ignore[override]
                weight16: torch.Tensor, bias16: torch.Tensor | None) -> torch.Tensor:
        ctx.save_for_backward(x16, weight16)
        return F.linear(x16, weight16, bias16)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        x16, weight16 = ctx.saved_tensors
        grad_x = grad_weight = grad_bias = None
        grad2d, x2d = grad.reshape(-1, grad.shape[-1]), x16.reshape(-1, x16.shape[-1])
        if ctx.needs_input_grad[0]:
            grad_x = grad.matmul(weight16)
        if ctx.needs_input_grad[1]:
            grad_weight = grad2d.t().mm(x2d).float()
        if ctx.needs_input_grad[2]:
            grad_bias = grad2d.sum(0).float()
        return grad_x, grad_weight, grad_bias, None, None


class Linear(nn.Linear):
    """nn.Linear; under CPU bf16 autocast, narrow layers in float32 and `WeightCasts` copies when active."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not _cpu_bf16_autocast(x):
            return super().forward(x)
        if min(self.in_features, self.out_features) < NARROW:
            with torch.autocast("cpu", enabled=False):
                return F.linear(x.float(), self.weight, self.bias)
        casts = _ACTIVE.get()
        if casts is None:
            return super().forward(x)  # autocast casts the weight itself
        weight16, bias16 = casts.get(self)
        return _CastLinear.apply(x.to(torch.bfloat16), self.weight, self.bias, weight16, bias16)

"""Device and precision choice: a GPU where asked for (or found, with `auto`), the CPU otherwise."""

from __future__ import annotations

import contextlib
import logging

import torch

from gankit.errors import GankitError

log = logging.getLogger(__name__)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise GankitError("train.device cuda: no CUDA GPU is available here (use cpu or auto)", option="train.device")
    return torch.device(name)


def cpu_supports_bf16() -> bool:
    """Whether oneDNN has bf16 kernels for this CPU at all: native (AVX-512 BF16, AMX) or emulated (AVX-512 alone)."""
    return torch.ops.mkldnn._is_mkldnn_bf16_supported()


def cpu_has_native_bf16() -> bool:
    """Whether the CPU does bf16 arithmetic itself (AVX-512 BF16 or AMX). With AVX-512 alone oneDNN emulates it, and
    bf16 trains slower than fp32 (fast-mnist: 1,236 against 3,251 img/s on such a 2-core Xeon)."""
    checks = [getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    if any(check is None for check in checks):  # a torch that cannot tell: trust oneDNN
        return cpu_supports_bf16()
    return any(check() for check in checks if check is not None)  # (the `is not None` for the type checker)


def check_precision(precision: str, device: torch.device) -> None:
    if precision != "bf16":
        return
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise GankitError("train.precision bf16: this GPU has no bf16 support (use fp32)", option="train.precision")
    if device.type == "cpu" and not cpu_supports_bf16():
        raise GankitError("train.precision bf16: this CPU has no bf16 support (use fp32)", option="train.precision")
    if device.type == "cpu" and not cpu_has_native_bf16():
        log.warning(
            "bf16 on this CPU is emulated (it has no AVX-512 BF16 or AMX), so it trains slower than fp32: "
            "--precision fp32 is faster here"
        )


def autocast(precision: str, device: torch.device) -> contextlib.AbstractContextManager:
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()

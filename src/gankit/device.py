"""Device and precision choice: a GPU where asked for (or found, with `auto`), the CPU otherwise."""

from __future__ import annotations

import contextlib

import torch

from gankit.errors import GankitError


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise GankitError("train.device cuda: no CUDA GPU is available here (use cpu or auto)", option="train.device")
    return torch.device(name)


def cpu_supports_bf16() -> bool:
    """Whether oneDNN has bf16 kernels for this CPU (AVX-512 bf16 or AMX); elsewhere bf16 is emulated, slowly."""
    return torch.ops.mkldnn._is_mkldnn_bf16_supported()


def check_precision(precision: str, device: torch.device) -> None:
    if precision != "bf16":
        return
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise GankitError("train.precision bf16: this GPU has no bf16 support (use fp32)", option="train.precision")
    if device.type == "cpu" and not cpu_supports_bf16():
        raise GankitError("train.precision bf16: this CPU has no bf16 support (use fp32)", option="train.precision")


def autocast(precision: str, device: torch.device) -> contextlib.AbstractContextManager:
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()

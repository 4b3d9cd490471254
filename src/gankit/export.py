"""Export of a generator alone (TorchScript or ONNX), with a JSON file describing its input and output.

Both formats trace `G.sample`, so an export computes what sampling computes: eval mode, G's range.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from gankit.errors import GankitError
from gankit.files import atomic_write_text, temporary_beside
from gankit.models import Generator
from gankit.registry import Registry


@dataclass(frozen=True)
class ExportFormat:
    write: Callable[[nn.Module, tuple[torch.Tensor, ...], Path], None]  # (sampler, example inputs, path)
    suffix: str  # the file name's ending


FORMATS: Registry[ExportFormat] = Registry("export format")


class Sampler(nn.Module):
    """G.sample as a module of the noise and the class labels (int64, one per row): what an export computes."""

    def __init__(self, G: Generator):
        super().__init__()
        self.G = G

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.G.sample(z.shape[0], noise=z, labels=labels)


class UnconditionalSampler(Sampler):
    """An unconditional G's export takes the noise alone (its labels are all 0)."""

    def forward(self, z: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return super().forward(z, torch.zeros(z.shape[0], dtype=torch.long, device=z.device))


def export_generator(G: Generator, path: Path, fmt: str, classes: list[str] | None = None) -> Path:
    """Write G to `path` (atomically) and a description beside it (`path` + '.json'); returns the JSON path.

    A conditional G takes (z, labels); `classes` names its labels in the description."""
    export_format = FORMATS[fmt]
    G = G.eval()
    z = G.sample_noise(2, generator=torch.Generator().manual_seed(0), device="cpu")
    # an unconditional export keeps the noise as its one input, as exports always had; a conditional one adds labels
    inputs: str | list[str] = "z"
    example: tuple[torch.Tensor, ...] = (z,)
    sampler: Sampler = UnconditionalSampler(G)
    labels: dict[str, object] = {}
    if G.num_classes:
        inputs, example, sampler = ["z", "labels"], (z, torch.tensor([0, G.num_classes - 1])), Sampler(G)
        labels = {
            "labels": "int64 class indices, one per row of z",
            "num_classes": G.num_classes,
            "classes": list(classes or range(G.num_classes)),
        }
    tmp = temporary_beside(path)
    try:
        export_format.write(sampler.eval(), example, tmp)
        os.replace(tmp, path)
    except OSError as exc:
        raise GankitError(f"cannot write {path}: {exc.strerror or exc}") from None
    finally:
        tmp.unlink(missing_ok=True)
    description = path.with_name(path.name + ".json")
    atomic_write_text(
        description,
        json.dumps(
            {
                "format": fmt,
                "input": inputs,
                "noise_dim": G.noise_dim,
                "noise": G.noise,
                **labels,
                "output": "images",
                "image_shape": list(G.image_shape),
                "value_range": list(G.value_range),
            },
            indent=2,
        )
        + "\n",
        durable=False,
    )
    return description


def _torchscript(sampler: nn.Module, example: tuple[torch.Tensor, ...], path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracing warns that TorchScript is in maintenance
        traced = torch.jit.trace(sampler, example)
    buffer = io.BytesIO()
    torch.jit.save(traced, buffer)
    path.write_bytes(
        buffer.getvalue()
    )  # written by Python: a full disk is an OSError here, where torch's writer aborts


def _onnx(sampler: nn.Module, example: tuple[torch.Tensor, ...], path: Path) -> None:
    try:
        import onnx  # noqa: F401  (torch.onnx needs it)
    except ImportError:
        raise GankitError("ONNX export needs the onnx package: pip install 'gankit[onnx]'") from None
    batch = torch.export.Dim("batch", min=1)
    names = ["z", "labels"][: len(example)]
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            sampler,
            example,
            input_names=names,
            output_names=["images"],
            dynamic_shapes={name: {0: batch} for name in names},
            dynamo=True,
        )
    assert program is not None  # the dynamo exporter always returns its program
    program.save(str(path))


FORMATS.register("torchscript")(ExportFormat(_torchscript, ".torchscript.pt"))
FORMATS.register("onnx")(ExportFormat(_onnx, ".onnx"))

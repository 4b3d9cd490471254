"""Export of a generator alone: TorchScript or ONNX, with a JSON file describing its input and output."""

from __future__ import annotations

import contextlib
import io
import json
import os
import warnings
from pathlib import Path

import torch

from gankit.errors import GankitError
from gankit.models import Generator

FORMATS = ("torchscript", "onnx")


def export_generator(G: Generator, path: Path, fmt: str) -> Path:
    """Write G to `path` (atomically) and a description beside it (`path` + '.json'); returns the JSON path."""
    if fmt not in FORMATS:
        raise GankitError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    G = G.eval()
    example = G.sample_noise(2, generator=torch.Generator().manual_seed(0), device="cpu")
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        if fmt == "torchscript":
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # tracing warns that TorchScript is in maintenance
                torch.jit.save(torch.jit.trace(G, example), str(tmp))
        else:
            _export_onnx(G, example, tmp)
        os.replace(tmp, path)
    except OSError as exc:
        raise GankitError(f"cannot write {path}: {exc.strerror or exc}") from None
    finally:
        Path(tmp).unlink(missing_ok=True)
    description = path.with_name(path.name + ".json")
    text = json.dumps({
        "format": fmt, "input": "z", "noise_dim": G.noise_dim, "noise": G.noise,
        "output": "images", "image_shape": list(G.image_shape), "value_range": list(G.value_range),
    }, indent=2)
    try:
        description.write_text(text + "\n")
    except OSError as exc:
        raise GankitError(f"cannot write {description}: {exc.strerror}") from None
    return description


def _export_onnx(G: Generator, example: torch.Tensor, path: Path) -> None:
    try:
        import onnx  # noqa: F401  (torch.onnx needs it)
    except ImportError:
        raise GankitError("ONNX export needs the onnx package: pip install 'gankit[onnx]'") from None
    batch = torch.export.Dim("batch", min=1)
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(G, (example,), input_names=["z"], output_names=["images"],
                                    dynamic_shapes={"z": {0: batch}}, dynamo=True)
    program.save(str(path))

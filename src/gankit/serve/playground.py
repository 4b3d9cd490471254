"""What the serve page asks of a trained generator, checked and capped: sample grids, latent walks,
the run's facts and its ONNX export. No web code here, so the library and the tests can call it."""

from __future__ import annotations

import io
import math
import tempfile
import threading
from pathlib import Path
from typing import Any

import torch

from gankit.errors import GankitError
from gankit.metrics import quality_keys
from gankit.plots import grid_image
from gankit.records import is_number
from gankit.run import Run
from gankit.sampling import check_output_size, sample_images, slerp

MAX_SAMPLES = 256  # images in one grid
MAX_STEPS = 64  # frames in one walk
MAX_SEED = 2**32 - 1
MAX_PIXELS = 64 * 2**20  # uint8 values one request may generate (samples or frames x C x H x W)


class Playground:
    """A run's generator, loaded once; every request is validated here and answered as PNG bytes.

    torch runs one request at a time (a lock): the server's threads would only contend for the same cores.
    """

    def __init__(self, run: Run, checkpoint: Path | str | None = None, *, raw: bool = False):
        self.run, self.raw = run, raw
        self.G = run.generator(None if checkpoint is None else run.checkpoint(checkpoint), raw=raw)
        self.lock = threading.Lock()
        self.export_lock = threading.Lock()  # an export takes seconds: samples keep coming meanwhile
        self._onnx: bytes | None = None

    def info(self) -> dict[str, Any]:
        """The run's name, checkpoint, epoch, classes, latest scores and the request limits."""
        latest: dict[str, dict[str, float]] = {}
        quality = quality_keys()
        for record in self.run.metrics():
            latest.update(
                {
                    key: {"value": value, "epoch": record["epoch"]}
                    for key, value in record.items()
                    if key in quality and is_number(value) and math.isfinite(value)
                }
            )
        return {
            "name": self.run.config.name,
            "description": self.run.config.description,
            "run": self.run.path.name,
            "checkpoint": self.G.checkpoint.name,
            "epoch": self.G.epoch,
            "classes": self.run.classes,
            "image_shape": list(self.G.image_shape),
            "scores": latest,
            "limits": {"n": MAX_SAMPLES, "steps": MAX_STEPS, "seed": MAX_SEED},
        }

    def samples(self, seed: Any, n: Any, label: Any = None) -> bytes:
        """A PNG grid of n samples of noise seed `seed` (all of class `label` where given)."""
        seed, n = _whole(seed, "seed", 0, MAX_SEED), _whole(n, "n", 1, MAX_SAMPLES)
        check_output_size(self.G, n, f"n {n}", MAX_PIXELS)
        index = self._label(label)
        with self.lock:
            images = sample_images(self.G, n, seed=seed, label=index)
        return _png(images)

    def walk(self, start: Any, end: Any, steps: Any, label: Any = None) -> list[bytes]:
        """PNG frames of a spherical walk from seed `start`'s single sample to seed `end`'s: the first and last
        frames are `samples(start, 1)` and `samples(end, 1)`. A conditional walk stays in one class: `label`, else
        the class seed `start` draws (so the last frame is `samples(end, 1)` only when seed `end` draws it too)."""
        start, end = _whole(start, "from", 0, MAX_SEED), _whole(end, "to", 0, MAX_SEED)
        steps = _whole(steps, "steps", 2, MAX_STEPS)
        check_output_size(self.G, steps, f"steps {steps}", MAX_PIXELS)
        index = self._label(label)
        # each end drawn as `samples` draws a single image: its noise, then its class
        gen = torch.Generator().manual_seed(start)
        first = self.G.sample_noise(1, generator=gen, device="cpu")
        row = self.G.sample_labels(1, generator=gen, device="cpu") if index is None else torch.tensor([index])
        last = self.G.sample_noise(1, generator=torch.Generator().manual_seed(end), device="cpu")
        noise = slerp(first, last, torch.linspace(0, 1, steps))[0]  # (steps, noise_dim)
        labels = row.repeat(steps)
        with self.lock:
            frames = sample_images(self.G, noise=noise, labels=labels)
        return [_png(frame[None]) for frame in frames]

    def onnx(self) -> bytes:
        """The generator as ONNX (exported once, through a temporary folder that is removed at once)."""
        with self.export_lock:
            if self._onnx is None:
                with tempfile.TemporaryDirectory(prefix="gankit-serve-") as folder:
                    out, _ = self.run.export(
                        "onnx", Path(folder) / "generator.onnx", checkpoint=self.G.checkpoint, raw=self.raw
                    )
                    self._onnx = out.read_bytes()
            return self._onnx

    def _label(self, label: Any) -> int | None:
        if label is None or str(label).strip() in ("", "any"):
            return None
        return self.run.class_index(str(label))


def _whole(value: Any, name: str, low: int, high: int) -> int:
    try:
        number = int(str(value).strip())
    except ValueError:
        raise GankitError(f"{name} must be a whole number from {low} to {high}, got {str(value)[:40]!r}") from None
    if not low <= number <= high:
        raise GankitError(f"{name} must be a whole number from {low} to {high}, got {number}")
    return number


def _png(images: torch.Tensor) -> bytes:
    buffer = io.BytesIO()
    grid_image(images).save(buffer, format="PNG")
    return buffer.getvalue()

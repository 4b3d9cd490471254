"""TensorBoard output of a run: every number of metrics.jsonl as a scalar, and the sample grids."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from gankit.errors import GankitError
from gankit.metrics import quality_keys
from gankit.records import is_number


def check_available() -> None:
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        raise GankitError(
            "output.tensorboard needs the tensorboard package: pip install 'gankit[tensorboard]'",
            option="output.tensorboard",
        ) from None


class TensorBoardLog:
    """Writes RUN/tensorboard/; view it with `tensorboard --logdir RUN/tensorboard`."""

    def __init__(self, folder: Path):
        check_available()
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(str(folder))

    def epoch(self, record: dict[str, Any], grid: torch.Tensor | None) -> None:
        """Scalars grouped as metrics/… (quality) and train/… (the step's stats, speed); the grid as an image."""
        step = record["epoch"]
        quality = quality_keys()
        for key, value in record.items():
            if key != "epoch" and is_number(value):
                self.writer.add_scalar(f"{'metrics' if key in quality else 'train'}/{key}", value, step)
        if grid is not None:
            self.writer.add_images("samples", grid, step, dataformats="NCHW")
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()

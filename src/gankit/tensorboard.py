"""TensorBoard output of a run: every number of metrics.jsonl as a scalar, and the sample grids."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from gankit.errors import GankitError


def check_available() -> None:
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        raise GankitError("--tensorboard needs the tensorboard package: pip install 'gankit[tensorboard]'") from None


class TensorBoardLog:
    """Writes RUN/tensorboard/; view it with `tensorboard --logdir RUN/tensorboard`."""

    def __init__(self, folder: Path):
        check_available()
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(str(folder))

    def epoch(self, record: dict[str, Any], grid: torch.Tensor | None) -> None:
        """Scalars grouped as train/… (losses, accuracies, speed) and metrics/… (quality); the grid as an image."""
        step = record["epoch"]
        for key, value in record.items():
            if key != "epoch" and isinstance(value, (int, float)):
                group = "train" if key in ("d_loss", "g_loss", "d_acc_real", "d_acc_fake", "images_per_s",
                                           "epoch_seconds", "elapsed_seconds", "peak_gpu_mib") else "metrics"
                self.writer.add_scalar(f"{group}/{key}", value, step)
        if grid is not None:
            self.writer.add_images("samples", grid, step, dataformats="NCHW")
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()

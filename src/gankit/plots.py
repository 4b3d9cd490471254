"""Pictures of a run: sample grids and the loss / D-accuracy curves."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display needed
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402
from torchvision.utils import make_grid  # noqa: E402

from gankit.errors import GankitError  # noqa: E402


def save_grid(images: torch.Tensor, path: Path) -> None:
    """Write uint8 images (N, C, H, W) as one square-ish PNG grid, atomically."""
    nrow = math.ceil(math.sqrt(images.shape[0]))
    grid = make_grid(images.cpu(), nrow=nrow, padding=2, pad_value=255)  # (C, H', W'), grey -> 3 channels
    array = grid.permute(1, 2, 0).numpy()
    _save_atomic(path, lambda tmp: Image.fromarray(array).save(tmp, format="PNG"))


def plot_history(records: list[dict[str, Any]], path: Path) -> None:
    """G and D loss and D's accuracy on real and generated images, per epoch."""
    epochs = [r["epoch"] for r in records]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4))
    ax_loss.plot(epochs, [r["g_loss"] for r in records], marker=".", label="G loss")
    ax_loss.plot(epochs, [r["d_loss"] for r in records], marker=".", label="D loss")
    ax_loss.set(xlabel="epoch", ylabel="mean loss", title="Losses")
    ax_acc.plot(epochs, [r["d_acc_real"] for r in records], marker=".", label="D accuracy, real")
    ax_acc.plot(epochs, [r["d_acc_fake"] for r in records], marker=".", label="D accuracy, generated")
    ax_acc.axhline(0.5, color="grey", linestyle=":", linewidth=1)
    ax_acc.set(xlabel="epoch", ylabel="accuracy", ylim=(-0.02, 1.02), title="Discriminator accuracy")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    try:
        _save_atomic(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100))
    finally:
        plt.close(fig)


def _save_atomic(path: Path, write) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        write(tmp)
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise GankitError(f"cannot write {path}: {exc.strerror or exc}") from None

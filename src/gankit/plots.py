"""Pictures of a run: sample grids and the loss / D-accuracy curves."""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display needed
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402
from torchvision.utils import make_grid  # noqa: E402

from gankit.files import atomic_write  # noqa: E402


def grid_image(images: torch.Tensor) -> Image.Image:
    """uint8 images (N, C, H, W) as one square-ish RGB grid."""
    nrow = math.ceil(math.sqrt(images.shape[0]))
    grid = make_grid(images.cpu(), nrow=nrow, padding=2, pad_value=255)  # (C, H', W'), grey -> 3 channels
    return Image.fromarray(grid.permute(1, 2, 0).numpy())


def save_grid(images: torch.Tensor, path: Path) -> None:
    """Write uint8 images (N, C, H, W) as one PNG grid, atomically."""
    image = grid_image(images)
    atomic_write(path, lambda tmp: image.save(tmp, format="PNG"))


TRAINING_KEYS = ("epoch", "d_loss", "g_loss", "d_acc_real", "d_acc_fake", "images_per_s", "epoch_seconds",
                 "elapsed_seconds", "peak_gpu_mib")


METRIC_PANELS = (  # quality metrics on shared axes only where they share a scale
    ("FID", ("fid",)),
    ("KID", ("kid_mean",)),
    ("Precision, recall, density, coverage", ("precision", "recall", "density", "coverage")),
    ("Inception Score (classifier)", ("is_mean",)),
    ("Classes covered", ("classes_covered",)),
)


def history_figure(records: list[dict[str, Any]]) -> plt.Figure:
    """G and D loss, D's accuracy on real and generated images, and any quality metrics, per epoch."""
    panels = [(title, keys) for title, keys in METRIC_PANELS if any(k in r for r in records for k in keys)]
    columns = min(3, 2 + len(panels))
    rows = -(-(2 + len(panels)) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(5.5 * columns, 4 * rows), squeeze=False)
    axes = axes.ravel()
    ax_loss, ax_acc = axes[0], axes[1]
    epochs = [r["epoch"] for r in records]
    ax_loss.plot(epochs, [r["g_loss"] for r in records], marker=".", label="G loss")
    ax_loss.plot(epochs, [r["d_loss"] for r in records], marker=".", label="D loss")
    ax_loss.set(xlabel="epoch", ylabel="mean loss", title="Losses")
    ax_acc.plot(epochs, [r["d_acc_real"] for r in records], marker=".", label="D accuracy, real")
    ax_acc.plot(epochs, [r["d_acc_fake"] for r in records], marker=".", label="D accuracy, generated")
    ax_acc.axhline(0.5, color="grey", linestyle=":", linewidth=1)
    ax_acc.set(xlabel="epoch", ylabel="accuracy", ylim=(-0.02, 1.02), title="Discriminator accuracy")
    for ax, (title, keys) in zip(axes[2:], panels):
        for key in keys:
            points = [(r["epoch"], r[key]) for r in records if key in r]
            if points:
                ax.plot(*zip(*points), marker="o", label=key)
        ax.set(xlabel="epoch", title=title)
    for ax in axes[2 + len(panels):]:
        ax.set_visible(False)
    for ax in axes[:2 + len(panels)]:
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    return fig


def plot_history(records: list[dict[str, Any]], path: Path) -> None:
    """The curves of `history_figure` as a PNG, rewritten atomically."""
    fig = history_figure(records)
    try:
        atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100))
    finally:
        plt.close(fig)


def history_svg(records: list[dict[str, Any]]) -> str:
    """The same curves as inline SVG, for the report page."""
    fig = history_figure(records)
    buffer = io.StringIO()
    try:
        fig.savefig(buffer, format="svg")
    finally:
        plt.close(fig)
    svg = buffer.getvalue()
    return svg[svg.index("<svg"):]  # drop the XML prologue and doctype

"""Pictures of a run: sample grids and the curves of every named number in its records."""

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
from gankit.metrics import METRICS  # noqa: E402
from gankit.records import epochs_done, is_number, stat_panel, step_stat_names  # noqa: E402


def grid_image(images: torch.Tensor, nrow: int | None = None) -> Image.Image:
    """uint8 images (N, C, H, W) as one RGB grid, `nrow` images per row (default: square-ish)."""
    nrow = nrow or math.ceil(math.sqrt(images.shape[0]))
    grid = make_grid(images.cpu(), nrow=nrow, padding=2, pad_value=255)  # (C, H', W'), grey -> 3 channels
    return Image.fromarray(grid.permute(1, 2, 0).numpy())


def save_grid(images: torch.Tensor, path: Path, nrow: int | None = None) -> None:
    """Write uint8 images (N, C, H, W) as one PNG grid, atomically."""
    image = grid_image(images, nrow)
    atomic_write(path, lambda tmp: image.save(tmp, format="PNG"))


def history_panels(records: list[dict[str, Any]]) -> list[tuple[str, list[str]]]:
    """(title, keys) of each panel: the step's stats grouped by `stat_panel`, then each metric that was scored."""
    panels: dict[str, list[str]] = {}
    for name in step_stat_names(records):
        panels.setdefault(stat_panel(name), []).append(name)
    for _, metric in METRICS.items():
        if any(key in r for r in records for key in metric.plotted):
            panels[metric.panel] = list(metric.plotted)
    return list(panels.items())


def history_figure(records: list[dict[str, Any]]) -> plt.Figure:
    """One panel per group of named numbers in the records (losses, D's accuracy, penalties, metrics), per epoch."""
    panels = history_panels(records)
    columns = min(3, len(panels))
    rows = -(-len(panels) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(5.5 * columns, 4 * rows), squeeze=False)
    axes = axes.ravel()
    for ax, (title, keys) in zip(axes, panels):
        for key in keys:
            points = [(epochs_done(r), r[key]) for r in records if is_number(r.get(key))]
            if points:
                ax.plot(*zip(*points), marker="." if len(points) > 20 else "o", label=key)
        if title == "Discriminator accuracy":
            ax.axhline(0.5, color="grey", linestyle=":", linewidth=1)
            ax.set_ylim(-0.02, 1.02)
        ax.set(xlabel="epoch", title=title)
        ax.grid(alpha=0.3)
        ax.legend()
    for ax in axes[len(panels) :]:
        ax.set_visible(False)
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
    return figure_svg(history_figure(records))


def figure_svg(fig: plt.Figure) -> str:
    """`fig` as inline SVG (closed afterwards)."""
    buffer = io.StringIO()
    try:
        fig.savefig(buffer, format="svg")
    finally:
        plt.close(fig)
    svg = buffer.getvalue()
    return svg[svg.index("<svg") :]  # drop the XML prologue and doctype


def figure_png(fig: plt.Figure) -> bytes:
    """`fig` as PNG bytes (closed afterwards)."""
    buffer = io.BytesIO()
    try:
        fig.savefig(buffer, format="png", dpi=100)
    finally:
        plt.close(fig)
    return buffer.getvalue()

"""Quality per compute: the scores a run took while it trained, against images seen and minutes of training, for
one run (its report) or several side by side (`gankit.compare`)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from gankit.plots import figure_svg, plt
from gankit.records import is_number


@dataclass
class Curve:
    """One run's scores of one metric, each with the images seen and the minutes of training before it."""

    label: str
    kimg: list[float]
    minutes: list[float]
    values: list[float]

    def best(self) -> int:
        """The index of the lowest finite value (the first of equal ones, as checkpoints/best.pt keeps)."""
        finite = [i for i, v in enumerate(self.values) if math.isfinite(v)]
        return min(finite, key=self.values.__getitem__) if finite else -1


def quality_curve(records: list[dict[str, Any]], key: str = "fid", label: str = "") -> Curve:
    # records before the clock (kimg, elapsed_seconds) cannot be placed
    scored = [r for r in records if all(is_number(r.get(k)) for k in (key, "kimg", "elapsed_seconds"))]
    return Curve(
        label,
        [r["kimg"] for r in scored],
        [r["elapsed_seconds"] / 60 for r in scored],
        [float(r[key]) for r in scored],
    )


def quality_figure(curves: list[Curve], key: str = "fid") -> plt.Figure:
    """Two panels: the metric against thousands of images seen, and against minutes of training."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    panels = (
        ("kimg", "thousand images seen", "images seen"),
        ("minutes", "minutes of training", "minutes of training"),
    )
    for ax, (axis, xlabel, against) in zip(axes, panels):
        for curve in curves:
            ax.plot(getattr(curve, axis), curve.values, marker="o", label=curve.label or None)
        ax.set(xlabel=xlabel, ylabel=key, title=f"{key} against {against}")
        ax.grid(alpha=0.3)
        if any(c.label for c in curves):
            ax.legend()
    fig.tight_layout()
    return fig


def quality_svg(records: list[dict[str, Any]], key: str = "fid") -> str:
    """A run's quality per compute as inline SVG; empty when the run scored nothing."""
    curve = quality_curve(records, key)
    return figure_svg(quality_figure([curve], key)) if curve.values else ""

"""`gankit compare`: several runs' scores from training side by side, against images seen and minutes, refusing
runs that were not measured alike."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gankit.errors import GankitError
from gankit.files import atomic_write, ensure_parent
from gankit.plots import figure_png
from gankit.quality import Curve, quality_curve, quality_figure
from gankit.run import load_run


@dataclass
class Scored:
    """A run's scores from training (output.eval_every) and what they were measured with."""

    path: Path
    data: str  # the data set's name; a folder's path
    features: str
    n: int
    curve: Curve


def load_scored(path: Path, key: str) -> Scored:
    run = load_run(path)
    results = [_read_result(p) for p in sorted(run.folder.evals.glob("*.json"))]
    during = [r for r in results if "kimg" in r]  # `gankit eval` afterwards knows no images seen
    curve = quality_curve(run.metrics(), key, label=str(path))
    if not during or not curve.values:
        raise GankitError(f"{path} has no {key} scores from training: score while training with output.eval_every")
    kinds = {(r["features"], r["n_generated"]) for r in during}
    if len(kinds) > 1:
        raise GankitError(f"{path} was scored with several feature extractors or sample counts: {sorted(kinds)}")
    ((features, n),) = kinds
    data = run.config.data
    where = f"folder {Path(data.dir).resolve()}" if data.dataset == "folder" and data.dir else data.dataset
    return Scored(path, where, features, n, curve)


def _read_result(path: Path) -> dict[str, Any]:
    try:
        result = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise GankitError(f"{path} is not a score gankit wrote ({type(exc).__name__})") from None
    scored_in_training = isinstance(result, dict) and "kimg" in result
    if not isinstance(result, dict) or (
        scored_in_training
        and not (isinstance(result.get("features"), str) and isinstance(result.get("n_generated"), int))
    ):
        raise GankitError(f"{path} is not a score gankit wrote")
    return result


def compare(paths: list[Path], key: str = "fid") -> list[Scored]:
    """The runs' scores, refusing runs that cannot be compared: other data, features or sample counts."""
    runs = [load_scored(path, key) for path in paths]
    first = runs[0]
    for other in runs[1:]:
        if other.data != first.data:
            raise GankitError(
                f"runs of different data: {first.path} trains on {first.data}, {other.path} on {other.data}"
            )
        if (other.features, other.n) != (first.features, first.n):
            raise GankitError(
                f"runs scored differently cannot be compared: {first.path} with {first.features} features on "
                f"{first.n} samples, {other.path} with {other.features} on {other.n}"
            )
    return runs


def table(runs: list[Scored], key: str = "fid") -> list[str]:
    """One line per run: its best score and when, its last score and when."""
    width = max(len(str(r.path)) for r in runs)
    lines = [
        f"{'run':{width}s}  {'scores':>6s}  {'best ' + key:>10s}  {'kimg':>7s}  {'min':>6s}  "
        f"{'last ' + key:>10s}  {'kimg':>7s}  {'min':>6s}"
    ]
    for run in runs:
        c = run.curve
        b = c.best()
        best = (
            f"{c.values[b]:10.4g}  {c.kimg[b]:7.1f}  {c.minutes[b]:6.1f}" if b >= 0 else f"{'-':>10s}  {'':7s}  {'':6s}"
        )
        lines.append(
            f"{str(run.path):{width}s}  {len(c.values):6d}  {best}  {c.values[-1]:10.4g}  {c.kimg[-1]:7.1f}  "
            f"{c.minutes[-1]:6.1f}"
        )
    return lines


def save_plot(runs: list[Scored], path: Path, key: str = "fid") -> None:
    """The runs' curves against images seen and minutes, as a PNG written atomically."""
    png = figure_png(quality_figure([r.curve for r in runs], key))

    def write(tmp: Path) -> None:
        tmp.write_bytes(png)

    ensure_parent(path)
    atomic_write(path, write)

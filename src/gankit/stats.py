"""The names in a run's per-epoch records: the loop's bookkeeping, the step's stats and quality metrics.

The step reports whatever named scalars it computes (losses, accuracies, a regulariser's term);
every consumer (progress bar, log, plots, TensorBoard, report) shows the names that arrive, sorted
into these groups rather than listed anywhere.
"""

from __future__ import annotations

from typing import Any

from gankit.metrics import quality_keys

EPOCH_KEYS = ("epoch", "images_per_s", "epoch_seconds", "elapsed_seconds", "peak_gpu_mib")  # written by the loop


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def step_stat_names(records: list[dict[str, Any]]) -> list[str]:
    """The step's stats in these records, in the order they first appear."""
    quality = quality_keys()
    names: dict[str, None] = {}
    for record in records:
        for key, value in record.items():
            if is_number(value) and key not in EPOCH_KEYS and key not in quality:
                names[key] = None
    return list(names)


def stat_panel(name: str) -> str:
    """The panel a step stat is drawn in: losses together, D's accuracies together, anything else alone."""
    if name.endswith("_loss"):
        return "Losses"
    if name.startswith("d_acc"):
        return "Discriminator accuracy"
    return name


# D "has won outright" in an epoch where its accuracy is at least this on real and on generated images
COLLAPSE_ACCURACY = 0.999
# what to try then; bench/seeds.py measures how often each preset and setting dies
COLLAPSE_ADVICE = ("Try another train.seed, or the preset gan-mnist-tanh (G's output tanh, data in [-1, 1]), whose D "
                   "does not win its first epochs.")


def collapse_streak(records: list[dict[str, Any]]) -> int:
    """How many epochs, counted back from the last record, have D winning outright (marked `collapsed`)."""
    streak = 0
    for record in reversed(records):
        if not record.get("collapsed"):
            break
        streak += 1
    return streak


def collapse_stretches(records: list[dict[str, Any]], min_epochs: int) -> list[tuple[int, int]]:
    """(first, last) epoch of every run of at least `min_epochs` epochs in which D won outright."""
    stretches: list[list[int]] = []
    for record in records:
        if record.get("collapsed"):
            if stretches and stretches[-1][1] == record["epoch"] - 1:
                stretches[-1][1] = record["epoch"]
            else:
                stretches.append([record["epoch"], record["epoch"]])
    return [(a, b) for a, b in stretches if min_epochs and b - a + 1 >= min_epochs]

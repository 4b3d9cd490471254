"""The names in a run's per-epoch records: the loop's bookkeeping, the step's stats and quality metrics.

The step reports whatever named scalars it computes (losses, accuracies, a regulariser's term);
every consumer (progress bar, log, plots, TensorBoard, report) shows the names that arrive, sorted
into these groups rather than listed anywhere.
"""

from __future__ import annotations

from typing import Any

from gankit.metrics import quality_keys

# written by the loop
EPOCH_KEYS = ("epoch", "kimg", "epoch_fraction", "images_per_s", "epoch_seconds", "elapsed_seconds", "peak_gpu_mib")


def epochs_done(record: dict[str, Any]) -> float:
    """How many epochs the run had trained when the record was written (2.25: a quarter into epoch 3)."""
    return record["epoch"] - 1 + record["epoch_fraction"] if "epoch_fraction" in record else record["epoch"]


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
    """The panel a stat is drawn in: losses together, D's accuracies together, the samples' spreads together, anything
    else alone."""
    if name.endswith("_loss"):
        return "Losses"
    if name.startswith("d_acc"):
        return "Discriminator accuracy"
    if name.startswith("spread_"):
        return "Sample spread (fraction of the real images')"
    return name

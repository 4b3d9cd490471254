"""The collapse rule: when D has won outright (sure of every real and every generated image, G's loss high) for
epochs running, G is learning next to nothing; the collapse watch, the report and bench/seeds.py read it here."""

from __future__ import annotations

from typing import Any

# D "has won outright" in an epoch where its accuracy is at least this on real and on generated images (with G's loss
# high), and it goes on winning while the next epochs keep it at least STILL_WON_ACCURACY: a dead run's D can sit at
# 0.998 for good, one image in 500 misjudged
COLLAPSE_ACCURACY = 0.999
STILL_WON_ACCURACY = 0.99
# what to try then; bench/seeds.py measures how often each preset and setting dies
COLLAPSE_ADVICE = (
    "Try another train.seed, or the preset gan-mnist-tanh (G's output tanh, data in [-1, 1]), whose D "
    "does not win its first epochs."
)


# G's samples "are all alike" in an epoch where their spread in the feature network's space (gankit.diversity) is below
# this fraction of the real images' (64 copies of one image score 0), and the run has collapsed to them once that has
# lasted ALIKE_EPOCHS epochs running: the report's GAN, whose D wins its first epochs, spends one or two near 0.1
ALIKE_SPREAD = 0.1
ALIKE_EPOCHS = 5
ALIKE_ADVICE = "Try another train.seed, a lower learning rate for D, or more data augmentation (train.diffaugment)."


def samples_alike(record: dict[str, Any]) -> bool:
    """Whether the record's samples are all alike: their feature spread below ALIKE_SPREAD of the real images'."""
    spread = record.get("spread_features")
    return spread is not None and spread < ALIKE_SPREAD


def won_outright(record: dict[str, Any], previous: dict[str, Any] | None, g_loss: float) -> bool:
    """Whether D won outright in `record`'s epoch, given the epoch before (marked `collapsed` or not) and the loss's
    G-loss threshold: accuracy >= COLLAPSE_ACCURACY on both sides to begin, >= STILL_WON_ACCURACY to go on. An epoch
    without a G update (train.d_steps longer than the epoch) has no G loss: the win goes on as it stood."""
    won_before = previous is not None and bool(previous.get("collapsed"))
    accuracy = STILL_WON_ACCURACY if won_before else COLLAPSE_ACCURACY
    g_lost = record["g_loss"] >= g_loss if "g_loss" in record else won_before
    return record.get("d_acc_real", 0.0) >= accuracy and record.get("d_acc_fake", 0.0) >= accuracy and g_lost


def remark_collapses(records: list[dict[str, Any]], g_loss: float) -> list[dict[str, Any]]:
    """The records with `collapsed` marked afresh by `won_outright`, for runs whose marks an older rule wrote."""
    marked: list[dict[str, Any]] = []
    for record in records:
        marked.append({**record, "collapsed": won_outright(record, marked[-1] if marked else None, g_loss)})
    return marked


def whole_epochs(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The records of finished epochs; those part-way through one (where a schedule's work fell due) leave streaks as
    they are."""
    return [r for r in records if "epoch_fraction" not in r]


def collapse_streak(records: list[dict[str, Any]], mark: str = "collapsed") -> int:
    """How many epochs, counted back from the last finished one, carry `mark` (D winning outright: `collapsed`)."""
    streak = 0
    for record in reversed(whole_epochs(records)):
        if not record.get(mark):
            break
        streak += 1
    return streak


def collapse_stretches(
    records: list[dict[str, Any]], min_epochs: int, mark: str = "collapsed"
) -> list[tuple[int, int]]:
    """(first, last) epoch of every run of at least `min_epochs` epochs that carry `mark` (D won outright: `collapsed`)."""
    stretches: list[list[int]] = []
    for record in whole_epochs(records):
        if record.get(mark):
            if stretches and stretches[-1][1] == record["epoch"] - 1:
                stretches[-1][1] = record["epoch"]
            else:
                stretches.append([record["epoch"], record["epoch"]])
    return [(a, b) for a, b in stretches if min_epochs and b - a + 1 >= min_epochs]

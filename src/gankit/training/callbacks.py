"""What happens after each epoch, as a short list of callbacks: scores, grids, curves, checkpoints, TensorBoard.

Each callback sees the epoch's record (its line of metrics.jsonl, which it may add to) and the
history; they run in list order, so scores join the record before it is plotted and checkpointed.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from gankit.checkpoint import BEST, prune_checkpoints, save_checkpoint
from gankit.collapse import (
    ALIKE_ADVICE,
    ALIKE_EPOCHS,
    ALIKE_SPREAD,
    COLLAPSE_ACCURACY,
    COLLAPSE_ADVICE,
    STILL_WON_ACCURACY,
    collapse_streak,
    samples_alike,
    won_outright,
)
from gankit.config import Config
from gankit.diversity import SampleSpread
from gankit.evaluate import Scorer, numbers, score
from gankit.losses import build_loss
from gankit.models import Generator
from gankit.plots import plot_history, save_grid
from gankit.rundir import RunDir, place_stem
from gankit.sampling import class_rows, sample_images
from gankit.training.state import TrainingState, state_to_checkpoint

log = logging.getLogger(__name__)

# Drawing losses.png takes most of a second once metrics join it: redrawn after every short epoch it would cost a
# long run minutes (bench/plot_cost.py measures it), so between scored epochs and the last one it waits this long.
PLOT_EVERY_S = 60.0


@dataclass
class EpochEnd:
    state: TrainingState  # after the epoch: state.epoch is the epoch just finished
    run: RunDir
    record: dict[str, Any]  # the epoch's line of metrics.jsonl
    history: list[dict[str, Any]]  # every record of the run so far, this one last
    due: frozenset[str] = frozenset()  # the scheduled work due here: grid, score, checkpoint (gankit.training.clock)
    part_way: bool = False  # the epoch paused part-way (`state.position` says where): work fell due, or the run stops
    grid: torch.Tensor | None = None  # uint8 fixed-noise samples, when this epoch drew a grid
    scored: bool = False  # whether quality metrics joined the record this epoch
    stop: str | None = None  # set by a callback to end the run after this epoch, saying why
    final: bool = False  # the run ends with this epoch (or part of it) before train.epochs: a limit or a hook stops it

    @property
    def last(self) -> bool:
        return (
            self.final
            or self.stop is not None
            or (not self.part_way and self.state.epoch == self.state.config.train.epochs)
        )

    @property
    def stem(self) -> str:
        """The name of what this point of the run writes (a grid, a checkpoint, a score): its epoch, and its step
        where the epoch paused part-way."""
        return place_stem(self.state.epoch, self.state.position["step"] if self.state.position else None)


class Callback:
    """Per-epoch work added to a run (through `Hooks.callbacks`): called after each epoch's record is written."""

    def on_epoch_end(self, epoch: EpochEnd) -> None:
        pass

    def close(self) -> None:
        pass


class Score(Callback):
    """Score G as `output.eval_every` schedules and at the end; the full result goes to RUN/eval/."""

    def __init__(self, scorer: Scorer):
        self.scorer = scorer

    def on_epoch_end(self, epoch: EpochEnd) -> None:
        if "score" not in epoch.due and not epoch.last:
            return
        step = {"step": epoch.state.position["step"]} if epoch.state.position else {}
        result = {
            "epoch": epoch.state.epoch,
            **step,
            "kimg": epoch.record["kimg"],
            **score(self.scorer, epoch.state.sampler),
        }
        epoch.run.save_eval(result)
        figures = numbers(result["metrics"])
        where = f"epoch {epoch.state.epoch}" + (f", step {step['step']}" if step else "")
        log.info("%s: %s", where, ", ".join(f"{k} {v:.4g}" for k, v in figures.items()))
        epoch.record.update(figures)
        epoch.scored = True


class Plateau(Callback):
    """Ends the run once `output.stop_on_plateau` scorings in a row have not lowered the best FID (kept as
    checkpoints/best.pt): more training no longer buys quality by the run's own measure."""

    def __init__(self, scorings: int):
        self.scorings = scorings

    def on_epoch_end(self, epoch: EpochEnd) -> None:
        if not epoch.scored:
            return
        scored = [r for r in epoch.history if "fid" in r]  # a NaN or infinite FID is a scoring without a new best
        finite = [i for i, r in enumerate(scored) if math.isfinite(r["fid"])]
        first_best = min(finite, key=lambda i: scored[i]["fid"], default=-1)  # the one kept as best.pt
        since = len(scored) - 1 - first_best
        if since < self.scorings:
            return
        if first_best < 0:
            epoch.stop = (
                f"the run stopped after epoch {epoch.state.epoch}: {since} scorings and not one finite FID "
                "(output.stop_on_plateau)"
            )
            return
        best = scored[first_best]
        epoch.stop = (
            f"the run stopped after epoch {epoch.state.epoch}: {since} scorings without a lower FID than "
            f"{best['fid']:.4g} (epoch {best['epoch']}, {best['kimg']:g} kimg), kept as checkpoints/{BEST} "
            "(output.stop_on_plateau)"
        )


class CollapseWatch(Callback):
    """Marks each epoch in which D has won outright (`collapsed` in metrics.jsonl) and says so once it
    has lasted `train.collapse_epochs` epochs: D's accuracy >= 0.999 on real and on generated images
    with G's loss at least the loss's `collapse_g_loss` (or `train.collapse_g_loss`), and then >= 0.99
    while the win lasts (`stats.won_outright`). G then learns
    next to nothing and its samples tend to be one image for every noise vector; with
    `train.on_collapse stop` the run ends there."""

    def __init__(self, config: Config):
        self.train = config.train
        given = config.train.collapse_g_loss
        self.g_loss = given if given is not None else build_loss(config.train).collapse_g_loss

    def on_epoch_end(self, epoch: EpochEnd) -> None:
        r, t = epoch.record, self.train
        r["collapsed"] = won_outright(r, epoch.history[-2] if len(epoch.history) > 1 else None, self.g_loss)
        streak = collapse_streak(epoch.history)
        if streak < t.collapse_epochs:
            return
        since = epoch.history[-streak]["epoch"]
        if streak == t.collapse_epochs:
            log.warning(
                "D has won outright since epoch %d (D accuracy >= %.3f on real and generated images, then >= "
                "%.2f, G loss >= %.4g, %d epochs running): G is learning next to nothing and its samples are "
                "likely all alike. %s",
                since,
                COLLAPSE_ACCURACY,
                STILL_WON_ACCURACY,
                self.g_loss,
                streak,
                COLLAPSE_ADVICE,
            )
        if t.on_collapse == "stop":
            epoch.stop = (
                f"the run stopped after epoch {epoch.state.epoch}: D has won outright since epoch {since} "
                "(train.on_collapse stop)"
            )


class Grids(Callback):
    """Samples of one fixed noise batch after epoch 1 (if asked), as `output.grid_every` schedules, and at the end.

    A conditional G's grid has one row per class, each row from the same noise vectors."""

    def __init__(self, config: Config, G: Generator):
        self.output = config.output
        per_class = max(1, self.output.grid_samples // max(G.num_classes, 1))
        self.noise, self.labels = class_rows(G, per_class, seed=config.train.seed + 1)
        self.per_row = per_class if G.num_classes else None  # one class's grid is square-ish

    def on_epoch_end(self, epoch: EpochEnd) -> None:
        first = epoch.state.epoch == 1 and not epoch.part_way and self.output.grid_first_epoch
        if "grid" in epoch.due or epoch.last or first:
            epoch.grid = sample_images(epoch.state.sampler, noise=self.noise, labels=self.labels)
            save_grid(epoch.grid, epoch.run.grids / f"{epoch.stem}.png", nrow=self.per_row)


class SpreadWatch(Callback):
    """How different the grid's samples are from one another each epoch, as fractions of the real images' spread in
    pixels and in a fixed network's features (`spread_pixels`, `spread_features`; gankit.diversity), and `samples_alike`
    where the feature spread is below `collapse.ALIKE_SPREAD`: a collapse D's accuracy can miss. After
    `collapse.ALIKE_EPOCHS` such epochs running it warns once (the report marks them), unless train.collapse_epochs
    is 0 (no collapse watch)."""

    def __init__(self, config: Config, grids: Grids, real: torch.Tensor):
        self.epochs = ALIKE_EPOCHS if config.train.collapse_epochs else 0
        self.grids = grids
        self.spread = SampleSpread(real)

    def on_epoch_end(self, epoch: EpochEnd) -> None:
        images = epoch.grid  # the grid's samples, drawn this epoch or now from the same noise
        if images is None:
            images = sample_images(epoch.state.sampler, noise=self.grids.noise, labels=self.grids.labels)
        r = epoch.record
        r.update(self.spread.fractions(images))
        r["samples_alike"] = samples_alike(r)
        if self.epochs and collapse_streak(epoch.history, "samples_alike") == self.epochs:
            log.warning(
                "G's samples have been nearly all alike since epoch %d (their spread in features under %.0f%% of "
                "the real images', %d epochs running): the run has likely collapsed to a few images, whatever D's "
                "accuracy says. %s",
                epoch.history[-self.epochs]["epoch"],
                100 * ALIKE_SPREAD,
                self.epochs,
                ALIKE_ADVICE,
            )


class Curves(Callback):
    """losses.png, redrawn after scored epochs, after the last, and otherwise at most every PLOT_EVERY_S."""

    def __init__(self) -> None:
        self.last_drawn = -PLOT_EVERY_S

    def on_epoch_end(self, epoch: EpochEnd) -> None:
        if epoch.scored or epoch.last or time.monotonic() - self.last_drawn >= PLOT_EVERY_S:
            plot_history(epoch.history, epoch.run.plot_path)
            self.last_drawn = time.monotonic()


class Checkpoints(Callback):
    """A checkpoint as `output.checkpoint_every` schedules and at the end, then the record's metrics line (a record
    without a checkpoint says `"checkpoint": false`: a resume from an earlier checkpoint replays it); the newest
    `output.keep_checkpoints` are kept, and the scored point with the lowest FID so far also as checkpoints/best.pt."""

    def __init__(self, keep: int):
        self.keep = keep

    def on_epoch_end(self, epoch: EpochEnd) -> None:
        run = epoch.run
        due = "checkpoint" in epoch.due or epoch.last
        if not due:
            epoch.record["checkpoint"] = False
        best = _best_fid(epoch.history)
        if best or due:
            # the checkpoint carries the epoch's record: a crash before the metrics line is written is
            # repaired on resume, and a crash before the checkpoint replays the whole epoch
            state = {**state_to_checkpoint(epoch.state), "record": epoch.record}
            if best:  # first: a crash before the epoch's checkpoint replays the epoch, and this again
                save_checkpoint(run.checkpoints / BEST, state)
            if due:
                save_checkpoint(run.checkpoints / f"{epoch.stem}.pt", state)
        run.append_metrics(epoch.record)
        prune_checkpoints(run.checkpoints, self.keep)


def _best_fid(history: list[dict[str, Any]]) -> bool:
    """Whether the last record's FID is finite and lower than every earlier one."""
    fid = history[-1].get("fid")
    earlier = [r["fid"] for r in history[:-1] if "fid" in r and math.isfinite(r["fid"])]
    return fid is not None and math.isfinite(fid) and all(fid < other for other in earlier)


class TensorBoard(Callback):
    """Every number of the record as a scalar, and the grid as an image, in RUN/tensorboard/."""

    def __init__(self, run: RunDir):
        from gankit.tensorboard import TensorBoardLog

        self.board = TensorBoardLog(run.path / "tensorboard")

    def on_epoch_end(self, epoch: EpochEnd) -> None:
        self.board.epoch(epoch.record, epoch.grid)

    def close(self) -> None:
        self.board.close()


def default_callbacks(
    config: Config,
    run: RunDir,
    G: Generator,
    scorer: Scorer | None,
    extra: Sequence[Callback] = (),
    real: torch.Tensor | None = None,
) -> list[Callback]:
    """The per-epoch work of a run in the order it must happen; `extra` goes before the checkpoint,
    so what it adds to the record is saved with the epoch. `real` (uint8 training images, a grid's worth) turns on
    the sample-spread watch."""
    callbacks: list[Callback] = [Score(scorer)] if scorer is not None else []
    if scorer is not None and config.output.stop_on_plateau:
        callbacks.append(Plateau(config.output.stop_on_plateau))
    if config.train.collapse_epochs:
        callbacks.append(CollapseWatch(config))
    grids = Grids(config, G)
    callbacks.append(grids)
    if real is not None:
        callbacks.append(SpreadWatch(config, grids, real))
    callbacks += [*extra, Curves(), Checkpoints(config.output.keep_checkpoints)]
    if config.output.tensorboard:
        callbacks.append(TensorBoard(run))
    return callbacks

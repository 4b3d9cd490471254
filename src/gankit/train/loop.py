"""The epoch loop around the training step: shuffling, stats, grids, plots and checkpoints."""

from __future__ import annotations

import copy
import logging
import sys
import time
from typing import Any

import torch
from tqdm import tqdm

from gankit.checkpoint import checkpoint_name, list_checkpoints, load_checkpoint, prune_checkpoints, save_checkpoint
from gankit.config import OutputConfig
from gankit.data import ImageSet
from gankit.errors import GankitError
from gankit.evaluate import Scorer, score
from gankit.heap import reuse_freed_memory
from gankit.models import to_uint8
from gankit.plots import plot_history, save_grid
from gankit.rundir import RunDir
from gankit.tensorboard import TensorBoardLog
from gankit.train.state import TrainingState, restore_state, state_to_checkpoint
from gankit.train.step import STAT_NAMES, GANStep

log = logging.getLogger(__name__)

MAX_ROLLBACKS = 3  # with --on-nan rollback, give up after this many in one session
PROGRESS_EVERY = 25  # steps between progress-bar refreshes (each one reads the stats off the device)
# Drawing losses.png takes 0.2-1.2 s (more panels once metrics join): redrawn after every 9 s epoch it
# cost the 200-epoch seed run about 115 s (bench/plot_cost.py), so between scored epochs and the last
# one it waits this long.
PLOT_EVERY_S = 60.0


def fit(state: TrainingState, run: RunDir, data: ImageSet, device: torch.device, scorer: Scorer | None = None) -> None:
    """Train from `state.epoch` to the configured number of epochs, writing into `run`; score with `scorer`."""
    config = state.config
    reuse_freed_memory()  # each step's tensors take the last step's pages, not fresh zeroed ones
    images = data.images.to(device)  # the whole data set stays on the device: no loader, no copies per step
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        state.G.to(memory_format=torch.channels_last)
        state.D.to(memory_format=torch.channels_last)
        images = images.contiguous(memory_format=torch.channels_last)
    G, D = state.G, state.D
    if config.train.compile:
        G, D = torch.compile(G), torch.compile(D)
    step = GANStep(G, D, state.opt_g, state.opt_d, config.train, device)
    fixed_noise = state.G.sample_noise(
        config.output.grid_samples, generator=torch.Generator().manual_seed(config.train.seed + 1), device="cpu"
    ).to(device)
    history = run.read_metrics()
    if state.epoch >= config.train.epochs:
        log.info("nothing to do: the run has finished %d of %d epochs", state.epoch, config.train.epochs)
    board = TensorBoardLog(run.path / "tensorboard") if config.output.tensorboard else None
    try:
        _train_epochs(state, run, step, images, fixed_noise, history, board, device, scorer)
    finally:
        if board is not None:
            board.close()


def _train_epochs(state: TrainingState, run: RunDir, step: GANStep, images: torch.Tensor, fixed_noise: torch.Tensor,
                  history: list[dict[str, Any]], board: TensorBoardLog | None, device: torch.device,
                  scorer: Scorer | None) -> None:
    config = state.config
    elapsed = history[-1]["elapsed_seconds"] if history else 0.0
    initial = None if list_checkpoints(run.checkpoints) else copy.deepcopy(state_to_checkpoint(state))
    rollbacks = 0
    last_plot = -PLOT_EVERY_S
    while state.epoch < config.train.epochs:
        epoch = state.epoch + 1
        try:
            stats, seconds, n_images = run_epoch(step, images, state, epoch)
        except Diverged as bad:
            if config.train.on_nan == "stop" or rollbacks == MAX_ROLLBACKS:
                raise GankitError(
                    f"the losses became NaN or infinite at epoch {epoch}, step {bad.step}; the run stopped and its "
                    f"checkpoints are intact ({'after ' + str(rollbacks) + ' rollbacks; ' if rollbacks else ''}"
                    "try --on-nan rollback or a lower learning rate)") from None
            rollbacks += 1
            roll_back(state, run, initial)
            log.warning("the losses became NaN or infinite at epoch %d, step %d: rolled back to epoch %d, "
                        "learning rates now %.3g (G) and %.3g (D)", epoch, bad.step, state.epoch,
                        state.opt_g.param_groups[0]["lr"], state.opt_d.param_groups[0]["lr"])
            history = [r for r in history if r["epoch"] <= state.epoch]
            elapsed = history[-1]["elapsed_seconds"] if history else 0.0
            continue
        state.epoch = epoch
        elapsed += seconds
        record = {"epoch": epoch, **stats, "images_per_s": n_images / seconds, "epoch_seconds": seconds,
                  "elapsed_seconds": elapsed}
        if device.type == "cuda":
            record["peak_gpu_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
        log.info("epoch %d/%d: D loss %.4f, G loss %.4f, D acc real %.3f / generated %.3f, %.0f img/s",
                 epoch, config.train.epochs, stats["d_loss"], stats["g_loss"], stats["d_acc_real"],
                 stats["d_acc_fake"], record["images_per_s"])
        scored = scorer is not None and (epoch % config.output.eval_every == 0 or epoch == config.train.epochs)
        if scored:
            record.update(evaluate_epoch(scorer, state, run))
        grid = sample_fixed(state, fixed_noise) if wants_grid(epoch, config.train.epochs, config.output) else None
        if grid is not None:
            save_grid(grid, run.grids / f"epoch-{epoch:04d}.png")
        history.append(record)
        if scored or epoch == config.train.epochs or time.monotonic() - last_plot >= PLOT_EVERY_S:
            plot_history(history, run.plot_path)
            last_plot = time.monotonic()
        # the checkpoint carries the epoch's record: a crash before the metrics line is written is
        # repaired on resume, and a crash before the checkpoint replays the whole epoch
        save_checkpoint(run.checkpoints / checkpoint_name(epoch), {**state_to_checkpoint(state), "record": record})
        run.append_metrics(record)
        if board is not None:
            board.epoch(record, grid)
        prune_checkpoints(run.checkpoints, config.output.keep_checkpoints)


def evaluate_epoch(scorer: Scorer, state: TrainingState, run: RunDir) -> dict[str, float]:
    """Score G now; the full result goes to RUN/eval/, its numbers into the epoch's record."""
    state.G.eval()
    try:
        result = {"epoch": state.epoch, **score(scorer, state.G)}
    finally:
        state.G.train()
    run.save_eval(result)
    log.info("epoch %d: %s", state.epoch, ", ".join(f"{k} {v:.4g}" for k, v in _numbers(result["metrics"]).items()))
    return _numbers(result["metrics"])


def _numbers(metrics: dict[str, Any]) -> dict[str, float]:
    return {k: v for k, v in metrics.items() if isinstance(v, (int, float))}


class Diverged(Exception):
    def __init__(self, step: int):
        self.step = step


def roll_back(state: TrainingState, run: RunDir, initial: dict[str, Any] | None) -> None:
    """Restore the last good checkpoint (or the start) and lower both learning rates."""
    checkpoints = list_checkpoints(run.checkpoints)
    if checkpoints:
        restore_state(state, load_checkpoint(checkpoints[-1]), str(checkpoints[-1]))
    else:
        restore_state(state, copy.deepcopy(initial), "the initial state")
    for optimiser in (state.opt_g, state.opt_d):
        for group in optimiser.param_groups:
            group["lr"] *= state.config.train.rollback_lr_factor


def run_epoch(step: GANStep, images: torch.Tensor, state: TrainingState, epoch: int) -> tuple[dict[str, float], float, int]:
    """One pass over the images in a fresh random order; returns mean stats, seconds, images seen."""
    config = state.config
    batch = config.train.batch_size
    steps = images.shape[0] // batch  # the last incomplete batch is dropped: every step has the same shape
    if steps == 0:
        raise ValueError(f"{images.shape[0]} images make no batch of {batch}")
    low, high = state.G.value_range
    scale = (high - low) / 255.0
    order = torch.randperm(images.shape[0], generator=state.shuffle).to(images.device)
    totals = torch.zeros(len(STAT_NAMES), device=images.device)
    first_bad = torch.tensor(-1, device=images.device)  # first step with a non-finite loss, found without a host sync
    state.G.train()
    state.D.train()
    # disable=None: a bar only on a terminal, not in a log file
    bar = tqdm(total=steps, desc=f"epoch {epoch}/{config.train.epochs}", unit="step", leave=False,
               disable=None if config.output.progress else True, file=sys.stderr, dynamic_ncols=True)
    start = time.perf_counter()
    for i in range(steps):
        real = images[order[i * batch:(i + 1) * batch]].float().mul_(scale).add_(low)  # uint8 -> G's range
        stats = step(real)
        totals += stats
        first_bad = torch.where((first_bad < 0) & ~torch.isfinite(stats[:2]).all(), i + 1, first_bad)
        if (i + 1) % PROGRESS_EVERY == 0 and not bar.disable:
            bar.set_postfix(_means(totals, i + 1, ("d_loss", "g_loss")), refresh=False)
            bar.update(PROGRESS_EVERY)
    if images.device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    bar.close()
    if first_bad.item() >= 0:
        raise Diverged(int(first_bad.item()))
    return _means(totals, steps, STAT_NAMES), seconds, steps * batch


def wants_grid(epoch: int, last_epoch: int, output: OutputConfig) -> bool:
    return epoch % output.grid_every == 0 or epoch == last_epoch or (epoch == 1 and output.grid_first_epoch)


@torch.no_grad()
def sample_fixed(state: TrainingState, noise: torch.Tensor) -> torch.Tensor:
    state.G.eval()
    try:
        return to_uint8(state.G(noise), state.G.value_range)
    finally:
        state.G.train()


def _means(totals: torch.Tensor, steps: int, names: tuple[str, ...]) -> dict[str, Any]:
    values = (totals / steps).tolist()
    return {name: values[STAT_NAMES.index(name)] for name in names}

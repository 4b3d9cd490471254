"""The epoch loop around the training step: shuffling, summing the step's stats, and per-epoch callbacks."""

from __future__ import annotations

import copy
import logging
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, cast

import torch
from tqdm import tqdm

from gankit.checkpoint import list_checkpoints, newest_checkpoint
from gankit.config import Config
from gankit.errors import GankitError
from gankit.losses import build_loss
from gankit.models import Generator
from gankit.models.conditioning import CONDITIONINGS
from gankit.regularisers import config_terms
from gankit.rundir import RunDir, place
from gankit.terms import Term
from gankit.training.callbacks import EpochEnd
from gankit.training.clock import LIMIT_REACHED, RunClock, position_images, position_seconds
from gankit.training.distributed import SINGLE, World, all_reduce_min, broadcast, distributed_nets, on_main, shard_size
from gankit.training.hooks import Hooks
from gankit.training.schedules import Schedules
from gankit.training.state import (
    EMAUpdate,
    TrainingState,
    checkpoint_place,
    restore_state,
    standing_statistics,
    state_to_checkpoint,
)
from gankit.training.step import GANStep
from gankit.training.sums import StatSums

log = logging.getLogger(__name__)

MAX_ROLLBACKS = 3  # with train.on_nan rollback, give up after this many in one session
PROGRESS_EVERY = 25  # steps between progress-bar refreshes (each one reads the stats off the device)


def fit(
    state: TrainingState,
    run: RunDir,
    images: torch.Tensor,
    device: torch.device,
    hooks: Hooks,
    *,
    labels: torch.Tensor,
    world: World = SINGLE,
    in_memory: bool = True,
) -> str | None:
    """Train from `state.epoch` to the configured number of epochs on uint8 `images` and their class `labels`
    (an unconditional model ignores them), then close the callbacks; returns why the run stopped early,
    if a callback stopped it. `hooks` holds every callback of the run, gankit's own included. With `in_memory` False the images stay where they are (a file mapped into memory,
    say) and each step reads only its batch. Under torchrun (`world`) each rank trains on its share of every batch;
    the callbacks run on rank 0 alone, which tells the others whether to stop."""
    try:
        return _fit(state, run, images, labels, device, hooks, world, in_memory)
    finally:
        for callback in hooks.callbacks:
            callback.close()


def _fit(
    state: TrainingState,
    run: RunDir,
    images: torch.Tensor,
    labels: torch.Tensor,
    device: torch.device,
    hooks: Hooks,
    world: World,
    in_memory: bool,
) -> str | None:
    config = state.config
    if in_memory:
        images = images.to(device)  # the whole data set stays on the device: no loader, no copies per step
    labels = labels.to(device)
    class_weights = torch.bincount(labels, minlength=state.G.num_classes).float()  # G's classes in the data's mix
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        for net in (state.G, state.D, state.G_ema):
            if net is not None:
                net.to(memory_format=torch.channels_last)
        if in_memory:
            images = images.contiguous(memory_format=torch.channels_last)
    G, D = state.G, state.D
    if config.train.compile:  # a compiled module forwards the attributes of the one it compiles
        G, D = cast(Generator, torch.compile(G)), cast(torch.nn.Module, torch.compile(D))
    G_update, D_update = distributed_nets(G, D, device, world, sync_batch_norm=config.train.sync_batch_norm)
    step = config_step(
        state,
        device,
        extra_terms=hooks.terms,
        G=G,
        D=D,
        after_step=[*([EMAUpdate(state)] if state.G_ema is not None else []), *hooks.after_step],
        augment=state.augment,
        class_weights=class_weights,
        fresh_g_noise=config.train.g_noise == "fresh",
        world=world,
        G_update=G_update,
        D_update=D_update,
    )
    if state.epoch >= config.train.epochs:
        log.info("nothing to do: the run has finished %d of %d epochs", state.epoch, config.train.epochs)
    return _train_epochs(state, run, step, images, labels, hooks, world)


def config_step(
    state: TrainingState,
    device: torch.device,
    *,
    extra_terms: Sequence[Term] = (),
    G: Generator | None = None,
    D: torch.nn.Module | None = None,
    **options: Any,
) -> GANStep:
    """A step of `state`'s nets (or their compiled forms `G`, `D`) on the terms its config asks for, then
    `extra_terms`, at the config's precision, D's calls read as its loss reads them; `options` go to GANStep as they are
    (`fit` gives them all; a benchmark or a test only the ones it needs)."""
    config = state.config
    settings = {
        "precision": config.train.precision,
        "margins": build_loss(config.train).margins,
        **options,
    }
    return GANStep(
        state.G if G is None else G,  # not `or`: a compiled module's truth is its len()
        state.D if D is None else D,
        state.opt_g,
        state.opt_d,
        step_terms(config, extra_terms),
        device=device,
        **settings,
    )


def step_terms(config: Config, extra: Sequence[Term] = ()) -> list[Term]:
    """The terms of the nets' losses a config asks for, in the order they are added: the loss, the conditioning's
    (ACGAN's class loss), the penalties, then `extra` (the caller's)."""
    return [
        *build_loss(config.train).terms(),
        *CONDITIONINGS[config.model.conditioning].terms(),
        *config_terms(config.train),
        *extra,
    ]


def _train_epochs(
    state: TrainingState,
    run: RunDir,
    step: GANStep,
    images: torch.Tensor,
    labels: torch.Tensor,
    hooks: Hooks,
    world: World,
) -> str | None:
    config = state.config
    history = run.read_metrics()
    elapsed = whole_epochs_seconds(history)
    initial = None if list_checkpoints(run.checkpoints) else copy.deepcopy(state_to_checkpoint(state))
    rollbacks = 0
    batch = config.train.batch_size
    steps = images.shape[0] // batch
    clock = RunClock(config, step)
    clock.start(state.epoch * steps * batch + position_images(state), elapsed + position_seconds(state))
    while state.epoch < config.train.epochs:
        epoch = state.epoch + 1
        images_before = (epoch - 1) * steps * batch
        reached = clock.reached(images_before + position_images(state), elapsed + position_seconds(state))
        if reached:
            log.info("nothing to do: %s", reached)
            return None
        clock.begin_epoch(images_before, elapsed)
        try:
            stats, seconds, n_images = run_epoch(step, images, state, epoch, labels, should_pause=clock.should_pause)
        except Diverged as bad:
            if config.train.on_nan == "stop" or rollbacks == MAX_ROLLBACKS:
                advice = (
                    f"after {rollbacks} rollbacks: start a new run with lower learning rates"
                    if rollbacks
                    else "try train.on_nan rollback or a lower learning rate"
                )
                raise GankitError(
                    f"the losses became NaN or infinite at epoch {epoch}, step {bad.step}; the run stopped "
                    f"and its checkpoints are intact ({advice})",
                    option="train.on_nan",
                ) from None
            rollbacks += 1
            back_to = roll_back(state, run, initial, world)
            history = [r for r in history if place(r) <= back_to]
            step.recount()  # the updates counted again from the restored optimisers
            log.warning(
                "the losses became NaN or infinite at epoch %d, step %d: rolled back to epoch %d, "
                "learning rates now %.3g (G) and %.3g (D)",
                epoch,
                bad.step,
                state.epoch,
                state.opt_g.param_groups[0]["lr"],
                state.opt_d.param_groups[0]["lr"],
            )
            elapsed = whole_epochs_seconds(history)
            clock.start(state.epoch * steps * batch + position_images(state), elapsed + position_seconds(state))
            continue
        part_way = state.position is not None  # the run stops here, or work falls due part-way through the epoch
        done = state.position["step"] if state.position is not None else steps
        due = clock.due(epoch, not part_way, images_before + done * batch, elapsed + seconds)
        state.epoch = epoch  # an epoch left part-way too: its grid, scores and checkpoint are this epoch's so far
        if state.G_ema is not None:  # before the grids, scores and checkpoint read it
            standing_statistics(state.G_ema, seed=config.train.seed)
        record = {
            "epoch": epoch,
            **stats,
            "kimg": (images_before + done * batch) / 1000,
            "images_per_s": n_images / seconds,
            "epoch_seconds": seconds,
            "elapsed_seconds": elapsed + seconds,
        }
        if part_way:
            record["epoch_fraction"] = done / steps
        else:
            elapsed += seconds
        if step.device.type == "cuda":
            record["peak_gpu_mib"] = torch.cuda.max_memory_allocated(step.device) / 2**20
        log.info(
            "epoch %d/%d%s: %s, %.0f img/s",
            epoch,
            config.train.epochs,
            f" ({record['epoch_fraction']:.0%} of it)" if part_way else "",
            ", ".join(f"{name} {value:.4g}" for name, value in stats.items()),
            record["images_per_s"],
        )
        history.append(record)
        event = EpochEnd(state, run, record, history, due=due, part_way=part_way, final=clock.stopped is not None)
        for callback in hooks.callbacks:
            callback.on_epoch_end(event)
        stop = broadcast(event.stop, world)  # the other ranks wait here while rank 0 scores and saves the epoch
        if stop:
            return stop
        if clock.stopped is not None:
            if clock.stopped.startswith(LIMIT_REACHED):
                log.info("%s after %g thousand images", clock.stopped, record["kimg"])
                return None
            return clock.stopped
        if part_way:
            state.epoch = epoch - 1  # the epoch goes on from state.position
    return None


def whole_epochs_seconds(history: list[dict[str, Any]]) -> float:
    """The seconds of training of the epochs the records show finished (a record part-way through an epoch counts
    that epoch's seconds so far, which its position carries)."""
    whole = [r for r in history if "epoch_fraction" not in r]
    return whole[-1]["elapsed_seconds"] if whole else 0.0


class Diverged(Exception):
    def __init__(self, step: int):
        self.step = step


def roll_back(
    state: TrainingState, run: RunDir, initial: dict[str, Any] | None, world: World = SINGLE
) -> tuple[int, float]:
    """Restore the last good checkpoint (or the start) and lower both learning rates; every rank takes rank 0's.
    Returns the checkpoint's place in the run (`records.place`); rank 0 cuts metrics.jsonl back to it.

    The rates become train.rollback_lr_factor times those that diverged, not those the checkpoint saved: a second
    rollback to the same checkpoint then retries at a lower rate, not at the first rollback's again."""
    diverged = [_base_rates(optimiser) for optimiser in (state.opt_g, state.opt_d)]
    checkpoint, source = on_main(world, lambda: newest_checkpoint(run))
    if checkpoint is not None:
        restore_state(state, checkpoint, source)
    elif initial is not None:
        restore_state(state, copy.deepcopy(initial), "the initial state")
    else:
        raise GankitError(f"{run.checkpoints} holds no checkpoint to roll back to")
    record = checkpoint.get("record") if checkpoint is not None else None
    back_to = checkpoint_place(state, record)
    if world.main:
        run.keep_metrics_through(back_to, record)
    for optimiser, before in zip((state.opt_g, state.opt_d), diverged):
        for group, rate, restored in zip(optimiser.param_groups, before, _base_rates(optimiser)):
            scale = rate * state.config.train.rollback_lr_factor / restored
            group["lr"] *= scale
            if "base_lr" in group:
                group["base_lr"] *= scale
    return back_to


def _base_rates(optimiser: torch.optim.Optimizer) -> list[float]:
    """Each parameter group's rate before any schedule scales it."""
    return [group.get("base_lr", group["lr"]) for group in optimiser.param_groups]


def run_epoch(
    step: GANStep,
    images: torch.Tensor,
    state: TrainingState,
    epoch: int,
    labels: torch.Tensor,
    *,
    should_pause: Callable[[int, float], bool] | None = None,
) -> tuple[dict[str, float], float, int]:
    """One epoch: a pass over the images and their labels in a fresh random order (or
    as many batches drawn with replacement, train.batch_order); returns mean stats, seconds, images seen.

    `train.batch_size` is the global batch: every rank draws the same order and takes its share of each
    batch by global rank, so together the ranks train on what one process would. The stats are averaged
    over the ranks. After each step but the last, `should_pause(images, seconds)` (the epoch's images and seconds so
    far) may end the epoch early: then `state.position` says where, so a checkpoint of it resumes there exactly. An
    epoch that `state.position` says was left part-way goes on from there."""
    config, world, device = state.config, step.world, step.device
    batch = config.train.batch_size
    share = shard_size(batch, world)
    steps = images.shape[0] // batch  # the last incomplete batch is dropped: every step has the same shape
    if steps == 0:
        raise ValueError(f"{images.shape[0]} images make no batch of {batch}")
    low, high = state.G.value_range
    scale = (high - low) / 255.0
    position, state.position = state.position, None
    if position is not None:  # the epoch's order drawn again, from the stream as it was at the epoch's start
        state.shuffle.set_state(position["shuffle"])
    epoch_start_shuffle = state.shuffle.get_state()
    if config.train.batch_order == "replacement":
        order = torch.randint(images.shape[0], (steps * batch,), generator=state.shuffle)
    else:
        order = torch.randperm(images.shape[0], generator=state.shuffle)
    order = order.to(images.device)  # images mapped from a file stay on the CPU, and are read batch by batch
    label_order = order.to(labels.device)  # once an epoch, not a copy a step
    first = position["step"] if position is not None else 0
    sums = StatSums.from_state(position["sums"], device) if position is not None else StatSums()
    seconds_before = position["seconds"] if position is not None else 0.0
    schedules = Schedules.of(config)
    first_bad = torch.tensor(-1, device=device)  # first step with a non-finite stat, found without a host sync
    state.G.train()
    state.D.train()
    # disable=None: a bar only on a terminal, not in a log file
    bar = tqdm(
        total=steps,
        initial=first,
        desc=f"epoch {epoch}/{config.train.epochs}",
        unit="step",
        leave=False,
        disable=None if config.output.progress and world.main else True,
        file=sys.stderr,
        dynamic_ncols=True,
    )
    start = time.perf_counter()
    done = steps
    for i in range(first, steps):
        run_step = (epoch - 1) * steps + i  # the batch's place in the run: the same on resume, which starts an epoch
        if config.train.lr_decay == "linear":
            decay_learning_rates(state, 1.0 - run_step / (config.train.epochs * steps))
        if schedules is not None:
            schedules.apply(state, step, run_step * batch)
        start_of_share = i * batch + world.rank * share
        share_of_batch = slice(start_of_share, start_of_share + share)
        real = images[order[share_of_batch]].to(device, non_blocking=True).float().mul_(scale).add_(low)  # -> G's range
        if device.type == "cuda" and images.device.type == "cpu":  # read from the file: laid out as in memory
            real = real.contiguous(memory_format=torch.channels_last)
        stats = step(
            real,
            labels[label_order[share_of_batch]],
            update_g=run_step % config.train.d_steps == 0,
        )  # n_critic counts over the run, not the epoch
        values = sums.add(stats)
        first_bad = torch.where((first_bad < 0) & ~torch.isfinite(values).all(), i + 1, first_bad)
        if (i + 1) % PROGRESS_EVERY == 0 and not bar.disable:
            bar.set_postfix({k: f"{v:.3g}" for k, v in sums.means().items()}, refresh=False)
            bar.update(PROGRESS_EVERY)
        if should_pause is not None and should_pause((i + 1) * batch, seconds_before + time.perf_counter() - start):
            done = i + 1
            if done < steps:
                state.position = {"step": done, "steps": steps, "shuffle": epoch_start_shuffle, "sums": sums.state()}
            break
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = seconds_before + time.perf_counter() - start
    if state.position is not None:
        state.position["seconds"] = seconds
    bar.close()
    sums.all_reduce(world)
    # the earliest bad step of any rank (a rank without one offers steps + 1, later than any)
    first_bad = all_reduce_min(torch.where(first_bad < 0, steps + 1, first_bad), world)
    if first_bad.item() <= steps:
        raise Diverged(int(first_bad.item()))
    return sums.means(), seconds, done * batch


def decay_learning_rates(state: TrainingState, fraction: float) -> None:
    """Both optimisers' learning rates at `fraction` of their base rate (the step's place in the run decides it,
    so resume needs no scheduler state)."""
    for optimiser in (state.opt_g, state.opt_d):
        for group in optimiser.param_groups:
            group["lr"] = group["base_lr"] * fraction

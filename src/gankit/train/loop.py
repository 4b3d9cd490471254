"""The epoch loop around the training step: shuffling, stats, grids, plots and checkpoints."""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

import torch
from tqdm import tqdm

from gankit.checkpoint import checkpoint_name, prune_checkpoints, save_checkpoint
from gankit.config import OutputConfig
from gankit.data import ImageSet
from gankit.models import to_uint8
from gankit.plots import plot_history, save_grid
from gankit.rundir import RunDir
from gankit.train.state import TrainingState, state_to_checkpoint
from gankit.train.step import STAT_NAMES, GANStep

log = logging.getLogger(__name__)

PROGRESS_EVERY = 25  # steps between progress-bar refreshes (each one reads the stats off the device)


def fit(state: TrainingState, run: RunDir, data: ImageSet, device: torch.device) -> None:
    """Train from `state.epoch` to the configured number of epochs, writing into `run`."""
    config = state.config
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
    elapsed = history[-1]["elapsed_seconds"] if history else 0.0
    if state.epoch >= config.train.epochs:
        log.info("nothing to do: the run has finished %d of %d epochs", state.epoch, config.train.epochs)
    for epoch in range(state.epoch + 1, config.train.epochs + 1):
        stats, seconds, n_images = run_epoch(step, images, state, epoch)
        state.epoch = epoch
        elapsed += seconds
        record = {"epoch": epoch, **stats, "images_per_s": n_images / seconds, "epoch_seconds": seconds,
                  "elapsed_seconds": elapsed}
        if device.type == "cuda":
            record["peak_gpu_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
        log.info("epoch %d/%d: D loss %.4f, G loss %.4f, D acc real %.3f / generated %.3f, %.0f img/s",
                 epoch, config.train.epochs, stats["d_loss"], stats["g_loss"], stats["d_acc_real"],
                 stats["d_acc_fake"], record["images_per_s"])
        if wants_grid(epoch, config.train.epochs, config.output):
            samples = sample_fixed(state, fixed_noise)
            save_grid(samples, run.grids / f"epoch-{epoch:04d}.png")
        history.append(record)
        run.append_metrics(record)
        plot_history(history, run.plot_path)
        # the checkpoint comes last: a crash before it replays this epoch, whose metrics line is dropped on resume
        save_checkpoint(run.checkpoints / checkpoint_name(epoch), state_to_checkpoint(state))
        prune_checkpoints(run.checkpoints, config.output.keep_checkpoints)


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
    state.G.train()
    state.D.train()
    bar = tqdm(total=steps, desc=f"epoch {epoch}/{config.train.epochs}", unit="step", leave=False,
               disable=not config.output.progress, file=sys.stderr, dynamic_ncols=True)
    start = time.perf_counter()
    for i in range(steps):
        real = images[order[i * batch:(i + 1) * batch]].float().mul_(scale).add_(low)  # uint8 -> G's range
        totals += step(real)
        if (i + 1) % PROGRESS_EVERY == 0 and not bar.disable:
            bar.set_postfix(_means(totals, i + 1, ("d_loss", "g_loss")), refresh=False)
            bar.update(PROGRESS_EVERY)
    if images.device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    bar.close()
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

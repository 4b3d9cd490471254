"""Everything a run carries from epoch to epoch, and its conversion to and from a checkpoint."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from gankit.augment import NO_AUGMENTATION, Augmentation, build_augmentation
from gankit.config import Config, model_difference
from gankit.errors import GankitError
from gankit.models import Generator, build_models
from gankit.rundir import place
from gankit.training.schedules import Schedules


@dataclass
class TrainingState:
    config: Config
    G: Generator
    D: nn.Module
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    shuffle: torch.Generator  # draws each epoch's order of the training images
    epoch: int = 0  # epochs finished
    G_ema: Generator | None = None  # the exponential moving average of G's weights (Config.keeps_ema)
    ema_updates: int = 0  # steps the average has taken (its warm-up counts them)
    data_fingerprint: str | None = None  # ImageSet.fingerprint of the training images: resume refuses other images
    # where the run stopped in an epoch it left part-way (train.kimg, train.minutes, a hook): the step, the steps of an
    # epoch, the shuffle stream at the epoch's start (its order is drawn again), the stats summed so far, the seconds
    position: dict[str, Any] | None = None
    augment: Augmentation = NO_AUGMENTATION  # what D sees of every image (train.diffaugment, train.ada_target)

    @property
    def sampler(self) -> Generator:
        """The generator grids and scores use: the EMA copy where there is one, unless output.sample_from is raw."""
        return self.G_ema if self.G_ema is not None and self.config.output.sample_from == "ema" else self.G


def check_fits(config: Config, device: torch.device, memory: int) -> None:
    """Refuse, before any weight is allocated, nets whose weights, gradients and Adam's two moments (and G's moving
    average) alone exceed `memory` bytes of `device`: the nets are built on the meta device, which allocates nothing."""
    with torch.random.fork_rng(devices=[]), torch.device("meta"):  # the same weights afterwards: no draw is kept
        G, D = build_models(config)
    values = [sum(p.numel() for p in net.parameters()) for net in (G, D)]
    copies_of_g = 4 + (1 if config.keeps_ema else 0)
    needed = 4 * (copies_of_g * values[0] + 4 * values[1])  # float32 bytes
    if needed > memory:
        raise GankitError(
            f"the model has {values[0]:,} parameters in G and {values[1]:,} in D: with their gradients "
            f"and Adam's moments they take {needed / 2**30:.1f} GiB, more than the {memory / 2**30:.1f} "
            f"GiB of {device.type} memory here; choose smaller model widths"
        )


def new_state(config: Config, device: torch.device) -> TrainingState:
    """Fresh nets and optimisers; the seed fixes weights, noise, dropout and shuffling."""
    torch.manual_seed(config.train.seed)
    G, D = build_models(config)
    G, D = G.to(device), D.to(device)
    t = config.train
    # fused Adam updates each tensor in one pass, on the CPU too (bench/speedups.py measures the gain)
    opt_g = torch.optim.Adam(G.parameters(), lr=t.lr_g, betas=(t.beta1, t.beta2), eps=t.adam_eps, fused=True)
    d_betas = (t.beta1 if t.beta1_d is None else t.beta1_d, t.beta2 if t.beta2_d is None else t.beta2_d)
    opt_d = torch.optim.Adam(D.parameters(), lr=t.lr_d, betas=d_betas, eps=t.adam_eps, fused=True)
    for optimiser in (opt_g, opt_d):  # the rate a schedule scales (train.lr_decay); saved with the optimiser
        for group in optimiser.param_groups:
            group["base_lr"] = group["lr"]
    shuffle = torch.Generator().manual_seed(t.seed)
    G_ema = copy.deepcopy(G).eval().requires_grad_(False) if config.keeps_ema else None
    augment = build_augmentation(config, G.value_range, device)
    return TrainingState(config, G, D, opt_g, opt_d, shuffle, G_ema=G_ema, augment=augment)


def state_to_checkpoint(state: TrainingState) -> dict[str, Any]:
    rng: dict[str, Any] = {"torch": torch.get_rng_state(), "shuffle": state.shuffle.get_state()}
    if torch.cuda.is_available():
        rng["cuda"] = torch.cuda.get_rng_state_all()
        device = _device(state)
        if device.type == "cuda":  # the training GPU's stream, which every rank restores into its own GPU
            rng["cuda_device"] = torch.cuda.get_rng_state(device)
    ema = (
        {"generator_ema": state.G_ema.state_dict(), "ema_updates": state.ema_updates} if state.G_ema is not None else {}
    )
    position = {"position": state.position} if state.position is not None else {}
    augment = state.augment.state_dict()  # ADA's p and its running sums; nothing for a fixed augmentation
    return {
        "epoch": state.epoch,  # with a position: the epoch left part-way
        **position,
        "config": state.config.to_dict(),
        "data_fingerprint": state.data_fingerprint,
        **ema,
        "generator": state.G.state_dict(),
        "discriminator": state.D.state_dict(),
        "opt_g": state.opt_g.state_dict(),
        "opt_d": state.opt_d.state_dict(),
        "rng": rng,
        **({"augment": augment} if augment else {}),
    }


def _device(state: TrainingState) -> torch.device:
    return next(state.G.parameters()).device


def restore_state(state: TrainingState, checkpoint: dict[str, Any], source: str) -> None:
    """Load nets, optimisers, RNG streams and epoch; a checkpoint of another model is refused."""
    problem = model_difference(checkpoint.get("config"), state.config)
    if problem:
        raise GankitError(f"{source} holds a different model than this run ({problem})")
    try:
        state.G.load_state_dict(checkpoint["generator"])
        if state.G_ema is not None:
            state.G_ema.load_state_dict(checkpoint["generator_ema"])
            state.ema_updates = int(checkpoint["ema_updates"])
        state.D.load_state_dict(checkpoint["discriminator"])
        state.opt_g.load_state_dict(checkpoint["opt_g"])
        state.opt_d.load_state_dict(checkpoint["opt_d"])
        state.augment.load_state_dict(checkpoint.get("augment", {}))
        torch.set_rng_state(checkpoint["rng"]["torch"])
        state.shuffle.set_state(checkpoint["rng"]["shuffle"])
        device = _device(state)
        if device.type == "cuda" and "cuda" in checkpoint["rng"]:
            # the training GPU's stream, whichever GPU and machine wrote it (older checkpoints: the first GPU's)
            saved = checkpoint["rng"].get("cuda_device", checkpoint["rng"]["cuda"][0])
            torch.cuda.set_rng_state(saved, device)
        state.position = checkpoint.get("position")
        state.epoch = int(checkpoint["epoch"]) - (1 if state.position is not None else 0)  # the epochs finished
    except (KeyError, RuntimeError, ValueError, TypeError, AttributeError, IndexError) as exc:
        raise GankitError(f"{source} does not fit this run: {str(exc).splitlines()[0][:200]}") from None


def checkpoint_place(state: TrainingState, record: dict[str, Any] | None) -> tuple[int, float]:
    """Where in the run a restored state stands, as `records.place` gives a record's: the checkpoint's `record`, else
    its epoch and position (a checkpoint written before checkpoints carried their record)."""
    if record is not None:
        return place(record)
    if state.position is not None:
        return state.epoch + 1, state.position["step"] / state.position["steps"]
    return state.epoch, 1.0


@torch.no_grad()
def standing_statistics(G: Generator, *, seed: int, batches: int = 16, batch_size: int = 64) -> None:
    """G's batch-norm statistics recomputed as a plain average over `batches` batches of its own images in training
    mode, the noise (and classes) drawn from a private generator seeded with `seed`: Brock et al.'s (2019) standing
    statistics. An EMA copy averages G's weights but copies G's statistics, which do not match the averaged weights
    early in a run: a narrow DCGAN's EMA samples were flat grey at epoch 2 where G's were not."""
    norms = [m for m in G.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return
    device = next(G.parameters()).device
    generator = torch.Generator(device=device).manual_seed(seed)
    momenta = [norm.momentum for norm in norms]
    was_training = G.training
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # a cumulative average
    G.train()
    try:
        for _ in range(batches):
            G(G.sample_noise(batch_size, generator=generator), G.sample_labels(batch_size, generator=generator))
    finally:
        for norm, momentum in zip(norms, momenta):
            norm.momentum = momentum
        G.train(was_training)


class EMAUpdate:
    """After each G update: G_ema ← decay·G_ema + (1 − decay)·G (buffers copied). The decay is train.ema_decay, 0
    (a copy of G) during the first `train.ema_warmup` G updates; or, with schedule.ema_kimg_end, the one of a half-life
    in images that the schedule ramps up from 0 (R3GAN's)."""

    def __init__(self, state: TrainingState):
        if state.G_ema is None:
            raise ValueError("an EMA update needs the state's G_ema (Config.keeps_ema)")
        self.state, self.G_ema = state, state.G_ema
        self.average: list[torch.Tensor] = list(state.G_ema.parameters())
        self.current: list[torch.Tensor] = list(state.G.parameters())
        schedules = Schedules.of(state.config)
        self.schedules = schedules if state.config.schedule.ema_kimg_end is not None else None

    def __call__(self, step: Any) -> None:
        t = self.state.config.train
        if self.schedules is not None:  # the images before this step: its D update is counted already
            images = (step.d_updates - 1) * t.batch_size
            decay = self.schedules.ema_decay(images, images_per_update=t.batch_size * t.d_steps)
        else:
            decay = 0.0 if self.state.ema_updates < t.ema_warmup else t.ema_decay
        with torch.no_grad():
            torch._foreach_lerp_(self.average, self.current, 1.0 - decay)
            for average, current in zip(self.G_ema.buffers(), self.state.G.buffers()):
                average.copy_(current)
        self.state.ema_updates += 1

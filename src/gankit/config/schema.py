"""The run configuration's schema: its five sections as dataclasses, their defaults and the choices a key takes."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any

NOISE_KINDS = ("normal", "uniform")
MLP_OUTPUTS = ("sigmoid", "tanh")
DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("fp32", "bf16")
ON_NAN = ("stop", "rollback")
ON_COLLAPSE = ("warn", "stop")
SAMPLE_FROM = ("ema", "raw")
MAX_GRID_SAMPLES = 4096
BATCH_ORDERS = ("epochs", "replacement")
G_NOISE = ("shared", "fresh")
IN_MEMORY = ("auto", "true", "false")
LR_DECAYS = ("none", "linear")
SCHEDULE_SHAPES = ("cosine", "linear")
SECTIONS = ("data", "model", "train", "schedule", "output")
EVERY_UNITS = {"epochs": "epochs", "kimg": "kimg", "min": "minutes"}  # as written in a schedule -> the clock's unit
EVERY_PATTERN = re.compile(r"^\s*((?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*(epochs|kimg|min)?\s*$")


@dataclass(frozen=True)
class Every:
    """A schedule read from a config value: every `amount` epochs, thousand images (kimg) or minutes of training."""

    amount: float
    unit: str  # epochs | kimg | minutes

    def __bool__(self) -> bool:
        return self.amount > 0


def every(value: int | str) -> Every:
    """The schedule a checked config value stands for: a whole number of epochs (20, "20 epochs"), "5kimg" or
    "10min"."""
    if isinstance(value, int):
        return Every(value, "epochs")
    match = EVERY_PATTERN.match(value)
    if match is None:
        raise ValueError(f"not a schedule: {value!r}")
    return Every(float(match.group(1)), EVERY_UNITS[match.group(2) or "epochs"])


@dataclass
class DataConfig:
    dataset: str = "mnist"  # a name of gankit.data.DATASETS: mnist | fashion-mnist | cifar10 | folder
    dir: str | None = None  # folder or archive holding it; None: gankit's cache (downloading there). Stored resolved
    image_size: int = 28  # side of the square image the model sees; MNIST is zero-padded up to it
    channels: int = 1  # 1 grey, 3 RGB
    limit: int | None = None  # train on the first N images only
    skip_bad_images: bool = False  # image folders: skip unreadable files (counted in the log) instead of failing
    classes: list[str] | None = None  # class names by label; filled from the data when a conditional run starts
    # auto (in memory or on the GPU when within memory_budget_gb, else read from disk) | true | false
    in_memory: str = "auto"
    # what auto may hold; 0: half the machine's memory, shared by the processes on it (on a GPU, a quarter of it)
    memory_budget_gb: float = 0.0


@dataclass
class ModelConfig:
    # a name of gankit.models.ARCHS: mlp (the report's GAN) | dcgan (the report's DCGAN) | resnet (SNGAN's) | r3gan
    arch: str = "mlp"
    noise_dim: int = 100  # length of the noise vector z
    noise: str = "normal"  # normal N(0, 1) | uniform U(-1, 1)
    g_hidden: list[int] = field(default_factory=lambda: [256, 512, 1024])  # mlp: G's hidden widths
    d_hidden: list[int] = field(default_factory=lambda: [1024, 512, 256])  # mlp: D's hidden widths
    dropout: float = 0.3  # mlp: dropout after each of D's hidden layers
    output: str = "sigmoid"  # mlp: G's output, sigmoid (pixels in [0, 1], the report's) | tanh (pixels in [-1, 1])
    base_channels: int = 64  # dcgan: D's first conv width, doubling per layer up to 8x; resnet: 32x32 G 4x, D 2x it
    spectral_norm: str = "none"  # spectral normalisation of the layers' weights: none | d | both (G's too)
    # dcgan, resnet: D sees its batch's spread (ProGAN's minibatch standard deviation) over groups of this many; 0: off
    minibatch_std: int = 0
    # r3gan: channels of each stage from 4x4 up to the image's side (G's order; D mirrors it); []: base_channels each
    widths: list[int] = field(default_factory=list)
    blocks: int = 2  # r3gan: residual blocks per stage
    expansion: int = 2  # r3gan: a block's first 1x1 convolution widens its channels this many times
    group_channels: int = 16  # r3gan: channels per group of a block's grouped 3x3 convolution
    # class labels: none | concat (cGAN, mlp) | projection (projection D) | acgan (classifier D)
    conditioning: str = "none"
    num_classes: int = 0  # classes of a conditional model; 0: as many as the data has (filled when the run starts)


@dataclass
class TrainConfig:
    epochs: int = 200  # passes over the training set
    batch_size: int = 128  # images per step; the last incomplete batch of an epoch is dropped
    loss: str = "nonsaturating"  # a name of gankit.losses.LOSSES, e.g. nonsaturating | minimax
    ema_decay: float = 0.0  # an exponential moving average of G's weights (e.g. 0.999), used for samples; 0: none
    ema_warmup: int = 0  # G updates during which the average copies G outright, before it starts averaging
    # DiffAugment's parts for D's inputs, real and generated, e.g. "color,translation,cutout"; "": none
    diffaugment: str = ""
    # ADA (Karras et al. 2020): D's images through a pipeline of changes, each with a probability p that rises while
    # D's E[sign D(x)] on real images is above this target (0.6 in the paper) and falls while below; None: off
    ada_target: float | None = None
    ada_kimg: float = 500.0  # thousands of images over which p can move from 0 to 1 (ADA's adjustment speed)
    ada_interval: int = 4  # D updates between adjustments of p
    r1_gamma: float = 0.0  # R1 penalty on real images, γ/2·E[‖∇D(x)‖²] (Mescheder et al. 2018); 0: off
    # lazy R1: the penalty on every k-th D update only, multiplied by k (StyleGAN2: 16); 1: every update
    r1_every: int = 1
    # R2 penalty on generated images, γ/2·E[‖∇D(G(z))‖²] (Roth et al. 2017; R3GAN with R1); 0: off
    r2_gamma: float = 0.0
    r2_every: int = 1  # lazy R2, as r1_every
    # WGAN-GP's gradient penalty λ·E[(‖∇D(x̂)‖ − 1)²] between real and fake images (10 in the paper); 0: off
    gp_lambda: float = 0.0
    # D updates per G update (n_critic; WGAN-GP and SNGAN use 5): G updates on every d_steps-th batch of the run
    d_steps: int = 1
    kimg: float | None = None  # end the run after this many thousand training images (if before train.epochs)
    minutes: float | None = None  # end the run after this many minutes of training steps (if before train.epochs)
    label_smoothing: float = 0.0  # BCE losses, one-sided: D's target for real images is 1 - label_smoothing
    # BCE losses: D's probability clipped to [c, 1 - c] first, as Keras's BCE does (1e-7); 0: exact
    probability_clip: float = 0.0
    lr_g: float = 2e-4  # Adam learning rate of G
    lr_d: float = 2e-4  # Adam learning rate of D
    beta1: float = 0.5  # Adam beta1 (of both nets, unless beta1_d is set)
    beta2: float = 0.999  # Adam beta2 (of both nets, unless beta2_d is set)
    beta1_d: float | None = None  # D's own Adam beta1; None: train.beta1
    beta2_d: float | None = None  # D's own Adam beta2; None: train.beta2
    lr_decay: str = "none"  # none | linear: both learning rates fall linearly to 0 over the run's steps (as in Mimicry)
    adam_eps: float = 1e-8  # Adam epsilon (torch's default; Keras's is 1e-7)
    batch_order: str = "epochs"  # epochs (each image once per epoch, in a fresh order) | replacement (each batch drawn anew, as Keras tutorials do)
    g_noise: str = "shared"  # G's update on the images D was just trained on (shared) | on a fresh noise batch (fresh), as Keras tutorials do
    seed: int = 0  # seeds weights, noise, dropout and shuffling
    device: str = "auto"  # auto (a GPU when there is one) | cpu | cuda
    precision: str = "fp32"  # fp32 | bf16 (autocast)
    compile: bool = False  # torch.compile the networks
    on_nan: str = "stop"  # a NaN/Inf loss: stop (checkpoints stay intact) | rollback (to the last checkpoint, lower lr)
    rollback_lr_factor: float = 0.5  # on rollback, both learning rates are multiplied by this
    collapse_epochs: int = 3  # D winning outright (accuracy >= 0.999 on both sides, then >= 0.99) this many epochs running is a collapse; 0: not watched
    # ... while G's loss is at least this; None: the loss's own (D sure of every fake)
    collapse_g_loss: float | None = None
    on_collapse: str = "warn"  # a collapse: warn (one line; metrics.jsonl and the report mark it) | stop (the run ends)
    # under torchrun on GPUs: batch norm's statistics over the global batch (SyncBatchNorm)
    sync_batch_norm: bool = False


@dataclass
class ScheduleConfig:
    # R3GAN's schedules (Huang et al. 2024): values that move from where train.* starts them to an end value over
    # the first `kimg` thousand images seen, then hold; read off the images seen, so a resumed run follows them exactly
    kimg: float | None = None  # None: nothing scheduled
    shape: str = "cosine"  # cosine (half a cosine wave, as R3GAN's) | linear
    lr_end: float | None = None  # both learning rates end at this fraction of train.lr_g and train.lr_d (R3GAN: 0.25)
    beta2_end: float | None = None  # Adam's beta2 of both nets ends here (R3GAN: from 0.9 to 0.99)
    gamma_end: float | None = None  # R1's and R2's γ end at this fraction of train.r1_gamma, r2_gamma (R3GAN: 0.1)
    # the half-life of G's moving average, in thousand images, rising from 0 (R3GAN: 5000 on CIFAR-10); instead of
    # train.ema_decay
    ema_kimg_end: float | None = None
    # ADA's pipeline of changes at a probability rising from 0 to this (R3GAN: 0.55 on CIFAR-10) instead of ADA's
    # adaptive one (train.ada_target)
    augment_p_end: float | None = None


@dataclass
class OutputConfig:
    # schedules: a whole number of epochs, or thousands of images ("5kimg") or minutes of training ("10min"), the work
    # then done at the first step at or past each mark, part-way through an epoch where it falls there
    grid_every: int | str = 20  # write a sample grid every N epochs (or kimg, or minutes)
    grid_first_epoch: bool = True  # and after epoch 1
    grid_samples: int = 64  # images in a grid (fixed noise, so grids compare across epochs)
    checkpoint_every: int | str = 1  # checkpoint the run every N epochs, kimg or minutes (and at its end)
    keep_checkpoints: int = 2  # newest checkpoints kept in the run folder
    progress: bool = True  # progress bar on stderr
    tensorboard: bool = False  # also write TensorBoard scalars and sample grids to RUN/tensorboard/
    report: bool = True  # write RUN/report.html and the grid animation when training ends
    eval_every: int | str = 0  # score the generator every N epochs, kimg or min (0: never); figures join metrics.jsonl
    eval_n: int = 5000  # generated and real images per score
    stop_on_plateau: int = 0  # end the run after this many scorings without a new lowest FID (0: never); best.pt stays
    # gankit.metrics.METRICS (empty: every default one the features can give); conditional runs add class_acc, intra_fid
    eval_metrics: list[str] = field(default_factory=list)
    # gankit.metrics.EXTRACTORS: evaluator (gankit's classifier for the data set; a contrastive encoder trained on the
    # images where it has none, such as a folder) | inception
    eval_features: str = "evaluator"
    # what grids, scores during training and the report's samples come from: ema (the average of G's weights, where
    # the run keeps one: train.ema_decay, schedule.ema_kimg_end) | raw (G's own weights)
    sample_from: str = "ema"


@dataclass
class Config:
    name: str = "custom"
    description: str = ""
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    output: OutputConfig = field(default_factory=OutputConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @property
    def keeps_ema(self) -> bool:
        """Whether the run keeps a moving average of G's weights (train.ema_decay or schedule.ema_kimg_end)."""
        return bool(self.train.ema_decay) or self.schedule.ema_kimg_end is not None


# names that changed, old -> new: configs, run folders and commands that use an old name keep working, and say the new
RENAMED_PRESETS = {
    "seed-gan-mnist": "report-gan-mnist",
    "seed-gan-fashion-mnist": "report-gan-fashion-mnist",
    "seed-dcgan-cifar10": "report-dcgan-cifar10",
}


RENAMED_KEYS = {"train.sampling": "train.batch_order"}
OLD_DEFAULT_METRICS = ["fid", "kid", "is", "pr", "coverage"]  # output.eval_metrics's default until 2026-12

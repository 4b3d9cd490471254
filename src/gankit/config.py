"""Typed run configuration: YAML presets plus `section.key=value` overrides, validated."""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import re
import types
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from gankit.errors import GankitError, short

log = logging.getLogger("gankit")

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
_EVERY = re.compile(r"^\s*((?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*(epochs|kimg|min)?\s*$")


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
    match = _EVERY.match(value)
    if match is None:
        raise ValueError(f"not a schedule: {value!r}")
    return Every(float(match.group(1)), EVERY_UNITS[match.group(2) or "epochs"])


def _coerce_every(value: Any, where: str) -> int | str:
    """A schedule as the config keeps it: epochs as a whole number, else text with its unit ("5kimg", "10min")."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float):  # YAML's reading of 2.5
        value = repr(value)
    match = _EVERY.match(value) if isinstance(value, str) else None
    if match is None:
        raise GankitError(
            f"{where}: expected a number of epochs, or one with a unit (5kimg, 10min), got {short(value)}"
        )
    number, unit = match.group(1), match.group(2) or "epochs"
    if unit == "epochs":
        if not float(number).is_integer():
            raise GankitError(f"{where}: a number of epochs is whole, got {short(value)}")
        return int(float(number))
    return f"{float(number):g}{unit}"


# keys a resumed run may change: they alter how long it runs, where it reads and what it writes, not its maths
# (but a linear lr decay spans train.epochs, so a longer run's rate steps up where it resumes; the trainer warns)
RESUMABLE = (
    "train.epochs",
    "train.kimg",
    "train.minutes",
    "train.device",
    "train.compile",
    "train.on_nan",
    "train.on_collapse",
    "train.collapse_",
    "data.dir",
    "data.in_memory",
    "data.memory_budget_gb",
    "output.",
    "description",
)


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


def preset_names() -> list[str]:
    folder = resources.files("gankit") / "presets"
    return sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))


def load_preset(name: str) -> Config:
    """The named preset shipped with gankit, its values checked (an old name is read as its new one)."""
    if name in RENAMED_PRESETS:
        log.warning("preset %s is now called %s", name, RENAMED_PRESETS[name])
        name = RENAMED_PRESETS[name]
    if name not in preset_names():
        raise GankitError(f"unknown preset '{name}' (known: {', '.join(preset_names())})")
    text = (resources.files("gankit") / "presets" / f"{name}.yaml").read_text()
    return config_from_dict(yaml.safe_load(text), source=f"preset '{name}'")


MAX_CONFIG_BYTES = 1 << 20  # a config is a few kB; reading megabytes of YAML takes minutes and gigabytes
MAX_CONFIG_DEPTH = 8  # a config nests sections, keys and lists: 3 levels


class _NoAliasLoader(yaml.SafeLoader):
    """YAML without anchors and aliases (a few hundred bytes of nested aliases expand to gigabytes) and not nested
    deeper than a config can be (thousands of brackets exhaust Python's recursion)."""

    depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            raise yaml.YAMLError("aliases (*name) are not accepted in a gankit config")
        if self.depth >= MAX_CONFIG_DEPTH:
            raise yaml.YAMLError(
                f"values nested deeper than {MAX_CONFIG_DEPTH} levels are not accepted in a gankit config"
            )
        self.depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


def load_config_file(path: Path) -> Config:
    try:
        size = path.stat().st_size
        if size > MAX_CONFIG_BYTES:
            raise GankitError(f"config {path} has {size:,} bytes; a gankit config has at most {MAX_CONFIG_BYTES:,}")
        data = yaml.load(path.read_text(), Loader=_NoAliasLoader)  # noqa: S506  (a safe loader, aliases refused)
    except OSError as exc:
        raise GankitError(f"cannot read config {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise GankitError(f"config {path} is not a text file") from None
    except yaml.YAMLError as exc:
        raise GankitError(f"config {path} is not valid YAML: {str(exc).splitlines()[0][:200]}") from None
    try:
        return config_from_dict(data, source=str(path))
    except GankitError as exc:  # every message names the file that holds the value
        message = str(exc)
        raise GankitError(
            message if message.startswith(str(path)) else f"{path}: {message}", option=exc.options
        ) from None


def config_from_dict(data: Any, *, source: str = "config") -> Config:
    """Build a Config from nested dicts; unknown keys and wrong types are user errors."""
    if not isinstance(data, dict):
        raise GankitError(f"{source}: expected a mapping of sections, got {type(data).__name__}")
    config = Config()
    for key, value in data.items():
        if key in ("name", "description"):
            setattr(config, key, _coerce(value, str, f"{source}: {key}"))
            continue
        _section(config, key, source)
        if not isinstance(value, dict):
            raise GankitError(f"{source}: section '{key}' must be a mapping")
        for sub, sub_value in value.items():
            set_value(config, f"{key}.{sub}", sub_value, source=source)
    if config.output.eval_metrics == OLD_DEFAULT_METRICS:  # what runs wrote before [] meant "every default"
        config.output.eval_metrics = []
    check_values(config)
    return config


def apply_overrides(config: Config, overrides: list[str]) -> Config:
    """Apply `section.key=value` strings; values are read as YAML scalars or lists."""
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise GankitError(f"override '{item}' must read key=value", option="override")
        try:
            value = yaml.load(raw, Loader=_NoAliasLoader) if raw.strip() else ""  # noqa: S506
        except yaml.YAMLError:
            value = raw
        try:
            set_value(config, key.strip(), value, source="override")
        except GankitError as exc:
            raise GankitError(str(exc), option="override") from None
    check_values(config)
    return config


def set_value(config: Config, dotted: str, value: Any, *, source: str) -> None:
    if dotted in RENAMED_KEYS:  # a config file or a command that uses an old name
        if source == "override":
            log.warning("%s is now called %s", dotted, RENAMED_KEYS[dotted])
        dotted = RENAMED_KEYS[dotted]
    section_name, _, key = dotted.partition(".")
    section = _section(config, section_name, source)
    if not key or "." in key or key not in {f.name for f in dataclasses.fields(section)}:
        raise GankitError(f"{source}: unknown config key {short(dotted)} (known: {', '.join(known_keys())})")
    hint = typing.get_type_hints(type(section))[key]
    if dotted == "data.in_memory" and isinstance(value, bool):  # YAML reads a bare true / false as a boolean
        value = "true" if value else "false"
    setattr(section, key, _coerce(value, hint, f"{source}: {dotted}"))


def known_keys() -> list[str]:
    keys = []
    defaults = Config()
    for section in SECTIONS:
        keys += [f"{section}.{f.name}" for f in dataclasses.fields(getattr(defaults, section))]
    return keys


def _section(config: Config, name: str, source: str) -> Any:
    if name not in SECTIONS:
        raise GankitError(f"{source}: unknown config key {short(name)} (known: {', '.join(known_keys())})")
    return getattr(config, name)


def _coerce(value: Any, hint: Any, where: str) -> Any:
    if hint == int | str:  # the one union of two types: a schedule
        return _coerce_every(value, where)
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(hint)
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _coerce(value, inner, where)
    if origin is list:
        (inner,) = typing.get_args(hint)
        if isinstance(value, tuple):  # built in Python
            value = list(value)
        if not isinstance(value, list):
            raise GankitError(f"{where}: expected a list, got {short(value)}")
        return [_coerce(v, inner, where) for v in value]
    if hint is bool:
        if isinstance(value, bool):
            return value
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            if abs(value) >= 2**63:
                raise GankitError(f"{where}: {short(value)} is too large (whole numbers are below 2^63)")
            return value
    elif hint is float:
        if isinstance(value, str):  # YAML 1.1 reads "1e-4" (no dot) as a string
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if not math.isfinite(value):
                raise GankitError(f"{where}: expected a finite number, got {short(value)}")
            return float(value)
    elif hint is str:
        if isinstance(value, os.PathLike):  # data.dir as a Path, built in Python
            value = os.fspath(value)
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
    raise GankitError(f"{where}: expected {hint.__name__}, got {short(value)}")


def _check_types(config: Config) -> None:
    """Every value of the declared type (an int where a whole number is declared, say), as loading a file checks."""
    for name in ("name", "description"):
        setattr(config, name, _coerce(getattr(config, name), str, name))
    for section_name in SECTIONS:
        section = getattr(config, section_name)
        hints = typing.get_type_hints(type(section))
        for f in dataclasses.fields(section):
            setattr(section, f.name, _coerce(getattr(section, f.name), hints[f.name], f"{section_name}.{f.name}"))


def check_values(config: Config) -> None:
    """Check types, scalar ranges and the schema's own choices (a Config built in Python too); every message names
    the key. What the registries know (names of data sets, models, losses, metrics, and the rules that cross
    them) is checked above them, by `gankit.checks.validate`."""
    _check_types(config)
    d, m, t, o = config.data, config.model, config.train, config.output
    choice("model.noise", m.noise, NOISE_KINDS)
    choice("model.output", m.output, MLP_OUTPUTS)
    if m.num_classes < 0 or m.num_classes == 1:
        raise GankitError(f"model.num_classes must be 0 (from the data) or at least 2, got {m.num_classes}")
    if m.conditioning == "none" and (m.num_classes or d.classes):
        raise GankitError("model.num_classes and data.classes are for conditional models: set model.conditioning")
    if d.classes is not None and m.num_classes and len(d.classes) != m.num_classes:
        raise GankitError(f"data.classes names {len(d.classes)} classes; model.num_classes is {m.num_classes}")
    choice("train.device", t.device, DEVICES)
    choice("train.precision", t.precision, PRECISIONS)
    choice("train.on_nan", t.on_nan, ON_NAN)
    choice("train.on_collapse", t.on_collapse, ON_COLLAPSE)
    choice("train.batch_order", t.batch_order, BATCH_ORDERS)
    choice("train.g_noise", t.g_noise, G_NOISE)
    choice("data.in_memory", config.data.in_memory, IN_MEMORY)
    if config.data.memory_budget_gb < 0:
        raise GankitError(f"data.memory_budget_gb must be >= 0, got {config.data.memory_budget_gb}")
    positive("train.adam_eps", t.adam_eps)
    if not 0.0 <= t.probability_clip < 0.5:
        raise GankitError(f"train.probability_clip must be in [0, 0.5), got {t.probability_clip}")
    if t.collapse_epochs < 0:
        raise GankitError(f"train.collapse_epochs must be >= 0, got {t.collapse_epochs}")
    if not 0.0 < t.rollback_lr_factor < 1.0:
        raise GankitError(f"train.rollback_lr_factor must be in (0, 1), got {t.rollback_lr_factor}")
    positive("data.image_size", d.image_size)
    choice("data.channels", d.channels, (1, 3))
    if d.limit is not None:
        positive("data.limit", d.limit)
    positive("model.noise_dim", m.noise_dim)
    for key, widths in (("model.g_hidden", m.g_hidden), ("model.d_hidden", m.d_hidden)):
        if not widths or any(w <= 0 for w in widths):
            raise GankitError(f"{key} must be a non-empty list of positive widths, got {widths}")
    if not 0.0 <= m.dropout < 1.0:
        raise GankitError(f"model.dropout must be in [0, 1), got {m.dropout}")
    positive("model.base_channels", m.base_channels)
    if m.minibatch_std < 0 or m.minibatch_std == 1:
        raise GankitError(f"model.minibatch_std is a group size of at least 2 (0: off), got {m.minibatch_std}")
    positive("train.epochs", t.epochs)
    for key in ("kimg", "minutes"):
        if getattr(t, key) is not None:
            positive(f"train.{key}", getattr(t, key))
    positive("train.batch_size", t.batch_size)
    if not 0.0 <= t.label_smoothing < 0.5:
        raise GankitError(f"train.label_smoothing must be in [0, 0.5), got {t.label_smoothing}")
    if not 0.0 <= t.ema_decay < 1.0:
        raise GankitError(f"train.ema_decay must be in [0, 1), got {t.ema_decay}")
    if t.ema_warmup < 0:
        raise GankitError(f"train.ema_warmup must be >= 0, got {t.ema_warmup}")
    positive("train.d_steps", t.d_steps)
    for key in ("lr_g", "lr_d"):
        positive(f"train.{key}", getattr(t, key))
    choice("train.lr_decay", t.lr_decay, LR_DECAYS)
    for key in ("beta1", "beta2", "beta1_d", "beta2_d"):
        if getattr(t, key) is not None and not 0.0 <= getattr(t, key) < 1.0:
            raise GankitError(f"train.{key} must be in [0, 1), got {getattr(t, key)}")
    if not 0 <= t.seed < 2**32:
        raise GankitError(f"train.seed must be in [0, 2^32), got {t.seed}")
    for key in ("grid_every", "checkpoint_every"):
        positive(f"output.{key}", every(getattr(o, key)).amount)  # every() reads an int as that many epochs
    if every(o.eval_every).amount < 0:
        raise GankitError(f"output.eval_every must be >= 0, got {o.eval_every}")
    if o.stop_on_plateau < 0:
        raise GankitError(f"output.stop_on_plateau must be >= 0, got {o.stop_on_plateau}")
    if o.stop_on_plateau and not every(o.eval_every):
        raise GankitError("output.stop_on_plateau needs scores during training: set output.eval_every too")
    positive("output.grid_samples", o.grid_samples)
    if o.grid_samples > MAX_GRID_SAMPLES:
        raise GankitError(
            f"output.grid_samples is at most {MAX_GRID_SAMPLES} (a {int(MAX_GRID_SAMPLES**0.5)}-wide grid), "
            f"got {o.grid_samples}"
        )
    positive("output.keep_checkpoints", o.keep_checkpoints)
    choice("output.sample_from", o.sample_from, SAMPLE_FROM)
    _check_schedule(config)


def _check_schedule(config: Config) -> None:
    s, t = config.schedule, config.train
    choice("schedule.shape", s.shape, SCHEDULE_SHAPES)
    ends = {"lr_end": s.lr_end, "beta2_end": s.beta2_end, "gamma_end": s.gamma_end}
    ends |= {"ema_kimg_end": s.ema_kimg_end, "augment_p_end": s.augment_p_end}
    named = [key for key, value in ends.items() if value is not None]
    if s.kimg is None:
        if named:
            raise GankitError(f"schedule.{named[0]} needs schedule.kimg, the images over which it moves")
        return
    positive("schedule.kimg", s.kimg)
    if s.lr_end is not None and s.lr_end < 0:
        raise GankitError(f"schedule.lr_end is a fraction of the starting rates, >= 0; got {s.lr_end}")
    if s.lr_end is not None and t.lr_decay != "none":
        raise GankitError("schedule.lr_end and train.lr_decay each change the learning rates: choose one")
    if s.beta2_end is not None and not 0.0 <= s.beta2_end < 1.0:
        raise GankitError(f"schedule.beta2_end must be in [0, 1), got {s.beta2_end}")
    if s.gamma_end is not None:
        if s.gamma_end < 0:
            raise GankitError(f"schedule.gamma_end is a fraction of the starting γ, >= 0; got {s.gamma_end}")
        if not (t.r1_gamma or t.r2_gamma):
            raise GankitError("schedule.gamma_end scales R1 and R2: set train.r1_gamma or train.r2_gamma")
    if s.ema_kimg_end is not None:
        positive("schedule.ema_kimg_end", s.ema_kimg_end)
        if t.ema_decay or t.ema_warmup:
            raise GankitError(
                "schedule.ema_kimg_end sets G's moving average from a copy of G up: it goes with neither "
                "train.ema_decay nor train.ema_warmup"
            )
    if s.augment_p_end is not None and not 0.0 <= s.augment_p_end <= 1.0:
        raise GankitError(f"schedule.augment_p_end is a probability in [0, 1], got {s.augment_p_end}")


def check_resume(stored: Config, wanted: Config) -> None:
    """Refuse a resumed run whose config changes the maths; equal values and `RESUMABLE` keys pass."""
    change = maths_change(stored.to_dict(), wanted.to_dict())
    if change:
        key, old, new = change
        raise GankitError(
            f"cannot change {key} from {short(old)} to {short(new)} when resuming: "
            "it would change the run's maths (start a new run)"
        )


def maths_change(old: dict[str, Any], new: dict[str, Any]) -> tuple[str, Any, Any] | None:
    """The first key of `old` (a config as a dict) whose value `new` changes, other than `RESUMABLE` keys, with both
    values; None where they agree. A key `old` lacks (written before it existed) is not compared."""
    flat_new = _flatten(new)
    for old_key, value in _flatten(old).items():
        key = RENAMED_KEYS.get(old_key, old_key)  # a checkpoint may name keys by their old names
        new_value = flat_new.get(key)
        if key == "name":  # either side may name a preset by its old name
            value, new_value = _current_name(value), _current_name(new_value)
        if new_value != value and not key.startswith(RESUMABLE):
            return key, value, new_value
    return None


def _current_name(name: Any) -> Any:
    return RENAMED_PRESETS.get(name, name) if isinstance(name, str) else name


def model_difference(saved: Any, config: Config) -> str | None:
    """What differs between a checkpoint's model config and `config`'s, in words; None if they agree.

    A key the checkpoint lacks (written before the key existed) counts as its default."""
    ours = config.to_dict()["model"]
    theirs = saved.get("model") if isinstance(saved, dict) else None
    if not isinstance(theirs, dict):
        return "it records no model"
    theirs = {**dataclasses.asdict(ModelConfig()), **theirs}
    for key in sorted(set(ours) | set(theirs)):
        if theirs.get(key) != ours.get(key):
            return f"model.{key} is {theirs.get(key)!r} there, {ours.get(key)!r} here"
    return None


def _flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def choice(key: str, value: Any, choices: tuple) -> None:
    if value not in choices:
        raise GankitError(f"{key} must be one of {', '.join(map(str, choices))}; got {short(value)}")


def positive(key: str, value: float) -> None:
    if value <= 0:
        raise GankitError(f"{key} must be positive, got {short(value)}")

"""The values a config may hold: ranges and the schema's own choices, each refusal naming its key."""

from __future__ import annotations

from typing import Any

from gankit.config.coerce import check_types
from gankit.config.schema import (
    BATCH_ORDERS,
    DEVICES,
    G_NOISE,
    IN_MEMORY,
    LR_DECAYS,
    MAX_GRID_SAMPLES,
    MLP_OUTPUTS,
    NOISE_KINDS,
    ON_COLLAPSE,
    ON_NAN,
    PRECISIONS,
    SAMPLE_FROM,
    SCHEDULE_SHAPES,
    Config,
    every,
)
from gankit.errors import GankitError, short


def check_values(config: Config) -> None:
    """Check types, scalar ranges and the schema's own choices (a Config built in Python too); every message names
    the key. What the registries know (names of data sets, models, losses, metrics, and the rules that cross
    them) is checked above them, by `gankit.checks.validate`."""
    check_types(config)
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


def choice(key: str, value: Any, choices: tuple) -> None:
    if value not in choices:
        raise GankitError(f"{key} must be one of {', '.join(map(str, choices))}; got {short(value)}")


def positive(key: str, value: float) -> None:
    if value <= 0:
        raise GankitError(f"{key} must be positive, got {short(value)}")

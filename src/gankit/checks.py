"""The checks of a whole config, above the registries: each registry entry checks its own part (a data set its
shape, an arch its sizes and conditionings, a loss its parameters, a metric where it applies), and the rules that
cross them live here. The command line and `gankit.train` run `validate` before any folder exists."""

from __future__ import annotations

import logging

from gankit import augment
from gankit.config import Config, check_values, choice, every, positive
from gankit.data import DATASETS
from gankit.errors import GankitError
from gankit.losses import LOSSES, build_loss
from gankit.metrics import EXTRACTORS, METRICS, check_applicable, fewest_samples, scored_metrics
from gankit.models import ARCHS, CONDITIONING, SPECTRAL_NORM
from gankit.regularisers import PENALTIES

log = logging.getLogger("gankit")


def validate(config: Config, *, source: str | None = None) -> None:
    """Refuse a config that cannot train (types, ranges, names, and how they combine); every message names a key,
    after `source` (the file that holds the config) where given."""
    try:
        _validate(config)
    except GankitError as exc:
        if source is None or str(exc).startswith(source):
            raise
        raise GankitError(f"{source}: {exc}", option=exc.options) from None


def _validate(config: Config) -> None:
    check_values(config)
    d, m, t, o = config.data, config.model, config.train, config.output
    choice("data.dataset", d.dataset, DATASETS.names())
    choice("model.arch", m.arch, ARCHS.names())
    choice("model.spectral_norm", m.spectral_norm, SPECTRAL_NORM)
    choice("model.conditioning", m.conditioning, CONDITIONING)
    ARCHS[m.arch].check(config)
    DATASETS[d.dataset].check(d)
    choice("train.loss", t.loss, LOSSES.names())
    build_loss(t)  # the loss accepts the parameters the config gives it
    augment.check(config)
    _check_penalties(config)
    for name in o.eval_metrics:
        choice("output.eval_metrics", name, METRICS.names())
    least, needing = fewest_samples(scored_metrics(config))
    if (
        every(o.eval_every) and o.eval_n < least
    ):  # only a run that scores: older folders may hold a smaller unused value
        raise GankitError(f"output.eval_n must be at least {least} (metric {needing} needs them), got {o.eval_n}")
    choice("output.eval_features", o.eval_features, EXTRACTORS.names())
    if every(o.eval_every):  # only a run that scores: what it would score must apply
        try:
            check_applicable(o.eval_metrics, m.conditioning != "none", o.eval_features, d.dataset)
        except GankitError as exc:
            raise GankitError(f"output.eval_metrics: {exc}") from None
        if o.stop_on_plateau and "fid" not in scored_metrics(config):
            raise GankitError("output.stop_on_plateau watches FID: add fid to output.eval_metrics")


def check_new_run(config: Config, *, own_d_terms: bool) -> None:
    """The rules for starting a run (a run trained before one existed still resumes). `own_d_terms`: the caller adds
    terms of its own to D's loss."""
    t = config.train
    if t.gp_lambda and ARCHS[config.model.arch].d_batch_norm:
        log.warning(
            "train.gp_lambda with batch norm in D (model.arch %s): the penalty is on each image's own "
            "gradient, which batch norm mixes across the batch; Gulrajani et al. leave it out of the critic",
            config.model.arch,
        )
    if t.loss == "wgan" and not t.gp_lambda and config.model.spectral_norm == "none" and not own_d_terms:
        # an unconstrained critic's loss has no floor: its outputs run off and the game means nothing
        raise GankitError(
            "train.loss wgan needs D kept Lipschitz: set train.gp_lambda (10 in WGAN-GP) or "
            "model.spectral_norm d (or pass a term of D's loss of your own)"
        )


def warn_risky(config: Config) -> None:
    """Log what trains, but worse than it might."""
    if config.train.precision == "bf16" and config.model.arch == "mlp" and config.model.output == "sigmoid":
        log.warning(
            "bf16 with the sigmoid-output MLP: its saturating output makes D win for good on some seeds in bf16 "
            "that live in fp32; fp32 is safer for this model, and gan-mnist-tanh trains in bf16 (the docs' Speed page)"
        )


def _check_penalties(config: Config) -> None:
    t = config.train
    for entry in PENALTIES.entries():
        weight = getattr(t, entry.weight_key)
        if weight < 0:
            raise GankitError(f"train.{entry.weight_key} must be >= 0, got {weight}")
        if entry.every_key:
            every = getattr(t, entry.every_key)
            positive(f"train.{entry.every_key}", every)
            if every > 1 and not weight:
                raise GankitError(
                    f"train.{entry.every_key} {every} makes the {entry.title} penalty lazy, but "
                    f"train.{entry.weight_key} is 0 (no penalty)"
                )
        if weight and t.compile:
            raise GankitError(
                f"train.{entry.weight_key} needs the gradient of a gradient, which torch.compile'd modules "
                "do not give: turn off train.compile"
            )

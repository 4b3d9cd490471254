"""`train`: a config and a run folder in, a trained run out. The CLI's `gankit train` is this function."""

from __future__ import annotations

import copy
import dataclasses
import logging
from pathlib import Path
from typing import Any

import torch

from gankit.checkpoint import check_records_agree, list_checkpoints, newest_checkpoint
from gankit.checks import check_new_run, validate, warn_risky
from gankit.config import Config, check_resume, every, maths_change
from gankit.data import DATASETS, load_images
from gankit.data.locate import resolve_data_dir
from gankit.data.placement import device_memory, place_images
from gankit.device import check_precision, resolve_device
from gankit.errors import GankitError, short
from gankit.evaluate import make_scorer
from gankit.metrics import scored_metrics
from gankit.models import CONDITIONINGS
from gankit.run import Run, load_run
from gankit.rundir import RunDir
from gankit.training.callbacks import default_callbacks
from gankit.training.distributed import (
    World,
    barrier,
    check_options,
    device_for,
    join,
    local_main_first,
    lost_partner,
    made_by_this_job,
    mark_job,
    on_main,
    restarted,
)
from gankit.training.hooks import NO_HOOKS, Hooks
from gankit.training.loop import fit
from gankit.training.state import TrainingState, check_fits, checkpoint_place, new_state, restore_state

log = logging.getLogger("gankit")


def train(
    config: Config | None,
    run_dir: Path | str,
    *,
    data_dir: Path | str | None = None,
    resume: bool = False,
    hooks: Hooks = NO_HOOKS,
) -> Run | None:
    """Train `config` into the new run folder `run_dir`, or with `resume` continue the run there.

    Resuming takes the folder's config when `config` is None; a given config may change only how
    long the run goes and what it writes (equal values pass). The data come from `data_dir`, else
    the run's remembered `data.dir`, else $GANKIT_DATA_DIR, else gankit's cache. `hooks` adds the
    caller's per-epoch callbacks, loss terms and after-step functions (see `Hooks`).

    Started by torchrun, each process trains on its share of every batch, and rank 0 alone writes the
    run folder and returns the Run (the others return None). When torchrun restarts the group after a
    failure, the run continues from its last checkpoint as if `resume` were given.
    """
    world = join()
    run = RunDir(Path(run_dir))
    resume = resume or (restarted() and on_main(world, lambda: made_by_this_job(run.path)))
    if resume and world.main and run.exists():
        run.lock()  # held from here on: a second process on this folder is refused before any work
    try:
        return _train(config, run, None if data_dir is None else Path(data_dir), resume, hooks, world)
    finally:
        run.unlock()


def _train(
    config: Config | None, run: RunDir, data_dir: Path | None, resume: bool, hooks: Hooks, world: World
) -> Run | None:
    config = on_main(world, lambda: _resolve_config(config, run, resume))
    root = resolve_data_dir(data_dir, config.data.dir)
    config.data.dir = str(root) if root is not None else None  # remembered: later commands need no data_dir
    if (
        root is not None
        and DATASETS[config.data.dataset].needs_dir
        and run.path.resolve().is_relative_to(root.resolve())
    ):
        raise GankitError(
            f"the run folder {run.path} is inside the data folder {root}: its grids would be read as "
            "training images; choose a run folder outside it",
            option="run_dir",
        )
    device = device_for(resolve_device(config.train.device), world)
    check_precision(config.train.precision, device)
    if not resume:
        check_new_run(config, own_d_terms=any(term.net == "D" for term in hooks.terms))
    warn_risky(config)
    check_options(config, device, world)
    if config.output.tensorboard:
        from gankit.tensorboard import check_available

        check_available()
    with local_main_first(world):  # one process per machine decodes into the cache, the others read it
        data = load_images(config.data)  # before the run folder exists: bad data leaves nothing behind
        log.info("training on %d images of shape %s from %s", len(data), tuple(data.images.shape[1:]), data.source)
        fingerprint = data.fingerprint()
        real = reference_images(data.images, config.output.grid_samples, seed=config.train.seed)
        data = place_images(data, config.data, device, world.local_size)
    if len(data) < config.train.batch_size:
        raise GankitError(f"{len(data)} images are fewer than one batch of {config.train.batch_size}")
    o = config.output
    CONDITIONINGS[config.model.conditioning].take_classes(config, data.classes, data.source)
    metrics = scored_metrics(config)
    check_fits(config, device, device_memory(device))  # before the scorer, which may train an evaluator for minutes
    scorer = (
        make_scorer(config, n=o.eval_n, metrics=metrics, features=o.eval_features, progress=o.progress)
        if every(o.eval_every) and world.main
        else None
    )
    state = new_state(config, device)
    state.data_fingerprint = fingerprint
    new_folder = not resume and not run.path.exists()
    if resume:
        _restore(run, state, world)
    elif world.main:
        run.create(config)
        mark_job(run.path)
    barrier(world)
    batch = config.train.batch_size
    where = f", {world.size} processes (batch {batch} = {world.size} x {batch // world.size})" if world.launched else ""
    log.info("run folder %s, device %s%s, %d epochs", run.path, device, where, config.train.epochs)
    try:
        callbacks = default_callbacks(config, run, state.G, scorer, hooks.callbacks, real) if world.main else []
        stopped = fit(
            state,
            run,
            data.images,
            device,
            dataclasses.replace(hooks, callbacks=callbacks),
            labels=CONDITIONINGS[config.model.conditioning].run_labels(data.labels),
            world=world,
            in_memory=not data.mapped,
        )
    except BaseException as exc:
        if world.main and not resume and not list_checkpoints(run.checkpoints):
            run.discard(remove_folder=new_folder)  # nothing worth keeping: the same command can run again
        if lost_partner(exc, world):
            raise GankitError(
                f"process {world.rank} of {world.size} lost the others (one failed or was stopped; "
                f"torchrun's --max-restarts resumes the run from its last checkpoint): "
                f"{str(exc).strip().splitlines()[0][:160]}"
            ) from None
        raise
    if not world.main:
        return None
    if stopped:
        log.warning("%s", stopped)
    result = load_run(run.path)
    if o.report:
        log.info("report: %s", result.report())
    return result


def reference_images(images: torch.Tensor, n: int, *, seed: int) -> torch.Tensor:
    """`n` training images (as many as there are, if fewer) drawn with a private generator seeded by `seed`, on the
    CPU: the real side of the sample-spread watch. Torch's own RNG is left alone."""
    picked = torch.randperm(images.shape[0], generator=torch.Generator().manual_seed(seed + 2))[:n]
    return images[picked.sort().values].cpu()


def _resolve_config(config: Config | None, run: RunDir, resume: bool) -> Config:
    if resume:
        stored = run.load_config()
        if config is None:
            validate(stored, source=str(run.config_path))
            return stored
        # the same command again, without what the run filled in itself: it remembers its data and classes
        config = copy.deepcopy(config)
        if config.data.dir is None:
            config.data.dir = stored.data.dir
        if config.data.classes is None:
            config.data.classes = stored.data.classes
        if not config.model.num_classes:
            config.model.num_classes = stored.model.num_classes
        validate(config)
        check_resume(stored, config)
        if config.train.lr_decay == "linear" and config.train.epochs != stored.train.epochs:
            log.warning(
                "train.epochs %d -> %d: the linear learning-rate decay now spans %d epochs, so the rate "
                "where the run resumes changes",
                stored.train.epochs,
                config.train.epochs,
                config.train.epochs,
            )
        return config
    if config is None:
        raise GankitError("a new run needs a config")
    if run.exists() or list_checkpoints(run.checkpoints):
        raise GankitError(
            f"{run.path} already holds a run; continue it with resume or choose another run_dir",
            option=("resume", "run_dir"),
        )
    if run.path.exists() and (not run.path.is_dir() or any(run.path.iterdir())):
        raise GankitError(
            f"{run.path} already holds files that are not a gankit run; choose a new or empty run_dir", option="run_dir"
        )
    config = copy.deepcopy(config)
    validate(config)  # a Config built in Python is checked as a file is, before any folder exists
    return config


def _check_config_agrees(run: RunDir, config: Config, checkpoint: dict[str, Any], source: str) -> None:
    """Refuse a resume whose config (config.yaml, edited say, and the command's changes) differs from the config the
    checkpoint was trained with in anything but how long the run goes and what it writes."""
    saved = checkpoint.get("config")
    change = maths_change(saved, config.to_dict()) if isinstance(saved, dict) else None
    if change:
        key, trained, wanted = change
        raise GankitError(
            f"{key} is {short(wanted)} in {run.config_path}, but {source} was trained with "
            f"{short(trained)}: put it back to resume the run, or start a new run"
        )


def _restore(run: RunDir, state: TrainingState, world: World) -> None:
    """Restore the newest checkpoint (rank 0 reads it, every rank restores it), and cut the metrics back to it."""
    checkpoint, source = on_main(world, lambda: newest_checkpoint(run))
    record = None
    if checkpoint is not None:
        restore_state(state, checkpoint, source)  # refuses another model's checkpoint
        record = checkpoint.get("record")
        _check_config_agrees(run, state.config, checkpoint, source)
        trained_on = checkpoint.get("data_fingerprint")  # absent from checkpoints written before it was kept
        if trained_on is not None and trained_on != state.data_fingerprint:
            raise GankitError(
                f"the images in {state.config.data.dir} are not the ones {source} was trained on (their "
                "fingerprints differ): give the run's own data with data_dir",
                option="data_dir",
            )
    position = state.position  # of an epoch left part-way
    at = checkpoint_place(state, record)
    on_main(world, lambda: check_records_agree(run, at, record, source))
    if position is not None:
        log.info("resuming %s in epoch %d, at step %d", run.path, state.epoch + 1, position["step"])
    elif checkpoint is not None:
        log.info("resuming %s after epoch %d", run.path, state.epoch)
    else:
        log.info("%s has no checkpoint yet: starting it from epoch 1", run.path)
    if world.main:
        run.ensure_folders()
        run.keep_metrics_through(at, record)
        run.save_config(state.config)

"""What each `gankit` command does: maps its options onto the library's calls and prints the outcome."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from gankit.config import (
    RENAMED_PRESETS,
    Config,
    DataConfig,
    apply_overrides,
    load_config_file,
    load_preset,
    preset_names,
)
from gankit.errors import GankitError

if TYPE_CHECKING:
    from gankit.run import Run

log = logging.getLogger("gankit")

FOLDER_PRESET = "sngan-small-data"  # the recipe for a folder of one's own images: its data settings are the defaults


def _counts(result: dict) -> str:
    """The sample count of a score, and the real one where it differs (modes scores more samples than real images)."""
    generated, real = result["n_generated"], result["n_real"]
    return f"{generated}" if generated == real else f"{generated} generated, {real} real"


def cmd_presets(args: argparse.Namespace) -> int:
    for name in preset_names():
        config = load_preset(name)
        print(f"{name:24s} {config.data.dataset:14s} {config.model.arch:6s} {config.train.epochs:4d} epochs")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from gankit.launch import launch
    from gankit.rundir import RunDir
    from gankit.training.distributed import join, launched_by_torchrun, leave
    from gankit.training.trainer import train

    if args.nproc_per_node is not None and not launched_by_torchrun():
        return launch(args.argv, args.nproc_per_node)
    if not join().main:
        log.setLevel(logging.ERROR)  # under torchrun rank 0 speaks for the group

    overrides = _flag_overrides(args) + args.overrides
    if args.resume:
        if args.out is None:
            raise GankitError("--resume needs --out naming the run folder to continue")
        stored = RunDir(args.out).load_config()
        same = RENAMED_PRESETS.get(args.preset, args.preset) == RENAMED_PRESETS.get(stored.name, stored.name)
        if args.preset and not same and not args.preset.endswith((".yaml", ".yml")):
            raise GankitError(f"{args.out} is a run of '{stored.name}', not '{args.preset}'")
        config = apply_overrides(_base_config(args.preset) if args.preset else stored, overrides)
        out = args.out
    else:
        if not args.preset:
            raise GankitError("name a preset (see 'gankit presets') or a YAML config file")
        config = apply_overrides(_base_config(args.preset), overrides)
        out = args.out or _numbered_run_dir(config.name)
    try:
        run = train(config, out, data_dir=args.data_dir, resume=args.resume)
    finally:
        leave(join())
    if run is not None:  # under torchrun, rank 0's
        log.info("done: %s", run.path)
    return 0


def _numbered_run_dir(name: str) -> Path:
    """runs/NNNNN-NAME, chosen by rank 0 under torchrun; after torchrun restarts the group, the one it was training."""
    from gankit.rundir import next_run_dir, numbered_run_dirs
    from gankit.training.distributed import join, made_by_this_job, on_main, restarted

    def choose() -> Path:
        ours = [path for path in numbered_run_dirs(Path("runs"), name) if made_by_this_job(path)] if restarted() else []
        return ours[-1] if ours else next_run_dir(Path("runs"), name)

    return on_main(join(), choose)


def cmd_report(args: argparse.Namespace) -> int:
    print(_run(args).report(args.out, force=args.force, raw=args.raw))
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from gankit.compare import compare, save_plot, table
    from gankit.files import check_new

    check_new(args.out, args.force)
    runs = compare(args.runs, args.metric)
    save_plot(runs, args.out, args.metric)
    print(f"{args.metric} scored during training with {runs[0].features} features on {runs[0].n} samples")
    print("\n".join(table(runs, args.metric)))
    print(f"plot: {args.out}")
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    from gankit.outputs import check_sample_format, write_samples

    run = _run(args)
    checkpoint = run.checkpoint(args.checkpoint)
    per_row, mark = None, ""
    if args.label is not None and args.label.strip().lower() == "all":
        classes = len(run.conditional_classes())
        n = args.n if args.n is not None else 8 * classes
        if n <= 0 or n % classes:
            raise GankitError(f"--n {n} does not split into one row per class: give a positive multiple of {classes}")
        per_row, mark = n // classes, "-classes"
        check_sample_format(n, args.format)
        images = run.sample_classes(per_row, seed=args.seed, checkpoint=checkpoint, raw=args.raw)
    else:
        n = args.n if args.n is not None else 64
        if args.label is not None:
            mark = f"-class{run.class_index(args.label)}"
        check_sample_format(n, args.format)
        images = run.sample(n, seed=args.seed, checkpoint=checkpoint, raw=args.raw, label=args.label)
    default = args.run / "samples" / f"{checkpoint.stem}{_raw(args)}{mark}-seed{args.seed}-n{n}{SUFFIXES[args.format]}"
    print(write_samples(images, args.out or default, args.format, force=args.force or args.out is None, nrow=per_row))
    return 0


def cmd_interpolate(args: argparse.Namespace) -> int:
    from gankit.outputs import write_walks

    run = _run(args)
    checkpoint = run.checkpoint(args.checkpoint)
    walks = run.interpolate(
        args.pairs, args.steps, mode=args.mode, seed=args.seed, checkpoint=checkpoint, raw=args.raw, label=args.label
    )
    suffix = ".gif" if args.format == "gif" else ".png"
    mark = f"-class{run.class_index(args.label)}" if args.label is not None else ""
    default = args.run / "samples" / f"{checkpoint.stem}{_raw(args)}{mark}-{args.mode}-seed{args.seed}{suffix}"
    print(write_walks(walks, args.out or default, args.format, force=args.force or args.out is None))
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from gankit.metrics import parse_metrics

    metrics = parse_metrics(args.metrics) if args.metrics is not None else None
    result, path = _run(args).evaluate(
        n=args.n,
        metrics=metrics,
        features=args.features,
        data_dir=args.data_dir,
        weights=args.weights,
        seed=args.seed,
        checkpoint=args.checkpoint,
        raw=args.raw,
        out=args.out,
        force=args.force,
    )
    print(f"{'metric':16s} {'generated':>12s} {'real floor':>12s}   ({result['features']}, n = {_counts(result)})")
    for key, value in result["metrics"].items():
        if isinstance(value, (int, float)):
            print(f"{key:16s} {value:12.4f} {result['floor'][key]:12.4f}")
        else:
            print(f"{key:16s} {_compact(value)}  (real: {_compact(result['floor'][key])})")
    print(f"against the {result['real']}; the real floor: {result['floor_is']}")
    print(f"scored in {result['seconds']:.1f} s; written to {path}")
    return 0


def cmd_evaluator(args: argparse.Namespace) -> int:
    from gankit.evaluators import load_evaluator

    if args.dataset == "folder":
        return _folder_evaluator(args)
    given = {"--image-size": args.image_size, "--channels": args.channels, "--skip-bad-images": args.skip_bad_images}
    for flag, value in given.items():
        if value:
            raise GankitError(f"{flag} is for a folder's evaluator; {args.dataset}'s reads the data set as it is")
    _, info = load_evaluator(args.dataset, args.data_dir)
    print(
        f"{args.dataset} evaluator: test accuracy {100 * info['test_accuracy']:.2f}% "
        f"({info['epochs']} epochs on {info['train_images']} images, trained in {info['train_seconds']:.0f} s)"
    )
    return 0


def _folder_evaluator(args: argparse.Namespace) -> int:
    """The contrastive encoder a folder run's first score would train, trained (or found) ahead of it: the images
    must be loaded as the run loads them, so its size and channels default to the folder recipe's."""
    from gankit.data import load_images
    from gankit.evaluators.contrastive import load_contrastive

    recipe = load_preset(FOLDER_PRESET).data
    data = DataConfig(
        dataset="folder",
        image_size=args.image_size or recipe.image_size,
        channels=args.channels or recipe.channels,
        skip_bad_images=args.skip_bad_images,
    )
    images = load_images(data, args.data_dir, train=True).images
    _, info, name = load_contrastive(images)
    print(
        f"folder evaluator {name} for runs at data.image_size={data.image_size}, data.channels={data.channels}: "
        f"{info['recipe']['steps']} steps on {info['train_images']} images, trained in {info['train_seconds']:.0f} s "
        f"(final loss {info['final_loss']:.3f})"
    )
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    out, description = _run(args).export(
        args.format, args.out, checkpoint=args.checkpoint, force=args.force, raw=args.raw
    )
    print(out)
    print(description)
    return 0


def _compact(values: list[float | int | None]) -> str:
    """A list of per-class figures: counts whole, fractions to 3 significant digits."""
    return "[" + ", ".join("-" if v is None else str(v) if isinstance(v, int) else f"{v:.3g}" for v in values) + "]"


def cmd_serve(args: argparse.Namespace) -> int:
    from gankit.serve import serve

    try:
        serve(args.run, checkpoint=args.checkpoint, host=args.host, port=args.port, raw=args.raw)
    except KeyboardInterrupt:  # Ctrl-C is how a server stops: not an interruption of work
        pass
    log.info("stopped")
    return 0


SUFFIXES = {"grid": ".png", "files": "", "npy": ".npy"}


def _raw(args: argparse.Namespace) -> str:
    """A file-name mark for outputs of G's own weights, so they never collide with its average's."""
    return "-raw" if args.raw else ""


def _run(args: argparse.Namespace) -> Run:
    from gankit.run import load_run

    return load_run(args.run)


def _base_config(preset: str) -> Config:
    path = Path(preset)
    if preset.endswith((".yaml", ".yml")):
        if not path.is_file():
            raise GankitError(f"config file {preset} does not exist")
        from gankit.checks import validate

        config = load_config_file(path)
        validate(config, source=str(path))
        return config
    return load_preset(preset)


def _flag_overrides(args: argparse.Namespace) -> list[str]:
    """The flags as overrides; a key also set with --set must agree, not silently win."""
    flags = {
        "train.epochs": args.epochs,
        "train.kimg": args.kimg,
        "train.minutes": args.minutes,
        "train.seed": args.seed,
        "data.limit": args.limit,
        "train.batch_size": args.batch_size,
        "train.device": args.device,
        "train.precision": args.precision,
        "train.compile": args.compile,
        "train.on_nan": args.on_nan,
        "output.tensorboard": args.tensorboard,
        "output.progress": False if args.no_progress else None,
        "output.eval_every": args.eval_every,
        "output.stop_on_plateau": args.stop_on_plateau,
    }
    given = {key: value for key, value in flags.items() if value is not None}
    for item in args.overrides:
        key = item.partition("=")[0].strip()
        if key in given:
            raise GankitError(f"{key} is set twice, by a flag ({given[key]}) and by --set {item}: give it once")
    return [f"{key}={value}" for key, value in given.items()]

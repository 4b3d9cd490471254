"""The `gankit` command: maps options onto a Config and calls the library. User errors exit 2."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from gankit.checkpoint import list_checkpoints, load_checkpoint
from gankit.config import Config, apply_overrides, load_config_file, load_preset, preset_names
from gankit.errors import GankitError

if TYPE_CHECKING:
    from gankit.rundir import RunDir
    from gankit.train.state import TrainingState

log = logging.getLogger("gankit")

# keys a resumed run may change: they alter how long it runs and what it writes, not its maths
RESUMABLE_CHANGES = ("train.epochs", "train.device", "train.compile", "train.on_nan", "output.")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, no usage dump
        raise GankitError(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="gankit", description="Train, watch, evaluate and use GANs.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    commands.add_parser("presets", help="list the shipped presets")

    train = commands.add_parser("train", help="train a preset (or a YAML config file)")
    train.add_argument("preset", nargs="?", help="preset name or path to a YAML config; optional with --resume")
    train.add_argument("--out", type=Path, help="run folder (default: runs/NNNNN-PRESET)")
    train.add_argument("--data-dir", type=Path, help="folder or archive holding the data set")
    train.add_argument("--epochs", type=_positive_int, help="number of epochs (train.epochs)")
    train.add_argument("--seed", type=_non_negative_int, help="random seed (train.seed)")
    train.add_argument("--limit", type=_positive_int, help="train on the first N images (data.limit)")
    train.add_argument("--batch-size", type=_positive_int, help="images per step (train.batch_size)")
    train.add_argument("--device", choices=("auto", "cpu", "cuda"), help="train.device")
    train.add_argument("--precision", choices=("fp32", "bf16"), help="train.precision")
    train.add_argument("--compile", action="store_true", default=None, help="torch.compile the networks")
    train.add_argument("--on-nan", choices=("stop", "rollback"), help="train.on_nan: what a NaN/Inf loss does")
    train.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    train.add_argument("--no-progress", action="store_true", help="no progress bar")
    train.add_argument("--tensorboard", action="store_true", default=None, help="also log to RUN/tensorboard (output.tensorboard)")
    train.add_argument("--eval-every", type=_non_negative_int, metavar="K",
                       help="score the generator every K epochs and the last (output.eval_every; 0: never)")
    train.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                       help="override any config field, e.g. --set train.lr_g=1e-4 (repeatable)")

    report = commands.add_parser("report", help="write the run's HTML report page and grid animation")
    report.add_argument("run", type=Path, help="run folder")
    report.add_argument("--out", type=Path, help="page to write (default: RUN/report.html)")

    sample = commands.add_parser("sample", help="generate images with a trained generator")
    _add_run_arguments(sample)
    sample.add_argument("--n", type=int, default=64, help="number of images")
    sample.add_argument("--format", choices=("grid", "files", "npy"), default="grid",
                        help="one PNG grid, a folder of PNG files, or a uint8 .npy array (N, H, W, C)")

    walk = commands.add_parser("interpolate", help="latent walks between random noise vectors")
    _add_run_arguments(walk)
    walk.add_argument("--pairs", type=int, default=8, help="number of walks (rows)")
    walk.add_argument("--steps", type=int, default=10, help="images along each walk (columns, or frames)")
    walk.add_argument("--mode", choices=("slerp", "linear"), default="slerp", help="spherical or straight path")
    walk.add_argument("--format", choices=("grid", "gif"), default="grid", help="one PNG grid or an animated GIF")

    evaluate = commands.add_parser("eval", help="score a run's generator against the held-out real images")
    _add_run_arguments(evaluate)
    evaluate.add_argument("--n", type=int, default=10000, help="generated (and real) images to score")
    evaluate.add_argument("--metrics", default="fid,kid,is,pr,coverage", help="comma-separated: fid,kid,is,pr,coverage")
    evaluate.add_argument("--features", choices=("evaluator", "inception"), default="evaluator",
                          help="gankit's classifier for the data set, or Inception-v3")
    evaluate.add_argument("--inception-weights", type=Path, help="Inception-v3 weights file (for --features inception)")
    evaluate.add_argument("--data-dir", type=Path, help="folder or archive holding the data set")

    evaluator = commands.add_parser("evaluator", help="gankit's own feature extractors")
    evaluator_commands = evaluator.add_subparsers(dest="evaluator_command", required=True, parser_class=_Parser)
    evaluator_train = evaluator_commands.add_parser("train", help="train (or show the cached) evaluator of a data set")
    evaluator_train.add_argument("dataset", choices=("mnist", "fashion-mnist", "cifar10"))
    evaluator_train.add_argument("--data-dir", type=Path, help="folder or archive holding the data set")

    export = commands.add_parser("export", help="export the generator alone")
    _add_run_arguments(export, seed=False)
    export.add_argument("--format", choices=("torchscript", "onnx"), required=True)
    return parser


def _add_run_arguments(parser: argparse.ArgumentParser, *, seed: bool = True) -> None:
    parser.add_argument("run", type=Path, help="run folder")
    parser.add_argument("--checkpoint", type=Path, help="checkpoint to use (default: the run's newest)")
    parser.add_argument("--out", type=Path, help="where to write (default: inside the run folder)")
    if seed:
        parser.add_argument("--seed", type=_non_negative_int, default=0, help="seed of the noise")


def main(argv: list[str] | None = None) -> int:
    _setup_logging()
    try:
        args = build_parser().parse_args(argv)
        commands = {"presets": cmd_presets, "train": cmd_train, "report": cmd_report, "sample": cmd_sample,
                    "interpolate": cmd_interpolate, "export": cmd_export, "eval": cmd_eval, "evaluator": cmd_evaluator}
        return commands[args.command](args)
    except GankitError as exc:
        print(f"gankit: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("gankit: interrupted; continue with --resume", file=sys.stderr)
        return 130


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is at the time (tests and tqdm swap it)."""

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


def _setup_logging() -> None:
    if not log.handlers:
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("gankit: %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)


def cmd_presets(args: argparse.Namespace) -> int:
    for name in preset_names():
        config = load_preset(name)
        print(f"{name:24s} {config.data.dataset:14s} {config.model.arch:6s} {config.train.epochs:4d} epochs")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    # imported here: each command loads only the modules it needs
    from gankit.data import load_images
    from gankit.device import check_precision, resolve_device
    from gankit.evaluate import make_scorer
    from gankit.report import write_report
    from gankit.tensorboard import check_available as check_tensorboard
    from gankit.train.loop import fit
    from gankit.train.state import new_state

    run, config = _run_and_config(args)
    device = resolve_device(config.train.device)
    check_precision(config.train.precision, device)
    if config.output.tensorboard:
        check_tensorboard()
    data = load_images(config.data, args.data_dir)  # before the run folder exists: bad data leaves nothing behind
    log.info("training on %d images of shape %s from %s", len(data), tuple(data.images.shape[1:]), data.source)
    if len(data) < config.train.batch_size:
        raise GankitError(f"{len(data)} images are fewer than one batch of {config.train.batch_size}")
    scorer = None
    if config.output.eval_every:
        o = config.output
        scorer = make_scorer(config, n=o.eval_n, metrics=o.eval_metrics, features=o.eval_features,
                             data_dir=args.data_dir, progress=o.progress)
    state = new_state(config, device)
    if args.resume:
        _resume(run, state)
    else:
        run.create(config)
    log.info("run folder %s, device %s, %d epochs", run.path, device, config.train.epochs)
    fit(state, run, data, device, scorer)
    if config.output.report:
        log.info("report: %s", write_report(run.path))
    log.info("done: %s", run.path)
    return 0


def _run_and_config(args: argparse.Namespace) -> tuple[RunDir, Config]:
    """The run folder and its resolved config: a new one from the preset, or the one to resume."""
    from gankit.rundir import RunDir, next_run_dir

    overrides = _flag_overrides(args) + args.overrides
    if args.resume:
        if args.out is None:
            raise GankitError("--resume needs --out naming the run folder to continue")
        run = RunDir(args.out)
        config = run.load_config()
        _check_resume_overrides(overrides)
        config = apply_overrides(config, overrides)
        if args.preset and args.preset != config.name:
            raise GankitError(f"{args.out} is a run of '{config.name}', not '{args.preset}'")
        return run, config
    if not args.preset:
        raise GankitError("name a preset (see 'gankit presets') or a YAML config file")
    config = apply_overrides(_base_config(args.preset), overrides)
    run = RunDir(args.out or next_run_dir(Path("runs"), config.name))
    if run.exists() or list_checkpoints(run.checkpoints):
        raise GankitError(f"{run.path} already holds a run; continue it with --resume or choose another --out")
    return run, config


def _resume(run: RunDir, state: TrainingState) -> None:
    """Lock the folder, restore the newest checkpoint, and cut the metrics back to it."""
    from gankit.train.state import restore_state

    run.lock()
    checkpoints = list_checkpoints(run.checkpoints)
    record = None
    if checkpoints:
        checkpoint = load_checkpoint(checkpoints[-1])
        restore_state(state, checkpoint, str(checkpoints[-1]))
        record = checkpoint.get("record")
        log.info("resuming %s after epoch %d", run.path, state.epoch)
    else:
        log.info("%s has no checkpoint yet: starting it from epoch 1", run.path)
    run.keep_metrics_through(state.epoch, record)
    run.save_config(state.config)


def cmd_report(args: argparse.Namespace) -> int:
    from gankit.report import write_report

    print(write_report(args.run, args.out))
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    from gankit.outputs import write_samples
    from gankit.trained import load_generator, sample_images

    G, _, checkpoint = load_generator(args.run, args.checkpoint)
    images = sample_images(G, args.n, seed=args.seed)
    default = args.run / "samples" / f"{checkpoint.stem}-seed{args.seed}-n{args.n}{SUFFIXES[args.format]}"
    print(write_samples(images, args.out or default, args.format))
    return 0


def cmd_interpolate(args: argparse.Namespace) -> int:
    from gankit.outputs import write_walks
    from gankit.trained import interpolate, load_generator

    G, _, checkpoint = load_generator(args.run, args.checkpoint)
    walks = interpolate(G, args.pairs, args.steps, mode=args.mode, seed=args.seed)
    suffix = ".gif" if args.format == "gif" else ".png"
    default = args.run / "samples" / f"{checkpoint.stem}-{args.mode}-seed{args.seed}{suffix}"
    print(write_walks(walks, args.out or default, args.format))
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from gankit.evaluate import make_scorer, score
    from gankit.metrics import parse_metrics
    from gankit.rundir import RunDir
    from gankit.trained import load_generator

    metrics = parse_metrics(args.metrics)
    G, config, checkpoint = load_generator(args.run, args.checkpoint)
    scorer = make_scorer(config, n=args.n, metrics=metrics, features=args.features, data_dir=args.data_dir,
                         inception_weights=args.inception_weights)
    epoch = int(checkpoint.stem.split("-")[-1]) if checkpoint.stem.startswith("epoch-") else 0
    result = {"epoch": epoch, "checkpoint": str(checkpoint), **score(scorer, G, seed=args.seed)}
    path = RunDir(args.run).save_eval(result)
    print(f"{'metric':16s} {'generated':>12s} {'real floor':>12s}   ({result['features']}, n = {result['n_generated']})")
    for key, value in result["metrics"].items():
        if isinstance(value, (int, float)):
            print(f"{key:16s} {value:12.4f} {result['floor'][key]:12.4f}")
        else:
            print(f"{key:16s} {value}  (real: {result['floor'][key]})")
    print(f"scored in {result['seconds']:.1f} s; written to {path}")
    return 0


def cmd_evaluator(args: argparse.Namespace) -> int:
    from gankit.evaluators import load_evaluator

    _, info = load_evaluator(args.dataset, args.data_dir)
    print(f"{args.dataset} evaluator: test accuracy {100 * info['test_accuracy']:.2f}% "
          f"({info['epochs']} epochs on {info['train_images']} images, trained in {info['train_seconds']:.0f} s)")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from gankit.export import export_generator
    from gankit.files import ensure_parent
    from gankit.trained import load_generator

    G, _, checkpoint = load_generator(args.run, args.checkpoint)
    suffix = ".onnx" if args.format == "onnx" else ".torchscript.pt"
    out = args.out or args.run / "export" / f"generator-{checkpoint.stem}{suffix}"
    ensure_parent(out)
    description = export_generator(G, out, args.format)
    print(out)
    print(description)
    return 0


SUFFIXES = {"grid": ".png", "files": "", "npy": ".npy"}


def _base_config(preset: str) -> Config:
    path = Path(preset)
    if preset.endswith((".yaml", ".yml")):
        if not path.is_file():
            raise GankitError(f"config file {preset} does not exist")
        return load_config_file(path)
    return load_preset(preset)


def _flag_overrides(args: argparse.Namespace) -> list[str]:
    flags = {"train.epochs": args.epochs, "train.seed": args.seed, "data.limit": args.limit,
             "train.batch_size": args.batch_size, "train.device": args.device, "train.precision": args.precision,
             "train.compile": args.compile, "train.on_nan": args.on_nan, "output.tensorboard": args.tensorboard,
             "output.progress": False if args.no_progress else None, "output.eval_every": args.eval_every}
    return [f"{key}={value}" for key, value in flags.items() if value is not None]


def _check_resume_overrides(overrides: list[str]) -> None:
    for item in overrides:
        key = item.partition("=")[0].strip()
        if not key.startswith(RESUMABLE_CHANGES):
            raise GankitError(f"cannot change {key} when resuming: it would change the run's maths (start a new run)")


def _positive_int(text: str) -> int:
    value = _int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got '{text}'")
    return value


def _non_negative_int(text: str) -> int:
    value = _int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got '{text}'")
    return value


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got '{text}'") from None


if __name__ == "__main__":
    sys.exit(main())

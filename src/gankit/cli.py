"""The `gankit` command: maps options onto a Config and calls the library. User errors exit 2."""

from __future__ import annotations

import argparse
import logging
import re
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from gankit.checkpoint import list_checkpoints
from gankit.config import (
    DEVICES,
    ON_NAN,
    PRECISIONS,
    RENAMED_PRESETS,
    Config,
    apply_overrides,
    load_config_file,
    load_preset,
    preset_names,
)
from gankit.errors import GankitError
from gankit.interrupts import Terminated, stop_on_signals
from gankit.training.distributed import lost_a_peer, speaks_for_group

if TYPE_CHECKING:
    from gankit.run import Run

log = logging.getLogger("gankit")

# the library's names for what a user can set, and the flags that set them here (GankitError.options)
FLAGS = {
    "data_dir": "--data-dir",
    "run_dir": "--out",
    "resume": "--resume",
    "n": "--n",
    "seed": "--seed",
    "pairs": "--pairs",
    "steps": "--steps",
    "mode": "--mode",
    "weights": "--weights",
    "train.on_nan": "--on-nan",
    "train.precision": "--precision",
    "train.device": "--device",
    "output.tensorboard": "--tensorboard",
    "override": "--set",
    "force": "--force",
    "class": "--class",
    "port": "--port",
    "train.batch_size": "--batch-size",
    "train.compile": "--compile",
    "format": "--format",
}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, exit 2, no usage dump
        raise GankitError(message)


def build_parser() -> argparse.ArgumentParser:
    from gankit.evaluators import RECIPES
    from gankit.export import FORMATS
    from gankit.metrics import EXTRACTORS, METRICS
    from gankit.metrics.registry import LOWER_IS_BETTER
    from gankit.sampling import WALK_MODES

    parser = _Parser(prog="gankit", description="Train, watch, evaluate and use GANs.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    commands.add_parser("presets", help="list the shipped presets")

    train = commands.add_parser("train", help="train a preset (or a YAML config file)")
    train.add_argument("preset", nargs="?", help="preset name or path to a YAML config; optional with --resume")
    train.add_argument("--out", type=_path, help="run folder (default: runs/NNNNN-PRESET)")
    train.add_argument("--data-dir", type=Path, help="folder or archive holding the data set (remembered by the run)")
    train.add_argument("--epochs", type=_positive_int, help="number of epochs (train.epochs)")
    train.add_argument(
        "--kimg", type=_positive_float, help="end after this many thousand training images, if sooner (train.kimg)"
    )
    train.add_argument(
        "--minutes", type=_positive_float, help="end after this many minutes of training, if sooner (train.minutes)"
    )
    train.add_argument("--seed", type=_non_negative_int, help="random seed (train.seed)")
    train.add_argument("--limit", type=_positive_int, help="train on the first N images (data.limit)")
    train.add_argument("--batch-size", type=_positive_int, help="images per step (train.batch_size)")
    train.add_argument("--device", choices=DEVICES, help="train.device")
    train.add_argument("--precision", choices=PRECISIONS, help="train.precision")
    train.add_argument("--compile", action="store_true", default=None, help="torch.compile the networks")
    train.add_argument("--on-nan", choices=ON_NAN, help="train.on_nan: what a NaN/Inf loss does")
    train.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    train.add_argument(
        "--nproc-per-node",
        metavar="N",
        help="train in N processes on this machine, data-parallel, as torchrun starts them (gpu: one per GPU)",
    )
    train.add_argument("--no-progress", action="store_true", help="no progress bar")
    train.add_argument(
        "--tensorboard", action="store_true", default=None, help="also log to RUN/tensorboard (output.tensorboard)"
    )
    train.add_argument(
        "--eval-every",
        metavar="K",
        help="score the generator every K epochs, or K thousand images (5kimg) or minutes (10min), and at the end "
        "(output.eval_every; 0: never)",
    )
    train.add_argument(
        "--stop-on-plateau",
        metavar="K",
        type=int,
        help="end the run after K scorings without a new lowest FID, keeping checkpoints/best.pt "
        "(output.stop_on_plateau; needs --eval-every)",
    )
    train.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override any config field, e.g. --set train.lr_g=1e-4 (repeatable)",
    )

    report = commands.add_parser("report", help="write the run's HTML report page and grid animation")
    report.add_argument("run", type=Path, help="run folder")
    report.add_argument("--out", type=_path, help="page to write (default: RUN/report.html)")
    report.add_argument("--force", action="store_true", help="replace --out if it exists")
    report.add_argument(
        "--raw",
        action="store_true",
        default=None,
        help="new samples from G's own weights, not their moving average (runs that keep one)",
    )

    sample = commands.add_parser("sample", help="generate images with a trained generator")
    _add_run_arguments(sample)
    sample.add_argument("--n", type=int, help="number of images (default 64; with --class all, 8 per class)")
    sample.add_argument(
        "--class",
        dest="label",
        metavar="CLASS",
        help="conditional runs: a class by index or name, or 'all' for one row per class",
    )
    sample.add_argument(
        "--format",
        choices=("grid", "files", "npy"),
        default="grid",
        help="one PNG grid, a folder of PNG files, or a uint8 .npy array (N, H, W, C)",
    )

    walk = commands.add_parser("interpolate", help="latent walks between random noise vectors")
    _add_run_arguments(walk)
    walk.add_argument("--pairs", type=int, default=8, help="number of walks (rows)")
    walk.add_argument("--steps", type=int, default=10, help="images along each walk (columns, or frames)")
    walk.add_argument("--mode", choices=WALK_MODES, default="slerp", help="spherical or straight path")
    walk.add_argument("--format", choices=("grid", "gif"), default="grid", help="one PNG grid or an animated GIF")
    walk.add_argument(
        "--class",
        dest="label",
        metavar="CLASS",
        help="conditional runs: walk within this class (index or name; default: a class drawn per walk)",
    )

    evaluate = commands.add_parser("eval", help="score a run's generator against the held-out real images")
    _add_run_arguments(evaluate)
    evaluate.add_argument("--n", type=int, default=10000, help="generated (and real) images to score")
    evaluate.add_argument(
        "--metrics",
        help=f"comma-separated: {','.join(METRICS)} (default: all that apply to the run; "
        "class_acc and intra_fid are for conditional runs)",
    )
    evaluate.add_argument(
        "--features",
        choices=EXTRACTORS.names(),
        default="evaluator",
        help="gankit's classifier for the data set, or Inception-v3",
    )
    evaluate.add_argument(
        "--weights",
        "--inception-weights",
        type=Path,
        help="the feature network's weights file (--features inception or dinov2-*; default: torch's hub cache)",
    )
    evaluate.add_argument("--data-dir", type=Path, help="folder or archive holding the data set (default: the run's)")

    evaluator = commands.add_parser("evaluator", help="gankit's own feature extractors")
    evaluator_commands = evaluator.add_subparsers(dest="evaluator_command", required=True, parser_class=_Parser)
    evaluator_train = evaluator_commands.add_parser("train", help="train (or show the cached) evaluator of a data set")
    evaluator_train.add_argument("dataset", choices=tuple(RECIPES))
    evaluator_train.add_argument("--data-dir", type=Path, help="folder or archive holding the data set")

    serve = commands.add_parser("serve", help="a local page to play with the run's generator (gankit[serve])")
    serve.add_argument("run", type=Path, help="run folder")
    serve.add_argument(
        "--checkpoint",
        type=Path,
        help="checkpoint to use: a path, or 'best' (the lowest FID scored in training); default: the newest",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default: this machine only)")
    serve.add_argument("--port", type=int, default=7860, help="port to listen on (0: any free one)")
    serve.add_argument(
        "--raw", action="store_true", help="G's own weights, not their moving average (runs that keep one)"
    )

    compare = commands.add_parser(
        "compare", help="several runs' scores from training side by side, against images seen and minutes"
    )
    compare.add_argument("runs", type=Path, nargs="+", metavar="run", help="run folders scored while training")
    compare.add_argument(
        "--metric", choices=LOWER_IS_BETTER, default="fid", help="the score to compare, lower being better"
    )
    compare.add_argument("--out", type=_path, default=Path("compare.png"), help="the plot (default: ./compare.png)")
    compare.add_argument("--force", action="store_true", help="replace --out if it is an existing file")

    export = commands.add_parser("export", help="export the generator alone")
    _add_run_arguments(export, seed=False)
    export.add_argument("--format", choices=FORMATS.names(), required=True)
    return parser


def _add_run_arguments(parser: argparse.ArgumentParser, *, seed: bool = True) -> None:
    parser.add_argument("run", type=Path, help="run folder")
    parser.add_argument(
        "--checkpoint",
        type=Path,
        help="checkpoint to use: a path, or 'best' (the lowest FID scored in training); default: the newest",
    )
    parser.add_argument("--out", type=_path, help="where to write (default: inside the run folder)")
    parser.add_argument("--force", action="store_true", help="replace --out if it is an existing file")
    parser.add_argument(
        "--raw", action="store_true", help="G's own weights, not their moving average (runs that keep one)"
    )
    if seed:
        parser.add_argument("--seed", type=_non_negative_int, default=0, help="seed of the noise")


def main(argv: list[str] | None = None) -> int:
    _setup_logging()
    with stop_on_signals():  # SIGTERM stops as Ctrl-C does, cleaning up on the way
        return _main(argv)


def _main(argv: list[str] | None) -> int:
    args = None
    try:
        args = build_parser().parse_args(argv)
        args.argv = list(sys.argv[1:] if argv is None else argv)
        commands = {
            "presets": cmd_presets,
            "train": cmd_train,
            "report": cmd_report,
            "sample": cmd_sample,
            "interpolate": cmd_interpolate,
            "export": cmd_export,
            "eval": cmd_eval,
            "evaluator": cmd_evaluator,
            "serve": cmd_serve,
            "compare": cmd_compare,
        }
        return commands[args.command](args)
    except GankitError as exc:
        if speaks_for_group():
            print(f"gankit: error: {cli_message(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as stop:
        code = 128 + (signal.SIGTERM if isinstance(stop, Terminated) else signal.SIGINT)
        if not speaks_for_group():
            return code
        out = args.out if args is not None and args.command == "train" else None
        resumable = out is not None and bool(list_checkpoints(out / "checkpoints"))
        what = "terminated" if isinstance(stop, Terminated) else "interrupted"
        print(
            f"gankit: {what}; continue with --resume --out {out}" if resumable else f"gankit: {what}",
            file=sys.stderr,
        )
        return code
    except Exception as exc:  # noqa: BLE001 - a bug, or a failure gankit did not foresee: one line, details on disk
        if not speaks_for_group() and lost_a_peer(exc):  # the process that failed first has said why
            return 1
        where = _save_traceback()
        print(
            f"gankit: internal error: {type(exc).__name__}: {str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ''}"
            f" (the traceback is in {where}; please report it)",
            file=sys.stderr,
        )
        return 1


def _save_traceback() -> str:
    """Write the current exception's traceback to a file of its own; returns its path."""
    import tempfile
    import traceback

    with tempfile.NamedTemporaryFile("w", prefix="gankit-traceback-", suffix=".txt", delete=False) as f:
        traceback.print_exc(file=f)
    return f.name


def _counts(result: dict) -> str:
    """The sample count of a score, and the real one where it differs (modes scores more samples than real images)."""
    generated, real = result["n_generated"], result["n_real"]
    return f"{generated}" if generated == real else f"{generated} generated, {real} real"


def cli_message(error: GankitError) -> str:
    """The error's message with the library's names for options replaced by this command's flags."""
    message = str(error)
    for term in error.options:
        if term in FLAGS:
            message = re.sub(rf"(?<![\w./\\-]){re.escape(term)}(?![\w./\\-])", FLAGS[term], message, count=1)
    return message


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

    _, info = load_evaluator(args.dataset, args.data_dir)
    print(
        f"{args.dataset} evaluator: test accuracy {100 * info['test_accuracy']:.2f}% "
        f"({info['epochs']} epochs on {info['train_images']} images, trained in {info['train_seconds']:.0f} s)"
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


def _path(text: str) -> Path:
    if not text.strip():  # Path("") is the current folder: a run would spill into it
        raise argparse.ArgumentTypeError("expected a path, got an empty string")
    return Path(text)


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


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got '{text}'") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number, got '{text}'")
    return value


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got '{text}'") from None


if __name__ == "__main__":
    sys.exit(main())

"""The `gankit` command line's grammar: every command, its flags and their types."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import NoReturn

from gankit.config import DEVICES, ON_NAN, PRECISIONS
from gankit.errors import GankitError


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
    evaluator_train.add_argument(
        "dataset", choices=(*RECIPES, "folder"), help="folder: the contrastive encoder of a folder of your own images"
    )
    evaluator_train.add_argument("--data-dir", type=Path, help="folder or archive holding the data set")
    evaluator_train.add_argument(
        "--image-size",
        type=_positive_int,
        help="folder: the data.image_size of the runs it will score (default: sngan-small-data's, 64); "
        "the encoder is cached per size and channels",
    )
    evaluator_train.add_argument(
        "--channels",
        type=int,
        choices=(1, 3),
        help="folder: the data.channels of the runs it will score (default: sngan-small-data's, 3)",
    )
    evaluator_train.add_argument(
        "--skip-bad-images", action="store_true", help="folder: skip unreadable files, as data.skip_bad_images does"
    )

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

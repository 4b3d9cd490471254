"""What `--compile` (torch.compile of G and D) gains: eager and compiled `gankit train` of the same preset, alternating.

Each repetition trains the preset twice in fresh processes, once eager and once with `--compile`, on the same images,
seed and epochs, and reads each run's metrics.jsonl. The first epoch of a compiled run carries the compilation, so the
speed compared is the images/s of the later epochs; the first epoch's extra seconds are printed as the compile cost.
Prints the medians, the ratio compiled / eager, and how far apart the two runs' final losses are (compiled kernels
sum in another order, so the runs drift apart slowly).

    python bench/compile_speed.py --data-dir ../shared/data/mnist [--preset gan-mnist-tanh] [--limit 12800]
        [--epochs 3] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import torch


def train(preset: str, data_dir: Path, out: Path, epochs: int, limit: int, compiled: bool) -> list[dict]:
    """The records of one fresh `gankit train` run."""
    command = [
        sys.executable,
        "-m",
        "gankit",
        "train",
        preset,
        "--data-dir",
        str(data_dir),
        "--out",
        str(out),
        "--epochs",
        str(epochs),
        "--limit",
        str(limit),
        "--seed",
        "0",
        "--no-progress",
        "--set",
        "output.report=false",
    ] + (["--compile"] if compiled else [])
    subprocess.run(command, check=True, capture_output=True, text=True)
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--preset", default="gan-mnist-tanh")
    parser.add_argument("--limit", type=int, default=12800, help="images per epoch")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per run (at least 2: the first compiles)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if args.epochs < 2:
        parser.error("--epochs must be at least 2: the first epoch of a compiled run compiles")
    speeds: dict[bool, list[float]] = {False: [], True: []}
    first_epoch: dict[bool, list[float]] = {False: [], True: []}
    drift = []
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(args.repeats):
            last = {}
            for compiled in (False, True):
                records = train(
                    args.preset, args.data_dir, Path(tmp) / f"{repeat}-{compiled}", args.epochs, args.limit, compiled
                )
                speeds[compiled].append(statistics.median(r["images_per_s"] for r in records[1:]))
                first_epoch[compiled].append(records[0]["epoch_seconds"])
                last[compiled] = (records[-1]["d_loss"], records[-1]["g_loss"])
                print(
                    f"repeat {repeat} {'compiled' if compiled else 'eager   '}: "
                    f"{speeds[compiled][-1]:.0f} img/s after epoch 1, epoch 1 {first_epoch[compiled][-1]:.1f} s, "
                    f"final d_loss {last[compiled][0]:.4f} g_loss {last[compiled][1]:.4f}",
                    flush=True,
                )
            drift.append(max(abs(a - b) / max(abs(a), 1e-12) for a, b in zip(last[False], last[True])))
    eager, compiled = statistics.median(speeds[False]), statistics.median(speeds[True])
    cost = statistics.median(first_epoch[True]) - statistics.median(first_epoch[False])
    print(f"{args.preset}, {args.limit} images an epoch, {args.repeats} repeats, torch {torch.__version__}:")
    print(
        f"  eager {eager:.0f} img/s, compiled {compiled:.0f} img/s (median of epochs 2-{args.epochs}): "
        f"compiled / eager = {compiled / eager:.2f}"
    )
    print(
        f"  compiling costs the first epoch {cost:.1f} s more; final losses differ by at most "
        f"{max(drift):.1%} (relative)"
    )


if __name__ == "__main__":
    main()

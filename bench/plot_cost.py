"""What redrawing losses.png costs a 200-epoch seed-GAN run: after every epoch, or at most once a minute.

Times `plot_history` on a run's metrics (by default a synthetic 200-epoch history scored every 50
epochs, as `--eval-every 50` writes it; `--metrics RUN/metrics.jsonl` takes a real one) at several
lengths, then adds up the drawing time of a run that redraws after every epoch and of one that
redraws as gankit does (scored epochs, the last epoch, and otherwise after `PLOT_EVERY_S` seconds),
given the epoch length (drawing times between the measured lengths interpolated).

    python bench/plot_cost.py [--epoch-seconds 9] [--metrics RUN/metrics.jsonl]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from gankit.plots import plot_history
from gankit.training.callbacks import PLOT_EVERY_S

SCORES = {
    "fid": 30.0,
    "kid_mean": 2.0,
    "precision": 0.85,
    "recall": 0.7,
    "density": 0.8,
    "coverage": 0.6,
    "is_mean": 7.0,
    "classes_covered": 10,
}


def synthetic_history(epochs: int, eval_every: int) -> list[dict[str, Any]]:
    records = []
    for epoch in range(1, epochs + 1):
        record = {
            "epoch": epoch,
            "d_loss": 0.9 + 0.1 / epoch,
            "g_loss": 1.4 + 5 / epoch,
            "d_acc_real": 0.7,
            "d_acc_fake": 0.85,
            "images_per_s": 6500.0,
        }
        if epoch % eval_every == 0:
            record.update(SCORES)
        records.append(record)
    return records


def draw_seconds(history: list[dict[str, Any]], repeats: int = 3) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            plot_history(history, Path(tmp) / "losses.png")
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epoch-seconds", type=float, default=9.0, help="training time of one epoch")
    parser.add_argument("--metrics", type=Path, help="a run's metrics.jsonl instead of the synthetic history")
    args = parser.parse_args()
    history = (
        [json.loads(line) for line in args.metrics.read_text().splitlines()]
        if args.metrics
        else synthetic_history(200, 50)
    )
    epochs = len(history)
    lengths = sorted({1, 10, 50, 100, 150, epochs} & set(range(1, epochs + 1)))
    measured = {n: draw_seconds(history[:n]) for n in lengths}
    print("seconds to draw losses.png after n epochs: " + ", ".join(f"{n}: {s:.2f}" for n, s in measured.items()))

    def cost(n: int) -> float:  # interpolate between the measured lengths
        low = max(m for m in lengths if m <= n)
        high = min(m for m in lengths if m >= n)
        return (
            measured[low]
            if high == low
            else measured[low] + (measured[high] - measured[low]) * (n - low) / (high - low)
        )

    every_epoch = sum(cost(n) for n in range(1, epochs + 1))
    throttled, clock, last = 0.0, 0.0, -PLOT_EVERY_S
    for n in range(1, epochs + 1):
        clock += args.epoch_seconds
        if "fid" in history[n - 1] or n == epochs or clock - last >= PLOT_EVERY_S:
            throttled += cost(n)
            clock += cost(n)
            last = clock
    training = epochs * args.epoch_seconds
    print(
        f"{epochs} epochs of {args.epoch_seconds:g} s: redrawn after every epoch {every_epoch:.0f} s "
        f"({every_epoch / training:.1%} of training); at most once a minute {throttled:.0f} s "
        f"({throttled / training:.1%})"
    )


if __name__ == "__main__":
    main()

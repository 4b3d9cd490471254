"""CIFAR-10 on the CPU: sngan-cifar10 against the report's DCGAN at equal steps and at equal wall time.

A step is one batch: one D update (SNGAN's G updates on every fifth). Each preset trains on each seed, and G's weights
are copied at the first G update at or past each of --steps, and at the last G update at or before each of --minutes
of training. A run stops once it has every mark, or, past its last minute, when at its pace the remaining step marks
would take it beyond --max-minutes. Time is wall time from the end of the first step, with grids, reports and scoring
during training off; each epoch's end (a checkpoint and the loss curves, a second or two) stays in: 2,000 steps are 2
of SNGAN's epochs of 781 batches and 5 of the DCGAN's of 390. Afterwards every copy is scored with gankit's CIFAR-10
evaluator, --eval-n samples against the test split: the JPEG copy of CIFAR-10 in ../shared/data, not the PNG original
the papers score against. The runs go one at a time with all of torch's threads, since the figures are wall time:
run nothing else alongside.

    python bench/cifar_cpu_steps_and_minutes.py --seeds 0-2 --steps 100,500,1000,2000 --minutes 10,25 \\
        --data-dir ../shared/data/cifar10-jpeg/cifar10-jpeg.tar.gz --out runs/cifar-cpu

The study goes seed by seed, both presets on each. A run folder already scored (its scores.json) is not trained
again, so an interrupted study goes on where it stopped; --presets trains one of the two, and the table still shows
the other's scored seeds.
"""

from __future__ import annotations

import argparse
import copy
import json
import shutil
import time
from pathlib import Path

from quality_per_minute import spread  # bench/ is the script's folder, so on sys.path

import gankit
from gankit.evaluate import Scorer, make_scorer, score
from gankit.models import build_models
from gankit.training.step import GANStep

PRESETS = ("sngan-cifar10", "report-dcgan-cifar10")
SCORERS: dict[str, Scorer] = {}


class KeepAtMarks:
    """A step hook (it runs after each G update): keeps copies of G at the step and minute marks and ends the run
    (`request_stop`, between steps) when it has them all, or when the step marks left are out of reach. Copying is
    left out of the clock."""

    def __init__(self, steps: list[int], minutes: list[float], max_minutes: float):
        self.steps, self.seconds, self.max_seconds = steps, [60.0 * m for m in minutes], 60.0 * max_minutes
        self.kept: dict[str, dict] = {}
        self.start: float | None = None
        self.paused = 0.0
        self.previous: dict | None = None  # G at the last G update, for a minute mark passed since

    def __call__(self, step: GANStep) -> None:
        now = time.perf_counter()
        if self.start is None:  # the clock starts at the first step's end: setup is not training
            self.start = now
        elapsed = now - self.start - self.paused
        current = {"steps": step.d_updates, "seconds": elapsed, "weights": copy.deepcopy(step.G.state_dict())}
        for mark in self.steps:
            if current["steps"] >= mark:
                self.kept.setdefault(f"step {mark}", current)
        for mark in self.seconds:
            if elapsed >= mark:  # G changed last at the previous G update, the last one within the minutes
                self.kept.setdefault(f"{mark / 60:g} min", self.previous or current)
        self.previous = current
        self.paused += time.perf_counter() - now
        missing = [mark for mark in self.steps if f"step {mark}" not in self.kept]
        if elapsed < max(self.seconds):
            return
        pace = current["steps"] / max(elapsed, 1e-9)
        if not missing or elapsed + (max(missing) - current["steps"]) / pace > self.max_seconds:
            step.request_stop("every mark within reach is kept")


def measure(preset: str, seed: int, args: argparse.Namespace) -> dict[str, dict]:
    """Train one seed to its marks and score each copy; the scores are kept in the run folder."""
    out = args.out / f"{preset}-seed{seed}"
    if (out / "scores.json").is_file():
        return json.loads((out / "scores.json").read_text())
    shutil.rmtree(out, ignore_errors=True)  # a run this script started and did not finish scoring
    config = gankit.apply_overrides(
        gankit.load_preset(preset),
        [
            f"train.seed={seed}",
            "output.progress=false",
            "output.report=false",
            "output.eval_every=0",
            "output.grid_every=100000",
            "output.grid_first_epoch=false",
        ],
    )
    if config.keeps_ema:
        raise SystemExit(f"{preset} keeps an EMA of G: this script copies the raw G")
    keep = KeepAtMarks(args.steps, args.minutes, args.max_minutes)
    gankit.train(config, out, data_dir=args.data_dir, hooks=gankit.Hooks(after_step=[keep]))
    if preset not in SCORERS:  # the test split's features, once a preset
        SCORERS[preset] = make_scorer(
            config, n=args.eval_n, metrics=["fid"], features="evaluator", data_dir=args.data_dir, progress=False
        )
    scorer = SCORERS[preset]
    G = build_models(config)[0]
    scores = {}
    for mark, kept in keep.kept.items():
        G.load_state_dict(kept["weights"])
        scores[mark] = {"steps": kept["steps"], "seconds": kept["seconds"], "fid": score(scorer, G)["metrics"]["fid"]}
    out.mkdir(parents=True, exist_ok=True)  # a run stopped before its first checkpoint leaves no folder
    (out / "scores.json").write_text(json.dumps(scores))
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", default="100,500,1000,2000", type=lambda s: [int(m) for m in s.split(",")])
    parser.add_argument("--minutes", default="10,25", type=lambda s: [float(m) for m in s.split(",")])
    parser.add_argument(
        "--max-minutes",
        type=float,
        default=90.0,
        help="past its last minute mark, a run goes on for its step marks only if it would reach them by then",
    )
    parser.add_argument("--seeds", default="0-2")
    parser.add_argument(
        "--presets",
        default=",".join(PRESETS),
        type=lambda s: s.split(","),
        help="which of the two to train (both are scored from their folders either way)",
    )
    parser.add_argument("--data-dir", type=Path, default=Path("../shared/data/cifar10-jpeg/cifar10-jpeg.tar.gz"))
    parser.add_argument("--out", type=Path, default=Path("runs/cifar-cpu"))
    parser.add_argument("--eval-n", type=int, default=10_000)
    args = parser.parse_args()
    low, _, high = args.seeds.partition("-")
    seeds = list(range(int(low), int(high or low) + 1))
    if not seeds:
        parser.error(f"--seeds {args.seeds} names no seed")
    unknown = sorted(set(args.presets) - set(PRESETS))
    if unknown:
        parser.error(f"--presets: {', '.join(unknown)} is not one of {', '.join(PRESETS)}")
    results: dict[str, list[dict]] = {preset: [] for preset in PRESETS}
    for seed in seeds:  # seed by seed, so that a study stopped part-way has both presets on its first seeds
        for preset in PRESETS:
            if preset in args.presets or (args.out / f"{preset}-seed{seed}" / "scores.json").is_file():
                results[preset].append(measure(preset, seed, args))  # a scored run is read, not trained
    print(
        f"seeds {args.seeds}; FID: gankit's CIFAR-10 evaluator, {args.eval_n} samples against the test split "
        f"(JPEG copy); a step is one batch (one D update); time: wall time of training"
    )
    print(
        f"{'preset':20} {'mark':>10} {'seeds':>5} {'steps':>11} {'minutes':>11} {'FID mean ± std':>16} {'per seed':>24}"
    )
    marks = [f"step {s}" for s in args.steps] + [f"{m:g} min" for m in args.minutes]
    for preset, runs in results.items():
        if not runs:
            print(f"{preset:20} no seed of {args.seeds} scored in {args.out}")
            continue
        for mark in marks:
            rows = [run[mark] for run in runs if mark in run]
            if len(rows) < len(runs):
                print(f"{preset:20} {mark:>10}  not reached in {len(runs) - len(rows)} of {len(runs)} seeds")
                continue
            fids = [r["fid"] for r in rows]
            steps = f"{min(r['steps'] for r in rows)}-{max(r['steps'] for r in rows)}"
            minutes = f"{min(r['seconds'] for r in rows) / 60:.1f}-{max(r['seconds'] for r in rows) / 60:.1f}"
            print(
                f"{preset:20} {mark:>10} {len(fids):>5} {steps:>11} {minutes:>11} {spread(fids):>16} "
                f"{', '.join(f'{f:.1f}' for f in fids):>24}"
            )


if __name__ == "__main__":
    main()

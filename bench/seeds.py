"""Seed study: does a preset's GAN live or die, seed by seed, in fp32 and bf16?

Trains PRESET for E epochs on each seed and precision (one run folder each under --out; an
interrupted study resumes where it stopped), scores the last epoch with gankit's evaluator, and
prints per run: D's final accuracy on real and generated images, G's loss, FID, classes covered,
(for a conditional preset) class accuracy and intra-class FID, and a verdict: "alive", or "dead from epoch k" when D had
won outright (D accuracy >= 0.999 on both sides with a high G loss, then >= 0.99 while it lasts: the marks `collapsed`
in metrics.jsonl, made afresh with today's rule) from epoch k into the last five epochs.
A summary line per precision gives the death rate and FID mean ± std over the seeds.

With --jobs N the runs go N at a time, each in its own process on one thread: several torch
processes with two threads each on two cores spend most of their time waiting for each other.

    python bench/seeds.py report-gan-mnist --epochs 30 --seeds 0-4 --precisions fp32,bf16 --jobs 2 \\
        --data-dir ../shared/data/mnist --out runs/seeds [--set train.label_smoothing=0.1 ...]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import torch
from quality_per_minute import spread  # bench/ is the script's folder, so on sys.path

import gankit
from gankit.collapse import collapse_stretches, remark_collapses
from gankit.evaluators import load_evaluator
from gankit.losses import build_loss
from gankit.rundir import RunDir


def parse_seeds(text: str) -> list[int]:
    """ "0-4" or "0,2,5"."""
    if "-" in text:
        low, high = text.split("-")
        return list(range(int(low), int(high) + 1))
    return [int(s) for s in text.split(",")]


def train_one(preset: str, seed: int, precision: str, args: argparse.Namespace) -> Path:
    out = args.out / f"{preset}-{precision}-seed{seed}"
    base = gankit.load_preset(preset)
    metrics = "fid, coverage" + (", class_acc, intra_fid" if base.model.conditioning != "none" else "")
    config = gankit.apply_overrides(
        base,
        [
            f"train.seed={seed}",
            f"train.precision={precision}",
            f"train.epochs={args.epochs}",
            f"output.eval_every={args.epochs}",
            f"output.eval_n={args.eval_n}",
            f"output.eval_metrics=[{metrics}]",
            "output.progress=false",
            "output.report=false",
            f"output.grid_every={max(1, args.epochs // 3)}",
            *args.set,
        ],
    )
    if any(r["epoch"] == args.epochs and "fid" in r for r in RunDir(out).read_metrics()):
        return out  # done in an earlier invocation
    gankit.train(config, out, data_dir=args.data_dir, resume=RunDir(out).exists())
    return out


LATE = 5  # a collapse that lasted into the last this many epochs counts as the run's end state


def verdict(records: list[dict], min_epochs: int) -> str:
    """'alive', or 'dead from epoch k' when D won outright from epoch k for at least `min_epochs`
    epochs (the run's train.collapse_epochs) and still did within the last LATE epochs."""
    stretches = collapse_stretches(records, min_epochs)
    if not stretches or stretches[-1][1] <= records[-1]["epoch"] - LATE:
        return "alive"
    first, last = stretches[-1]
    return f"dead from epoch {first}" + ("" if last == records[-1]["epoch"] else f" (to {last})")


def run_all(args: argparse.Namespace, jobs: list[tuple[str, int]]) -> None:
    """Train every (precision, seed) run, `args.jobs` child processes at a time, one thread each."""
    waiting, running = list(jobs), []
    while waiting or running:
        while waiting and len(running) < args.jobs:
            precision, seed = waiting.pop(0)
            command = [sys.executable, __file__, *sys.argv[1:], "--only", f"{precision}:{seed}"]
            log = (args.out / f"{args.preset}-{precision}-seed{seed}.log").open("a")
            running.append(
                subprocess.Popen(
                    command, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "OMP_NUM_THREADS": "1"}
                )
            )
        time.sleep(2)
        for proc in [p for p in running if p.poll() is not None]:
            running.remove(proc)
            if proc.returncode:
                sys.exit(f"error: {' '.join(proc.args[-2:])} failed; see its log in {args.out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("preset")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--seeds", default="0-4")
    parser.add_argument("--precisions", default="fp32,bf16")
    parser.add_argument("--data-dir", type=Path, default=Path("../shared/data/mnist"))
    parser.add_argument("--out", type=Path, default=Path("runs/seeds"))
    parser.add_argument("--eval-n", type=int, default=10_000)
    parser.add_argument("--jobs", type=int, default=1, help="runs at a time, one thread each")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override for every run")
    parser.add_argument("--only", help=argparse.SUPPRESS)  # PRECISION:SEED, one run in this process
    args = parser.parse_args()
    seeds, precisions = parse_seeds(args.seeds), args.precisions.split(",")
    if args.only:
        precision, seed = args.only.split(":")
        torch.set_num_threads(1)
        train_one(args.preset, int(seed), precision, args)
        return
    args.out.mkdir(parents=True, exist_ok=True)
    load_evaluator(
        gankit.load_preset(args.preset).data.dataset, args.data_dir
    )  # trained once, before the runs share it
    run_all(args, [(precision, seed) for precision in precisions for seed in seeds])
    print(
        f"{args.preset}, {args.epochs} epochs, overrides {args.set or 'none'}; FID and classes covered: "
        f"gankit's evaluator, {args.eval_n} samples against the test split"
    )
    conditional = gankit.load_preset(args.preset).model.conditioning != "none"
    extra = f" {'class acc':>9} {'intra FID':>9}" if conditional else ""
    print(
        f"{'precision':9} {'seed':>4} {'D acc real':>10} {'D acc gen':>10} {'G loss':>8} {'FID':>8} {'classes':>7}{extra}  verdict"
    )
    for precision in precisions:
        fids, accuracies, intra, dead = [], [], [], 0
        for seed in seeds:
            run = args.out / f"{args.preset}-{precision}-seed{seed}"
            done = gankit.load_run(run)
            # through gankit's own reader (a damaged line is an error, not skipped), marked by today's rule
            g_loss = done.config.train.collapse_g_loss
            records = remark_collapses(
                done.metrics(), build_loss(done.config.train).collapse_g_loss if g_loss is None else g_loss
            )
            last, state = records[-1], verdict(records, done.config.train.collapse_epochs)
            dead += state != "alive"
            fids.append(last["fid"])
            columns = ""
            if conditional:
                accuracies.append(last["class_accuracy"])
                intra.append(last["intra_fid"])
                columns = f" {100 * last['class_accuracy']:8.1f}% {last['intra_fid']:9.1f}"
            g_loss = last.get("g_loss", float("nan"))  # none in an epoch without a G update (train.d_steps)
            print(
                f"{precision:9} {seed:4d} {last['d_acc_real']:10.3f} {last['d_acc_fake']:10.3f} {g_loss:8.2f} "
                f"{last['fid']:8.1f} {last['classes_covered']:7d}{columns}  {state}"
            )
        summary = f"{precision}: {dead} of {len(seeds)} seeds dead; FID {spread(fids, with_median=True)}"
        if conditional:
            summary += (
                f"; class accuracy {spread([100 * a for a in accuracies], with_median=True)} %; "
                f"intra-class FID {spread(intra, with_median=True)}"
            )
        print(summary)


if __name__ == "__main__":
    main()

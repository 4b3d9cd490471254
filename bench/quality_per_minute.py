"""Quality per CPU minute: FID and classes covered after 2, 5 and 10 minutes of training, per preset, over seeds.

Each PRESET trains on each seed until the longest budget is spent (train.minutes). Time is training time only (the
clock of train.minutes, `elapsed_seconds` in metrics.jsonl), not scoring, grids or checkpoints. The run checkpoints at
the first step at or past every budget (output.checkpoint_every in minutes, a divisor of them all); afterwards each
budget's checkpoint is scored with the sampling generator (G's EMA where the preset keeps one) and gankit's evaluator
for the data set, --eval-n samples against the test split. The runs go one at a time with all of torch's threads, since
the figures are wall time: run nothing else alongside.

    python bench/quality_per_minute.py gan-mnist-tanh dcgan-mnist --minutes 2,5,10 --seeds 0-2 \\
        --data-dir ../shared/data/mnist --out runs/qpm [--set data.dataset=fashion-mnist ...]

A run folder already scored (its scores.json) is not trained again, so an interrupted study goes on where it
stopped; one interrupted before its scores is trained afresh. The learning rates' linear decay (train.lr_decay) would
span the run's nominal epochs, so a preset with it is measured as its schedule makes it, not as a shorter run would be.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import statistics
from pathlib import Path

import gankit
from gankit.checkpoint import list_checkpoints, load_checkpoint
from gankit.evaluate import make_scorer, score
from gankit.models import build_models
from gankit.rundir import RunDir


def checkpoint_every(minutes: list[float]) -> str:
    """A schedule in minutes whose marks fall on every budget: their greatest common divisor, to the second."""
    return f"{math.gcd(*(round(60 * m) for m in minutes)) / 60:g}min"


def measure(preset: str, seed: int, args: argparse.Namespace) -> list[dict]:
    """Train one seed and score its checkpoint at each budget; the scores are kept in the run folder."""
    out = args.out / f"{preset}-seed{seed}"
    if (out / "scores.json").is_file():
        return json.loads((out / "scores.json").read_text())
    shutil.rmtree(out, ignore_errors=True)  # a run this script started and did not finish scoring
    config = gankit.apply_overrides(
        gankit.load_preset(preset),
        [
            f"train.seed={seed}",
            f"train.epochs={args.max_epochs}",
            f"train.minutes={max(args.minutes)}",
            f"output.checkpoint_every={checkpoint_every(args.minutes)}",
            "output.keep_checkpoints=100000",
            "output.progress=false",
            "output.report=false",
            "output.eval_every=0",
            *args.set,
        ],
    )
    gankit.train(config, out, data_dir=args.data_dir)
    config = RunDir(out).load_config()  # as the run filled it in: a conditional run's classes
    scorer = make_scorer(
        config, n=args.eval_n, metrics=["fid", "coverage"], features="evaluator", data_dir=args.data_dir, progress=False
    )
    checkpoints = [load_checkpoint(path) for path in list_checkpoints(out / "checkpoints")]
    G = build_models(config)[0]
    rows = []
    for minutes in args.minutes:
        kept = next((c for c in checkpoints if c["record"]["elapsed_seconds"] >= 60.0 * minutes), None)
        if kept is None:  # the run ended (train.epochs) before this budget
            rows.append({"minutes": minutes, "epoch": 0})
            continue
        G.load_state_dict(kept.get("generator_ema", kept["generator"]))
        metrics = score(scorer, G)["metrics"]
        rows.append(
            {
                "minutes": minutes,
                "epoch": kept["record"]["epoch"] - 1 + kept["record"].get("epoch_fraction", 1.0),
                "seconds": kept["record"]["elapsed_seconds"],
                "fid": metrics["fid"],
                "classes_covered": metrics["classes_covered"],
            }
        )
    (out / "scores.json").write_text(json.dumps(rows))
    return rows


def spread(values: list[float], with_median: bool = False, digits: int = 1) -> str:
    """Mean ± std over the seeds (and the median), or the one value alone: one seed has no spread."""
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    text = f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"
    return f"{text} (median {statistics.median(values):.{digits}f})" if with_median else text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("presets", nargs="+")
    parser.add_argument("--minutes", default="2,5,10", type=lambda s: [float(m) for m in s.split(",")])
    parser.add_argument("--seeds", default="0-2")
    parser.add_argument("--data-dir", type=Path, default=Path("../shared/data/mnist"))
    parser.add_argument("--out", type=Path, default=Path("runs/qpm"))
    parser.add_argument("--eval-n", type=int, default=10_000)
    parser.add_argument(
        "--max-epochs", type=int, default=10_000, help="the runs' nominal length (the budget stops them)"
    )
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override for every run")
    args = parser.parse_args()
    low, _, high = args.seeds.partition("-")
    seeds = list(range(int(low), int(high or low) + 1))
    results = {preset: [measure(preset, seed, args) for seed in seeds] for preset in args.presets}
    print(
        f"overrides {args.set or 'none'}; seeds {args.seeds}; FID and classes covered: gankit's evaluator, "
        f"{args.eval_n} samples against the test split; time: training only, at the first step past the budget"
    )
    print(f"{'preset':24} {'minutes':>7} {'epochs':>9} {'FID mean ± std':>16} {'per seed':>24} {'classes (min)':>13}")
    for preset, runs in results.items():
        for i, minutes in enumerate(args.minutes):
            rows = [run[i] for run in runs]
            if any(r["epoch"] == 0 for r in rows):
                print(f"{preset:24} {minutes:7g}  the run ended (--max-epochs) before the budget")
                continue
            per_seed = ", ".join(f"{r['fid']:.1f}" for r in rows)
            epochs = f"{min(r['epoch'] for r in rows):.1f}-{max(r['epoch'] for r in rows):.1f}"
            print(
                f"{preset:24} {minutes:7g} {epochs:>9} {spread([r['fid'] for r in rows]):>16} {per_seed:>24} "
                f"{min(r['classes_covered'] for r in rows):>13}"
            )


if __name__ == "__main__":
    main()

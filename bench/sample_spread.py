"""The sample-spread watch on healthy runs: each preset's first epochs on several seeds, with the spread of the grid's
samples (a fraction of the real images', in pixels and in a fixed network's features, gankit.diversity) and D's
accuracy on generated images, per epoch. A false alarm is ALIKE_EPOCHS epochs running below ALIKE_SPREAD; the script
prints each run's lowest feature spread and longest stretch below the floor.

    python bench/sample_spread.py --data-dir ../shared/data --presets report-gan-mnist,gan-mnist-tanh,cgan-mnist \\
        --seeds 0-2 --epochs 5 --out runs/spread
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import gankit
from gankit.collapse import ALIKE_EPOCHS, ALIKE_SPREAD, collapse_streak


def longest_alike(records: list[dict]) -> int:
    return max((collapse_streak(records[: i + 1], "samples_alike") for i in range(len(records))), default=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=Path("../shared/data"))
    parser.add_argument("--presets", default="report-gan-mnist,gan-mnist-tanh,cgan-mnist,dcgan-mnist")
    parser.add_argument("--seeds", default="0-2")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--set", action="append", default=[], help="more overrides, KEY=VALUE")
    parser.add_argument("--out", type=Path, default=Path("runs/spread"))
    args = parser.parse_args()
    low, _, high = args.seeds.partition("-")
    seeds = range(int(low), int(high or low) + 1)
    print(f"floor: spread_features < {ALIKE_SPREAD} for {ALIKE_EPOCHS} epochs running; {args.epochs} epochs a run")
    print(f"{'preset':22} {'seed':>4}  spread_features by epoch (d_acc_fake)          lowest  longest below")
    for preset in args.presets.split(","):
        for seed in seeds:
            config = gankit.apply_overrides(
                gankit.load_preset(preset),
                [
                    f"train.seed={seed}",
                    f"train.epochs={args.epochs}",
                    "output.progress=false",
                    "output.report=false",
                    *args.set,
                ],
            )
            out = args.out / f"{preset}-seed{seed}"
            shutil.rmtree(out, ignore_errors=True)
            data = args.data_dir / ("fashion-mnist" if "fashion" in preset else "mnist")
            records = gankit.train(config, out, data_dir=data).metrics()
            cells = " ".join(f"{r['spread_features']:.2f}({r['d_acc_fake']:.2f})" for r in records)
            lowest = min(r["spread_features"] for r in records)
            print(f"{preset:22} {seed:>4}  {cells:44} {lowest:6.2f}  {longest_alike(records):>13}", flush=True)


if __name__ == "__main__":
    main()

"""A preset on small folders of images: over seeds and folders, after each of several training lengths in minutes, how
far its samples are from the folder's images and how varied they are, beside D's accuracy.

Each FOLDER trains on each seed with --preset (default dcgan-small-data) for the first of --minutes (train.minutes:
training steps only), then is resumed to each next length, which continues it exactly. After each length the sampling
generator (G's EMA where the preset keeps one) makes as many images as the folder holds, and the script prints:
- FID in the features of gankit's CIFAR-10 evaluator (its classifier's penultimate layer; images resized to 32x32)
  against the folder's own images: a folder has no evaluator of its own yet, so this is a stand-in, comparable only
  with itself (same folder, extractor and sample count);
- coverage (Naeem et al. 2020) in the same features: the fraction of the folder's images with a sample near them;
- the grid's feature spread (`spread_features`, a fraction of the real images'; gankit.diversity) and D's accuracy on
  real and generated images in the last record.
The runs go one at a time with all of torch's threads, since the lengths are wall time: run nothing else alongside.

    python bench/small_folder.py "runs/folders/cat photos" "runs/folders/ship photos" --seeds 0-2 --minutes 10,25 \\
        --cifar10 ../shared/data/cifar10-jpeg/cifar10-jpeg.tar.gz --out runs/small-folder [--set KEY=VALUE ...]

A run already at a length is not trained again, and its scores are kept in its folder (scores.json), so an
interrupted study goes on where it stopped.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import torch
import torch.nn.functional as F
from quality_per_minute import spread  # bench/ is the script's folder, so on sys.path

import gankit
from gankit.config import DataConfig
from gankit.data import load_images
from gankit.metrics import compute
from gankit.metrics.features import Extractor, evaluator_features
from gankit.rundir import RunDir
from gankit.sampling import sample_images

METRICS = ["fid", "pr"]  # FID, and precision, recall, density and coverage


def at_32(images: torch.Tensor) -> torch.Tensor:
    """uint8 images resized to the CIFAR-10 evaluator's 32x32 (area averaging), still uint8."""
    if images.shape[-1] == 32:
        return images
    return F.interpolate(images.float(), size=(32, 32), mode="area").round().clamp(0, 255).to(torch.uint8)


def train_to(folder: Path, seed: int, minutes: float, args: argparse.Namespace) -> Path:
    """The run of `folder` on `seed`, trained (or resumed) to `minutes` of training."""
    out = args.out / f"{folder.name.replace(' ', '-')}-seed{seed}"
    length = [f"train.minutes={minutes}", "train.epochs=100000", "output.progress=false", "output.report=false"]
    if RunDir(out).exists():
        records = RunDir(out).read_metrics()
        if records and records[-1]["elapsed_seconds"] >= 60 * minutes:
            return out
        config = gankit.apply_overrides(RunDir(out).load_config(), length)
        gankit.train(config, out, resume=True)
    else:
        config = gankit.apply_overrides(gankit.load_preset(args.preset), [f"train.seed={seed}", *length, *args.set])
        gankit.train(config, out, data_dir=folder)
    return out


def measure(out: Path, minutes: float, extractor: Extractor, real_features: dict) -> dict:
    scores_path = out / "scores.json"
    scores = json.loads(scores_path.read_text()) if scores_path.is_file() else {}
    key = f"{minutes:g}"
    if key not in scores:
        records = RunDir(out).read_metrics()
        record = next(r for r in records if r["elapsed_seconds"] >= 60 * minutes)
        if record is not records[-1]:  # its newest checkpoint is from later on
            raise SystemExit(f"{out} has trained past {minutes:g} minutes unscored: remove it to measure it again")
        run = gankit.load_run(out)
        real = real_features[Path(str(run.config.data.dir)).resolve()]
        G = run.generator()
        generated = extractor(at_32(sample_images(G, real.features.shape[0], seed=0)))
        scores[key] = {
            **{k: v for k, v in compute(METRICS, real, generated).items() if k in ("fid", "recall", "coverage")},
            "kimg": record["kimg"],
            "spread_features": record["spread_features"],
            "d_acc_real": record["d_acc_real"],
            "d_acc_fake": record["d_acc_fake"],
        }
        scores_path.write_text(json.dumps(scores))
    return scores[key]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", type=Path, nargs="+")
    parser.add_argument("--preset", default="dcgan-small-data")
    parser.add_argument("--seeds", default="0-2")
    parser.add_argument("--minutes", default="10,25", type=lambda s: sorted(float(m) for m in s.split(",")))
    parser.add_argument("--cifar10", type=Path, default=Path("../shared/data/cifar10-jpeg/cifar10-jpeg.tar.gz"))
    parser.add_argument("--out", type=Path, default=Path("runs/small-folder"))
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override for every run")
    args = parser.parse_args()
    low, _, high = args.seeds.partition("-")
    seeds = list(range(int(low), int(high or low) + 1))
    extractor = evaluator_features(DataConfig(dataset="cifar10", dir=str(args.cifar10)), None, False)
    real_features = {}
    for folder in args.folders:
        config = gankit.load_preset(args.preset)
        config.data.dir = str(folder)
        real_features[folder.resolve()] = extractor(at_32(load_images(config.data, folder).images))
    results: dict[tuple[str, float], list[dict]] = {}
    for seed in seeds:  # seed by seed, so that a study stopped part-way has every folder on its first seeds
        for folder in args.folders:
            for minutes in args.minutes:
                out = train_to(folder, seed, minutes, args)
                results.setdefault((folder.name, minutes), []).append(measure(out, minutes, extractor, real_features))
    print(
        f"preset {args.preset}, overrides {args.set or 'none'}, seeds {args.seeds}; FID and coverage: gankit's CIFAR-10 "
        "evaluator's features (images at 32x32), as many samples as the folder has images, against them"
    )
    print(f"{'folder':18} {'min':>4} {'kimg':>6} {'FID':>14} {'coverage':>13} {'spread':>13} {'D acc real/fake':>16}")
    for (name, minutes), rows in results.items():
        print(
            f"{name:18} {minutes:4g} {statistics.mean(r['kimg'] for r in rows):6.1f} "
            f"{spread([r['fid'] for r in rows]):>14} {spread([r['coverage'] for r in rows], digits=2):>13} "
            f"{spread([r['spread_features'] for r in rows], digits=2):>13} "
            f"{statistics.mean(r['d_acc_real'] for r in rows):7.2f}/{statistics.mean(r['d_acc_fake'] for r in rows):.2f}"
        )
        print("    per seed FID:", ", ".join(f"{r['fid']:.1f}" for r in rows))


if __name__ == "__main__":
    main()

#!/usr/bin/env bash
# R3GAN's CIFAR-10 configuration (the r3gan-cifar10 preset: the paper's class-conditional nets of width 768, batch
# 512, its loss, R1 + R2 and its cosine schedules over the first 20M images) on a GPU, scaled by FRACTION for a
# short loan: the schedules' length (schedule.kimg) and the moving average's final half-life shrink by FRACTION,
# and the run ends when its schedules do (train.kimg). In bf16, seeds 0..SEEDS-1, scored every tenth of the run
# with gankit's CIFAR-10 evaluator (10,000 samples against the test split, the JPEG copy). Prints FID at each
# scoring, images/s and the hours of training per run. Runs on a bare machine that has python3 with torch.
#
#   bash bench/gpu_r3gan_cifar10.sh [CIFAR_ARCHIVE_OR_FOLDER] [SEEDS] [FRACTION]
#
# FRACTION 1 is the paper's 20M images of schedules (days on one GPU); 0.005 (100k images) is a first look.
set -euo pipefail
cd "$(dirname "$0")/.."
data=${1:-../shared/data/cifar10-jpeg/cifar10-jpeg.tar.gz}
seeds=${2:-3}
fraction=${3:-0.005}
root=$(mktemp -d)

. bench/gpu_setup.sh

cifar10_evaluator "$data"
kimg=$(python3 -c "print(20000 * $fraction)")
for seed in $(seq 0 $((seeds - 1))); do
  python3 -m gankit train r3gan-cifar10 --data-dir "$data" --out "$root/r3gan-$seed" --seed "$seed" --kimg "$kimg" \
    --device cuda --precision bf16 --no-progress --eval-every "$(python3 -c "print(f'{$kimg / 10:g}kimg')")" \
    --set "schedule.kimg=$kimg" --set "schedule.ema_kimg_end=$(python3 -c "print(5000 * $fraction)")" \
    --set output.eval_n=10000 --set "output.eval_metrics=[fid, coverage]"
done
python3 - "$root" <<'PY'
import json, statistics, sys
from pathlib import Path
finals = []
for run in sorted(Path(sys.argv[1]).glob("r3gan-*")):
    records = [json.loads(line) for line in open(run / "metrics.jsonl")]
    scored = [r for r in records if "fid" in r]
    finals.append(scored[-1]["fid"])
    print(f"{run.name}: " + ", ".join(f"{r['kimg']:.0f} kimg FID {r['fid']:.1f}" for r in scored) +
          f"; {statistics.median(r['images_per_s'] for r in records):,.0f} img/s, "
          f"{records[-1]['elapsed_seconds'] / 3600:.2f} h of training")
spread = statistics.stdev(finals) if len(finals) > 1 else 0.0
print(f"r3gan-cifar10: final FID {statistics.mean(finals):.1f} ± {spread:.1f} over {len(finals)} seeds")
PY

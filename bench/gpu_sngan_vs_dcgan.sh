#!/usr/bin/env bash
# SNGAN against the report's DCGAN on CIFAR-10, on a GPU, each to its published budget: sngan-cifar10
# for 640 epochs (Mimicry's 100,000 G updates of batch 64, 5 D updates each) and report-dcgan-cifar10 for
# its 300 epochs, in bf16 on the device, seeds 0..SEEDS-1, scored every SCORE_EVERY epochs with gankit's
# CIFAR-10 evaluator (10,000 samples against the test split, which is the JPEG copy, not the PNG
# original the papers score against). Prints FID at each scoring, images/s and the wall time per run.
# Runs on a bare machine that has python3 with torch; both budgets together take hours on one GPU.
#
#   bash bench/gpu_sngan_vs_dcgan.sh [CIFAR_ARCHIVE_OR_FOLDER] [SEEDS] [SCORE_EVERY] [EPOCH_FRACTION]
#
# EPOCH_FRACTION (default 1) scales both budgets down, e.g. 0.05 for a first look within a short loan.
set -euo pipefail
cd "$(dirname "$0")/.."
data=${1:-../shared/data/cifar10-jpeg/cifar10-jpeg.tar.gz}
seeds=${2:-3}
every=${3:-20}
fraction=${4:-1}
root=$(mktemp -d)

. bench/gpu_setup.sh

cifar10_evaluator "$data"
for preset in sngan-cifar10:640 report-dcgan-cifar10:300; do
  name=${preset%%:*}
  epochs=$(python3 -c "print(max(1, round(${preset##*:} * $fraction)))")
  for seed in $(seq 0 $((seeds - 1))); do
    python3 -m gankit train "$name" --data-dir "$data" --out "$root/$name-$seed" --epochs "$epochs" --seed "$seed" \
      --device cuda --precision bf16 --no-progress --eval-every "$(( every < epochs ? every : epochs ))" \
      --set output.eval_n=10000 --set "output.eval_metrics=[fid, coverage]"
  done
done
python3 - "$root" <<'PY'
import json, statistics, sys
from pathlib import Path
for preset in ("sngan-cifar10", "report-dcgan-cifar10"):
    runs = sorted(Path(sys.argv[1]).glob(f"{preset}-*"))
    finals = []
    for run in runs:
        records = [json.loads(line) for line in open(run / "metrics.jsonl")]
        scored = [r for r in records if "fid" in r]
        finals.append(scored[-1]["fid"])
        print(f"{run.name}: " + ", ".join(f"epoch {r['epoch']} FID {r['fid']:.1f}" for r in scored) +
              f"; {statistics.median(r['images_per_s'] for r in records):,.0f} img/s, "
              f"{records[-1]['elapsed_seconds'] / 3600:.2f} h of training")
    spread = statistics.stdev(finals) if len(finals) > 1 else 0.0
    print(f"{preset}: final FID {statistics.mean(finals):.1f} ± {spread:.1f} over {len(finals)} seeds")
PY

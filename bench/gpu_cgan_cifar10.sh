#!/usr/bin/env bash
# The conditional DCGAN on a GPU: cgan-cifar10 (conditional batch norm in G, projection D with
# spectral norm, hinge loss) for EPOCHS epochs on the real CIFAR-10 copy, on the device in bf16,
# scored every SCORE_EVERY epochs during training; then the last checkpoint's FID, class accuracy
# and intra-class FID with gankit's CIFAR-10 evaluator (10,000 samples, every class equally often)
# beside their real floor, and images/s. Runs on a bare machine that has python3 with torch.
#
#   bash bench/gpu_cgan_cifar10.sh [CIFAR_ARCHIVE_OR_FOLDER] [EPOCHS] [SCORE_EVERY] [SEED]
set -euo pipefail
cd "$(dirname "$0")/.."
data=${1:-../shared/data/cifar10-jpeg/cifar10-jpeg.tar.gz}
epochs=${2:-30}
every=${3:-10}
seed=${4:-0}
out=$(mktemp -d)/run

. bench/gpu_setup.sh

cifar10_evaluator "$data"
python3 -m gankit train cgan-cifar10 --data-dir "$data" --out "$out" --epochs "$epochs" --seed "$seed" \
  --device cuda --precision bf16 --no-progress --eval-every "$every" --set output.eval_n=10000
python3 -m gankit eval "$out" --n 10000 --metrics fid,class_acc,intra_fid
python3 - "$out/metrics.jsonl" <<'PY'
import json, statistics, sys
records = [json.loads(line) for line in open(sys.argv[1])]
print(f"images/s (median over epochs): {statistics.median(r['images_per_s'] for r in records):,.0f}; "
      f"peak GPU memory {max(r.get('peak_gpu_mib', 0) for r in records):,.0f} MiB")
for r in records:
    if "fid" in r:
        print(f"epoch {r['epoch']}: FID {r['fid']:.2f}, class accuracy {r['class_accuracy']:.1%}, intra-class FID {r['intra_fid']:.2f}")
PY

#!/usr/bin/env bash
# The seed DCGAN on a GPU: a few epochs of report-dcgan-cifar10 on the real CIFAR-10 copy (data on
# the device, bf16 autocast, channels_last, torch.compile), then images/s, peak GPU memory and the
# projected time of all 300 epochs. Runs on a bare machine that has python3 with torch.
#
#   bash bench/gpu_dcgan.sh [CIFAR_ARCHIVE_OR_FOLDER] [EPOCHS]
set -euo pipefail
cd "$(dirname "$0")/.."
data=${1:-../shared/data/cifar10-jpeg/cifar10-jpeg.tar.gz}
epochs=${2:-4}
out=$(mktemp -d)/run

export GANKIT_CACHE_DIR=${GANKIT_CACHE_DIR:-$(mktemp -d)}  # timings without what an earlier run cached
. bench/gpu_setup.sh

python3 -m gankit train report-dcgan-cifar10 --data-dir "$data" --out "$out" --epochs "$epochs" \
  --device cuda --precision bf16 --compile --no-progress

python3 - "$out/metrics.jsonl" <<'PY'
import json, statistics, sys
records = [json.loads(line) for line in open(sys.argv[1])]
steady = records[1:] or records  # epoch 1 includes compilation
rate = statistics.median(r["images_per_s"] for r in steady)
epoch_s = statistics.median(r["epoch_seconds"] for r in steady)
print(f"epochs run: {len(records)}; first epoch {records[0]['epoch_seconds']:.1f} s (compilation included)")
print(f"images/s (median of epochs 2..): {rate:,.0f}")
print(f"peak GPU memory: {max(r['peak_gpu_mib'] for r in records):,.0f} MiB")
print(f"projected 300 epochs: {300 * epoch_s / 60:.1f} min of training steps "
      f"(+ {records[0]['epoch_seconds'] - epoch_s:.0f} s compilation, grids and checkpoints not counted)")
PY

#!/usr/bin/env bash
# Data-parallel scaling on one GPU node: report-dcgan-cifar10 under torchrun on 1 GPU, then on all of
# them, with the same batch per GPU (128, so the global batch grows with the GPUs); images/s per GPU
# and the scaling efficiency. Runs on a bare machine that has python3 with torch.
#
#   bash bench/gpu_ddp.sh [CIFAR_ARCHIVE_OR_FOLDER] [EPOCHS]
set -euo pipefail
cd "$(dirname "$0")/.."
data=${1:-../shared/data/cifar10-jpeg/cifar10-jpeg.tar.gz}
epochs=${2:-3}
gpus=$(python3 -c 'import torch; print(torch.cuda.device_count())')
[ "$gpus" -ge 1 ] || { echo "no CUDA GPU"; exit 1; }
export GANKIT_CACHE_DIR=${GANKIT_CACHE_DIR:-$(mktemp -d)}  # timings without what an earlier run cached
. bench/gpu_setup.sh
tmp=$(mktemp -d)

for n in 1 "$gpus"; do
  python3 -m torch.distributed.run --standalone --nproc-per-node "$n" -m gankit train report-dcgan-cifar10 \
    --data-dir "$data" --out "$tmp/gpus$n" --epochs "$epochs" --batch-size $((128 * n)) --device cuda \
    --precision bf16 --no-progress --set output.report=false
done

python3 - "$tmp" "$gpus" <<'PY'
import json, statistics, sys
tmp, gpus = sys.argv[1], int(sys.argv[2])
def rate(n):
    records = [json.loads(line) for line in open(f"{tmp}/gpus{n}/metrics.jsonl")]
    return statistics.median(r["images_per_s"] for r in (records[1:] or records))
one, many = rate(1), rate(gpus)
print(f"1 GPU: {one:,.0f} images/s")
print(f"{gpus} GPUs: {many:,.0f} images/s, {many / gpus:,.0f} per GPU, scaling efficiency {many / (gpus * one):.0%}")
PY

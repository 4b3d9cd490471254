"""Data-parallel training and data larger than memory, measured side by side in one run.

    python bench/distributed.py overhead --data-dir ../shared/data/mnist [--repeats 3]
        the plain loop against torchrun with 1 rank (a group of one: no DDP wrappers), then 2 ranks of one
        thread each (DistributedDataParallel, gloo) against 1 process of two threads; img/s medians and ratios
    torchrun --nproc-per-node 2 bench/distributed.py allreduce [--preset report-gan-mnist]
        the time one all-reduce of G's and of D's gradients takes in this group, against a step's time
    python bench/distributed.py decode --data-dir ../shared/data/cifar10-jpeg/cifar10-jpeg.tar.gz
        decoding a folder or archive into the cache: one process against the pool (one per core)
    python bench/distributed.py mapped --data-dir ../shared/data/mnist [--repeats 3]
        training img/s from the memory-mapped cache (data.in_memory false) against in memory

Every run is `gankit train` (or torchrun's) in a fresh process, reading img/s from metrics.jsonl
(epochs after the first, whose start-up is not steady).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def train_rate(args: argparse.Namespace, launcher: list[str], threads: int, *extra: str) -> float:
    """Median img/s over epochs 2.. of one fresh `gankit train` run."""
    with tempfile.TemporaryDirectory() as tmp:
        command = [
            *launcher,
            "-m",
            "gankit",
            "train",
            args.preset,
            "--data-dir",
            str(args.data_dir.resolve()),
            "--out",
            f"{tmp}/run",
            "--epochs",
            str(args.epochs),
            "--precision",
            args.precision,
            "--no-progress",
            "--set",
            "output.report=false",
            "--set",
            "output.grid_every=1000",
            *extra,
        ]
        env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
        subprocess.run(command, check=True, capture_output=True, env=env)
        records = [json.loads(line) for line in open(f"{tmp}/run/metrics.jsonl")]
    return statistics.median(r["images_per_s"] for r in records[1:])


def torchrun(ranks: int) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(ranks)]


def compare(args: argparse.Namespace, variants: dict[str, tuple[list[str], int, list[str]]], baseline: str) -> None:
    """Run every variant `args.repeats` times, alternating, and print medians and ratios to `baseline`."""
    rates: dict[str, list[float]] = {name: [] for name in variants}
    for repeat in range(args.repeats):
        for name, (launcher, threads, extra) in variants.items():
            rates[name].append(train_rate(args, launcher, threads, *extra))
            print(f"  repeat {repeat + 1}: {name}: {rates[name][-1]:,.0f} img/s", flush=True)
    base = statistics.median(rates[baseline])
    for name, values in rates.items():
        median = statistics.median(values)
        print(f"{name:44s} {median:8,.0f} img/s  {median / base:5.3f}x {baseline}")


def overhead(args: argparse.Namespace) -> None:
    plain = [sys.executable]
    print(f"{args.preset}, {args.precision}, {args.epochs} epochs a run, medians of {args.repeats} alternating runs")
    compare(
        args,
        {
            "plain loop, 2 threads": (plain, 2, []),
            "torchrun, 1 rank of 2 threads": (torchrun(1), 2, []),
            "torchrun, 2 ranks of 1 thread": (torchrun(2), 1, []),
        },
        "plain loop, 2 threads",
    )


def allreduce(args: argparse.Namespace) -> None:
    import torch
    import torch.distributed as dist

    import gankit
    from gankit.models import build_models

    dist.init_process_group("gloo")
    G, D = build_models(gankit.load_preset(args.preset))
    for name, net in (("G", G), ("D", D)):
        grads = torch.zeros(sum(p.numel() for p in net.parameters()))
        times = []
        for _ in range(args.repeats * 10):
            dist.barrier()
            start = time.perf_counter()
            dist.all_reduce(grads)
            times.append(time.perf_counter() - start)
        if dist.get_rank() == 0:
            print(
                f"all-reduce of {name}'s gradients ({grads.numel():,} floats, {grads.numel() * 4 / 2**20:.1f} MiB) over "
                f"{dist.get_world_size()} ranks: median {1000 * statistics.median(times):.2f} ms"
            )
    dist.destroy_process_group()


def decode(args: argparse.Namespace) -> None:
    import gankit.data.images as images

    results: dict[str, list[float]] = {"one process": [], "pool": []}
    pool_from = images.POOL_FROM
    for repeat in range(args.repeats):  # alternating, each first in turn, so neither always finds the archive cached
        for name in ["one process", "pool"] if repeat % 2 == 0 else ["pool", "one process"]:
            with tempfile.TemporaryDirectory() as cache:
                os.environ["GANKIT_CACHE_DIR"] = cache
                images.POOL_FROM = 10**12 if name == "one process" else pool_from
                start = time.perf_counter()
                data = images.load_image_folder(args.data_dir, train=True, size=args.size, channels=3)
                results[name].append(len(data) / (time.perf_counter() - start))
                print(f"  {name:12s} {results[name][-1]:8,.0f} images/s ({len(data):,} images)", flush=True)
    one, pool = (statistics.median(results[name]) for name in ("one process", "pool"))
    print(
        f"medians over {args.repeats} repeats, {images.decode_workers()} cores: one process {one:,.0f} images/s, "
        f"pool {pool:,.0f} images/s, {pool / one:.2f}x"
    )


def mapped(args: argparse.Namespace) -> None:
    print(f"{args.preset}, {args.precision}, {args.epochs} epochs a run, medians of {args.repeats} alternating runs")
    plain = [sys.executable]
    compare(
        args,
        {
            "in memory (data.in_memory true)": (plain, 2, ["--set", "data.in_memory=true"]),
            "mapped from disk (data.in_memory false)": (plain, 2, ["--set", "data.in_memory=false"]),
        },
        "in memory (data.in_memory true)",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["overhead", "allreduce", "decode", "mapped"])
    parser.add_argument("--data-dir", type=Path, default=Path("../shared/data/mnist"))
    parser.add_argument("--preset", default="report-gan-mnist")
    parser.add_argument("--precision", default="bf16")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--size", type=int, default=32, help="decode: the side images are decoded to")
    args = parser.parse_args()
    {"overhead": overhead, "allreduce": allreduce, "decode": decode, "mapped": mapped}[args.what](args)


if __name__ == "__main__":
    main()

"""This machine's matrix-multiply peak, fp32 and bf16, at the seed GAN's shapes and at large squares.

    python bench/peak.py [--repeats 5]

The seed GAN's layers multiply a batch of 128 by weights of 100/256/512/1024/784 in and out; a
training step also multiplies their transposes. The figures are GFLOP/s (2·m·n·k per product),
medians over repetitions, each timing enough products to last about 0.2 s.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

SEED_SHAPES = [
    (128, 100, 256),
    (128, 256, 512),
    (128, 512, 1024),
    (128, 1024, 784),  # G forward
    (128, 784, 1024),
    (128, 1024, 512),
    (128, 512, 256),
]  # D forward
SQUARES = [1024, 2048]


def gflops(m: int, k: int, n: int, dtype: torch.dtype, repeats: int) -> float:
    a, b = torch.randn(m, k, dtype=dtype), torch.randn(k, n, dtype=dtype)
    for _ in range(3):
        a @ b
    start, count = time.perf_counter(), 0
    while time.perf_counter() - start < 0.05:
        a @ b
        count += 1
    per_timing = max(1, int(count * 4))
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(per_timing):
            a @ b
        rates.append(2 * m * k * n * per_timing / (time.perf_counter() - start) / 1e9)
    return statistics.median(rates)


def harmonic_blend(rates: list[float]) -> float:
    """The step's time is the sum of its products' times: weight the rates by FLOPs (harmonic mean)."""
    flops = [m * k * n for m, k, n in SEED_SHAPES]
    return sum(flops) / sum(f / r for f, r in zip(flops, rates))


def blended_gflops(dtype: torch.dtype, repeats: int) -> float:
    """The matmul GFLOP/s of the seed GAN's shapes taken together."""
    return harmonic_blend([gflops(m, k, n, dtype, repeats) for m, k, n in SEED_SHAPES])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, bf16 supported: "
        f"{torch.ops.mkldnn._is_mkldnn_bf16_supported()}"
    )
    for dtype in (torch.float32, torch.bfloat16):
        seed = [gflops(m, k, n, dtype, args.repeats) for m, k, n in SEED_SHAPES]
        blended = harmonic_blend(seed)
        squares = {s: gflops(s, s, s, dtype, args.repeats) for s in SQUARES}
        name = str(dtype).removeprefix("torch.")
        print(
            f"{name}: seed-GAN shapes {blended:.0f} GFLOP/s (per layer: {', '.join(f'{r:.0f}' for r in seed)}); "
            + ", ".join(f"{s}x{s}: {r:.0f} GFLOP/s" for s, r in squares.items())
        )


if __name__ == "__main__":
    main()

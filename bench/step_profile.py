"""Where the seed GAN's CPU training step spends its time, by kind of work (torch.profiler, self times).

Prints milliseconds per step for the matrix products, dtype casts, Adam, LeakyReLU and the elementwise
products (dropout's masks are drawn in numpy, which the profiler counts under the rest), and the
rest, with the matrix products' achieved GFLOP/s. The profiler adds a little to every op, so the
shares matter more than the sum; the unprofiled step time is printed beside it.

    python bench/step_profile.py [--precision fp32|bf16] [--steps 20]
"""

from __future__ import annotations

import argparse

import torch
from speedups import make_step, time_step
from torch.profiler import ProfilerActivity, profile
from train_throughput import seed_gan_flops_per_image

from gankit.config import load_preset
from gankit.data.imageset import unlabelled

BATCH = 128
KINDS = {
    "matrix products": ("aten::mm", "aten::addmm"),
    "dtype casts": ("aten::copy_", "aten::_to_copy"),
    "Adam (and zero_grad)": ("aten::_fused_adam_", "Optimizer.step#Adam.step", "Optimizer.zero_grad#Adam.zero_grad"),
    "LeakyReLU, mask products": ("aten::leaky_relu", "aten::leaky_relu_backward", "aten::mul"),  # mask draws are numpy
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    step = make_step(args.precision, "none")  # as shipped, set up as `gankit train` sets it up
    real = torch.rand(BATCH, 1, 28, 28)
    labels = unlabelled(real)
    time_step(step, real, 10)  # warm-up
    plain_ms = time_step(step, real, args.steps)["ms"]
    with profile(activities=[ProfilerActivity.CPU]) as profiler:
        for _ in range(args.steps):
            step(real, labels)
    self_ms = {e.key: e.self_cpu_time_total / 1e3 / args.steps for e in profiler.key_averages()}
    total = sum(self_ms.values())
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, report-gan-mnist step, {args.precision}, "
        f"batch {BATCH}: {plain_ms:.2f} ms unprofiled, {total:.2f} ms profiled (self times below)"
    )
    counted = 0.0
    for kind, names in KINDS.items():
        ms = sum(self_ms.get(name, 0.0) for name in names)
        counted += ms
        extra = ""
        if kind == "matrix products":
            extra = f", {seed_gan_flops_per_image(load_preset('report-gan-mnist')) * BATCH / ms / 1e6:.0f} GFLOP/s"
        print(f"  {kind:22} {ms:6.2f} ms  {ms / total:4.0%}{extra}")
    print(f"  {'everything else':22} {total - counted:6.2f} ms  {(total - counted) / total:4.0%}")


if __name__ == "__main__":
    main()

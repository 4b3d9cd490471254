"""Before/after ratios of the CPU training step's speed changes, each measured in one run.

For each change, gankit's seed-GAN step is timed as shipped ("after") and with that one change
undone ("before"), alternating over several repetitions, each timing in a fresh process; the
median step times are printed with their ratio. Changes:

- dropout: gankit's Dropout (masks from 16-bit slices of 64-bit draws) vs torch's nn.Dropout
- fused-adam: Adam(fused=True) vs Adam(foreach=True)
- control: nothing undone, two copies of the step as shipped (a check of the method: about 1.00x)

With --in-process both variants live in one process and alternate timing by timing (in the order
ABBA, BAAB, ... so neither always runs first).

    python bench/speedups.py [--repeats 7] [--steps 30] [--precision fp32|bf16] [--in-process]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

import torch
from torch import nn

from gankit.config import load_preset
from gankit.data.imageset import unlabelled
from gankit.models.dropout import Dropout
from gankit.training.loop import config_step
from gankit.training.state import TrainingState, new_state
from gankit.training.step import GANStep

CHANGES = ("dropout", "fused-adam", "control")


def make_step(precision: str, undo: str) -> GANStep:
    """The seed GAN's step with one change undone ("none": as shipped)."""
    config = load_preset("report-gan-mnist")
    config.train.precision = precision
    state: TrainingState = new_state(config, torch.device("cpu"))
    if undo == "dropout":
        for i, module in enumerate(state.D.net):
            if isinstance(module, Dropout):
                state.D.net[i] = nn.Dropout(module.p)
    if undo == "fused-adam":
        t = config.train
        state.opt_g = torch.optim.Adam(state.G.parameters(), lr=t.lr_g, betas=(t.beta1, t.beta2), foreach=True)
        state.opt_d = torch.optim.Adam(state.D.parameters(), lr=t.lr_d, betas=(t.beta1, t.beta2), foreach=True)
    return config_step(state, torch.device("cpu"), precision=precision)


def time_steps(precision: str, undo: str, steps: int) -> dict[str, float]:
    """Milliseconds per step and page faults per step, after a few warm-up steps."""
    torch.manual_seed(0)
    step = make_step(precision, undo)
    real = torch.rand(128, 1, 28, 28)  # a batch in the seed GAN's [0, 1] range; the data don't change the speed
    for _ in range(5):
        step(real, unlabelled(real))
    return time_step(step, real, steps)


def time_step(step: GANStep, real: torch.Tensor, steps: int) -> dict[str, float]:
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    start = time.perf_counter()
    labels = unlabelled(real)
    for _ in range(steps):
        step(real, labels)
    seconds = time.perf_counter() - start
    return {
        "ms": seconds / steps * 1e3,
        "faults": (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults) / steps,
    }


def in_child(precision: str, undo: str, steps: int) -> dict[str, float]:
    command = [sys.executable, __file__, "--child", undo, "--precision", precision, "--steps", str(steps)]
    return json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)


def in_process(precision: str, change: str, steps: int, repeats: int) -> dict[str, list[dict[str, float]]]:
    """Timings of the step as shipped and with `change` undone, alternating in this process."""
    torch.manual_seed(0)
    variants = {"none": make_step(precision, "none"), change: make_step(precision, change)}
    real = torch.rand(128, 1, 28, 28)
    runs: dict[str, list[dict[str, float]]] = {undo: [] for undo in variants}
    for i in range(repeats + 1):  # the first round warms both up and is not kept
        order = list(variants) if i % 2 == 0 else list(reversed(variants))
        for undo in order + order[::-1]:
            timing = time_step(variants[undo], real, steps)
            if i:
                runs[undo].append(timing)
    return runs  # the k-th timings of the two variants ran next to each other


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    parser.add_argument("--changes", default="dropout,fused-adam")
    parser.add_argument("--in-process", action="store_true", help="alternate both variants in this process")
    parser.add_argument("--child", help=argparse.SUPPRESS)  # time one variant and print it as JSON
    args = parser.parse_args()
    if args.child:
        print(json.dumps(time_steps(args.precision, args.child, args.steps)))
        return
    changes = args.changes.split(",")
    unknown = [c for c in changes if c not in CHANGES]
    if unknown:
        sys.exit(f"error: unknown change {unknown[0]!r} (known: {', '.join(CHANGES)})")
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU, {args.precision}, "
        f"batch 128, {args.steps} steps per timing, medians of "
        f"{f'{2 * args.repeats} (in one process)' if args.in_process else args.repeats}"
    )
    for change in changes:
        if args.in_process:
            runs = in_process(args.precision, change, args.steps, args.repeats)
        else:
            runs = {"none": [], change: []}
            for _ in range(args.repeats):
                for undo in runs:
                    runs[undo].append(in_child(args.precision, undo, args.steps))
        after, before = (
            {key: statistics.median(r[key] for r in runs[undo]) for key in ("ms", "faults")} for undo in runs
        )
        # each before/after pair ran back to back: its ratio is less exposed to the machine's drift
        paired = statistics.median(b["ms"] / a["ms"] for a, b in zip(runs["none"], runs[change]))
        print(
            f"{change}: before {before['ms']:.2f} ms/step ({before['faults']:.0f} page faults), "
            f"after {after['ms']:.2f} ms/step ({after['faults']:.0f}), speed-up {before['ms'] / after['ms']:.2f}x "
            f"(median of paired ratios {paired:.2f}x)"
        )


if __name__ == "__main__":
    main()

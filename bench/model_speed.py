"""Training images/s of each model's step, fp32 and bf16, each as a ratio to the report's DCGAN measured alongside.

Each MODEL is a preset with `--set`-style overrides after a colon, e.g.
`"report-dcgan-cifar10:model.arch=r3gan,model.base_channels=64"`. Every step is built as `gankit train` builds it
(the config's loss, penalties and augmentation), on a batch of random images in G's range (the data do not change
the speed). The steps alternate over --repeats rounds after a warm-up round; medians are printed. A model with lazy
R1 or R2 runs --steps rounded up to a multiple of their intervals, so that every round holds its share of them.

    python bench/model_speed.py [--models "report-dcgan-cifar10:model.arch=r3gan,..." ...] [--steps 5] [--repeats 5]
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import torch

from gankit.config import apply_overrides, load_preset
from gankit.data.imageset import unlabelled
from gankit.models import count_parameters
from gankit.training.loop import config_step
from gankit.training.state import new_state

BASELINE = "report-dcgan-cifar10"
DEFAULT_MODELS = [
    "report-dcgan-cifar10:model.arch=r3gan,model.base_channels=64,model.noise_dim=64",
    "report-dcgan-cifar10:model.arch=r3gan,model.base_channels=64,model.noise_dim=64,"
    "train.loss=relativistic,train.r1_gamma=0.05,train.r2_gamma=0.05",
    "report-dcgan-cifar10:train.ada_target=0.6",
    "sngan-small-data:data.image_size=32",
]


def build(model: str, precision: str):
    preset, _, overrides = model.partition(":")
    config = apply_overrides(load_preset(preset), [*filter(None, overrides.split(",")), f"train.precision={precision}"])
    torch.manual_seed(0)
    state = new_state(config, torch.device("cpu"))
    step = config_step(state, torch.device("cpu"), augment=state.augment)
    low, high = state.G.value_range
    c, s = config.data.channels, config.data.image_size
    real = torch.rand(config.train.batch_size, c, s, s) * (high - low) + low
    return step, real, state


def steps_per_round(steps: int, state) -> int:
    """At least `steps`, a whole number of the lazy regularisers' intervals (train.r1_every, train.r2_every)."""
    every = math.lcm(state.config.train.r1_every, state.config.train.r2_every)
    return math.ceil(steps / every) * every


def images_per_second(step, real: torch.Tensor, steps: int) -> float:
    labels = unlabelled(real)
    start = time.perf_counter()
    for _ in range(steps):
        step(real, labels)
    return steps * real.shape[0] / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=DEFAULT_MODELS)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; medians of {args.repeats} rounds")
    for precision in ("fp32", "bf16"):
        steps = {name: build(name, precision) for name in [BASELINE, *args.models]}
        speeds: dict[str, list[float]] = {name: [] for name in steps}
        for round_ in range(args.repeats + 1):  # the first round warms up and is not kept
            for name, (step, real, state) in steps.items():
                speed = images_per_second(step, real, steps_per_round(args.steps, state))
                if round_:
                    speeds[name].append(speed)
        base = statistics.median(speeds[BASELINE])
        for name, (_, real, state) in steps.items():
            median = statistics.median(speeds[name])
            size = f"G {count_parameters(state.G) / 1e6:.2f} M, D {count_parameters(state.D) / 1e6:.2f} M"
            print(f"{precision} {median:7.1f} img/s  x{median / base:5.2f}  batch {real.shape[0]}, {size}  {name}")


if __name__ == "__main__":
    main()

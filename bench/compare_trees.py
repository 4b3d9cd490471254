"""Two source trees of gankit (a refactor's before and after, as git worktrees) side by side: the same seeded configs
trained by each, compared by a hash of every tensor in the final checkpoint (G, D, both optimisers, the RNG states;
the nets' tensors in their order, not by name, so renamed layers with the same weights compare equal),
and training speed by each tree's own bench/train_throughput.py child, alternating the trees in fresh processes.

    git worktree add /tmp/before b207a3b
    python bench/compare_trees.py /tmp/before . --data-dir ../shared/data --out /tmp/compare
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

# name -> (preset, overrides); each trained by both trees with train.seed=0
CASES = {
    "report-gan-mnist": ("report-gan-mnist", ["train.epochs=3"]),
    "cgan-mnist": ("cgan-mnist", ["train.epochs=3"]),
    "sngan-cifar10": ("sngan-cifar10", ["train.epochs=1", "data.limit=12800", "train.device=cpu"]),
    "acgan-lazy-r1-ema": (
        "cgan-mnist",
        [
            "train.epochs=2",
            "data.limit=2048",
            "model.arch=dcgan",
            "data.image_size=32",
            "model.conditioning=acgan",
            "train.r1_gamma=1.0",
            "train.r1_every=4",
            "train.ema_decay=0.99",
        ],
    ),
    "wgan-gp": (
        "dcgan-mnist",
        [
            "train.epochs=1",
            "data.limit=1024",
            "train.loss=wgan",
            "train.gp_lambda=10",
            "train.d_steps=3",
            "train.diffaugment=translation",
        ],
    ),
    "projection": ("cgan-cifar10", ["train.epochs=1", "data.limit=1024"]),
}
SPEED = {"mlp": ("report-gan-mnist", 100), "dcgan": ("report-dcgan-cifar10", 8)}
OLD_NAMES = {"report-gan-mnist": "seed-gan-mnist", "report-dcgan-cifar10": "seed-dcgan-cifar10"}
TRAIN = """
import hashlib, sys, torch, gankit
from gankit.config import apply_overrides, load_preset
preset, out, data, *sets = sys.argv[1:]
run = gankit.train(apply_overrides(load_preset(preset), [*sets, "train.seed=0", "output.progress=false"]), out,
                   data_dir=data)
state = torch.load(run.checkpoint(), map_location="cpu", weights_only=False)
digest = hashlib.sha256()
def walk(x):
    if isinstance(x, torch.Tensor):
        digest.update(x.detach().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes() if x.numel() else b"")
    elif isinstance(x, dict):
        for key in sorted(x, key=str):
            digest.update(str(key).encode()); walk(x[key])
    elif isinstance(x, (list, tuple)):
        for value in x: walk(value)
    else:
        digest.update(repr(x).encode())
for key in ("generator", "discriminator", "generator_ema"):  # a net's tensors in order: a refactor may rename layers
    walk(list((state.get(key) or {}).values()))
for key in ("opt_g", "opt_d", "rng"):
    walk(state.get(key))
print(digest.hexdigest()[:16])
"""


def preset_in(tree: Path, preset: str) -> str:
    """The preset's name in `tree`: a tree from before a rename knows it by its old name."""
    return preset if (tree / "src/gankit/presets" / f"{preset}.yaml").is_file() else OLD_NAMES.get(preset, preset)


def run_in(tree: Path, args: list[str]) -> str:
    env = {**os.environ, "PYTHONPATH": str(tree / "src"), "MPLBACKEND": "Agg"}
    return subprocess.run([sys.executable, *args], check=True, capture_output=True, text=True, env=env, cwd=tree).stdout


def data_for(preset: str, data_dir: Path) -> Path:
    return data_dir / "cifar10-jpeg" / "cifar10-jpeg.tar.gz" if "cifar" in preset else data_dir / "mnist"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", type=Path, help="the first source tree (a git worktree)")
    parser.add_argument("after", type=Path, help="the second source tree")
    parser.add_argument("--data-dir", type=Path, default=Path("../shared/data"))
    parser.add_argument("--out", type=Path, default=Path("runs/compare"))
    parser.add_argument("--cases", default=",".join(CASES), help='which trainings to hash ("": none)')
    parser.add_argument("--repeats", type=int, default=5, help="speed timings per tree and model (0: no speed)")
    args = parser.parse_args()
    trees = {"before": args.before.resolve(), "after": args.after.resolve()}
    data_dir = args.data_dir.resolve()
    for name in filter(None, args.cases.split(",")):  # --cases "": speed only
        preset, sets = CASES[name]
        hashes = {
            side: run_in(
                tree,
                [
                    "-c",
                    TRAIN,
                    preset_in(tree, preset),
                    str(args.out.resolve() / side / name),
                    str(data_for(preset, data_dir)),
                    *sets,
                ],
            ).strip()
            for side, tree in trees.items()
        }
        print(f"{name:20} {'identical' if len(set(hashes.values())) == 1 else 'DIFFERENT'} {hashes}", flush=True)
    for model, (preset, steps) in SPEED.items() if args.repeats else ():
        rates: dict[str, list[float]] = {side: [] for side in trees}
        for _ in range(args.repeats):
            for side, tree in trees.items():
                rates[side].append(
                    json.loads(
                        run_in(
                            tree,
                            [
                                "bench/train_throughput.py",
                                "--child",
                                "fp32",
                                "--preset",
                                preset_in(tree, preset),
                                "--data-dir",
                                str(data_dir),
                                "--steps",
                                str(steps),
                            ],
                        )
                    )
                )
        before, after = (statistics.median(rates[side]) for side in trees)
        print(
            f"{model}: before {before:,.0f} img/s, after {after:,.0f} img/s, after/before {after / before:.3f} "
            f"(medians of {args.repeats}; {', '.join(f'{r:,.0f}' for r in rates['after'])} after)",
            flush=True,
        )


if __name__ == "__main__":
    main()

"""Training images/s: gankit's loop (fp32 and bf16) against a straightforward PyTorch loop, in one run.

The straightforward loop is what a tutorial writes: a torchvision dataset with ToTensor, a
shuffling DataLoader, the same networks built from torch's own layers (nn.Dropout), torch's
default Adam, and `.item()` on both losses every step. Each timing runs in a fresh process
(so no loop inherits another's allocator state) and the loops alternate over several
repetitions; the medians are printed, each as a ratio to the straightforward loop and, for the
seed GAN, as achieved GFLOP/s and a fraction of this machine's matmul peak at the seed GAN's
shapes, measured in the same run (bench/peak.py). `--rss` adds the peak resident memory of a
one-epoch `gankit train` of the preset.

    python bench/train_throughput.py --data-dir ../shared/data [--models mlp,dcgan] [--repeats 5] [--bf16] [--rss]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import torch
import torchvision
from torch import nn
from torch.utils.data import DataLoader, Subset
from torchvision import transforms

sys.path.insert(0, str(Path(__file__).parent))
from peak import blended_gflops  # noqa: E402

from gankit.config import Config, load_preset  # noqa: E402
from gankit.data import load_images  # noqa: E402
from gankit.data.mnist import torchvision_root  # noqa: E402
from gankit.losses import bce_discriminator_loss  # noqa: E402
from gankit.models import CONDITIONINGS, build_models  # noqa: E402
from gankit.models.dropout import Dropout  # noqa: E402
from gankit.training.loop import config_step, run_epoch  # noqa: E402
from gankit.training.state import new_state  # noqa: E402

PRESETS = {"mlp": "report-gan-mnist", "dcgan": "report-dcgan-cifar10"}


def seed_gan_flops_per_image(config: Config) -> float:
    """Matrix-product FLOPs one trained image costs the seed GAN's step (the accounting on the docs' results page, Training speed).

    D's step: G forward, D forward on real and generated, D backward for weights and activations
    (not D's input). G's step: D forward on the generated images, D backward for activations only
    (D's weights need no gradient there) including D's input, G backward for weights and for
    activations except z.
    """
    m = config.model
    g_layers = list(zip([m.noise_dim, *m.g_hidden], [*m.g_hidden, config.data.image_size**2]))
    d_layers = list(zip([config.data.image_size**2, *m.d_hidden], [*m.d_hidden, 1]))
    g = sum(i * o for i, o in g_layers)
    d = sum(i * o for i, o in d_layers)
    d_input = d_layers[0][0] * d_layers[0][1]  # D's input gradient, skipped in D's step
    z_grad = g_layers[0][0] * g_layers[0][1]  # the gradient of z, never needed
    d_step = g + 2 * (d + d + d - d_input)  # G forward; real and generated: D forward, weight and activation grads
    g_step = d + d + g + g - z_grad  # D forward and activation grads (with input), G weight and activation grads
    return 2 * (d_step + g_step)  # a multiply-add is two FLOPs


def gankit_loop(preset: str, data_dir: Path, steps: int, precision: str) -> float:
    """images/s of gankit's own epoch loop over `steps` batches, set up as `gankit train` sets it up."""
    config = load_preset(preset)
    config.output.progress = False
    config.train.precision = precision
    data = load_images(config.data, source_dir(preset, data_dir))
    state = new_state(config, torch.device("cpu"))
    step = config_step(state, torch.device("cpu"), precision=precision)
    count = steps * config.train.batch_size
    labels = CONDITIONINGS[config.model.conditioning].run_labels(data.labels)[:count]  # as `gankit train` gives them
    subset = data.images[:count]
    warm = 3 * config.train.batch_size
    run_epoch(step, subset[:warm], state, 1, labels[:warm])  # warm-up
    _, seconds, n = run_epoch(step, subset, state, 1, labels)
    return n / seconds


def straightforward_loop(preset: str, data_dir: Path, steps: int) -> float:
    """images/s of a tutorial-style loop: DataLoader, torch's layers and default Adam, per-step .item()."""
    config = load_preset(preset)
    torch.manual_seed(config.train.seed)
    G, D = build_models(config)
    for module in D.modules():  # torch's own dropout, as a tutorial's model has
        for name, child in module.named_children():
            if isinstance(child, Dropout):
                setattr(module, name, nn.Dropout(child.p))
    t = config.train
    opt_g = torch.optim.Adam(G.parameters(), lr=t.lr_g, betas=(t.beta1, t.beta2))
    opt_d = torch.optim.Adam(D.parameters(), lr=t.lr_d, betas=(t.beta1, t.beta2))
    with tempfile.TemporaryDirectory() as tmp:
        dataset = tutorial_dataset(preset, data_dir, (steps + 3) * t.batch_size, Path(tmp))
        loader = DataLoader(dataset, batch_size=t.batch_size, shuffle=True, drop_last=True)
        seen, start = 0, 0.0
        y = torch.zeros(t.batch_size, dtype=torch.long)  # gankit's nets take labels: an unconditional model's are 0
        for i, (real, _) in enumerate(loader):
            if i == 3:  # the first three steps warm up, as in gankit_loop
                start, seen = time.perf_counter(), 0
            if i == steps + 3:
                break
            z = torch.randn(real.shape[0], config.model.noise_dim)
            fake = G(z, y)
            d_loss = bce_discriminator_loss(D(real, y), D(fake.detach(), y))
            opt_d.zero_grad()
            d_loss.backward()
            opt_d.step()
            g_loss = torch.nn.functional.softplus(-D(fake, y)).mean()  # the non-saturating G loss
            opt_g.zero_grad()
            g_loss.backward()
            opt_g.step()
            d_loss.item(), g_loss.item()  # a tutorial's per-step host sync, kept on purpose
            seen += real.shape[0]
        return seen / (time.perf_counter() - start)


def source_dir(preset: str, data_dir: Path) -> Path:
    return data_dir / ("mnist" if preset == PRESETS["mlp"] else "cifar10-jpeg")


def tutorial_dataset(preset: str, data_dir: Path, n: int, workdir: Path) -> torch.utils.data.Dataset:
    if preset == PRESETS["mlp"]:
        # gankit unpacks the IDX files once into its cache; the tutorial reads that folder
        root = torchvision_root("mnist", data_dir / "mnist")
        dataset = torchvision.datasets.MNIST(str(root), train=True, transform=transforms.ToTensor())
        return Subset(dataset, range(n))
    # CIFAR-10 JPEGs unpacked for ImageFolder, scaled to [-1, 1]
    with tarfile.open(data_dir / "cifar10-jpeg" / "cifar10-jpeg.tar.gz") as tf:
        members = [m for m in tf.getmembers() if m.name.startswith("train/") and m.isfile()]
        tf.extractall(workdir, members=members[:: max(1, len(members) // n)][:n], filter="data")
    normalise = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.5,) * 3, (0.5,) * 3)])
    return torchvision.datasets.ImageFolder(str(workdir / "train"), transform=normalise)


def child(kind: str, preset: str, data_dir: Path, steps: int) -> float:
    if kind == "rss":
        return peak_rss_mib(preset, data_dir)
    if kind == "straightforward":
        return straightforward_loop(preset, data_dir, steps)
    if kind in ("fp32", "bf16"):
        return gankit_loop(preset, data_dir, steps, kind)
    dtype = torch.float32 if kind == "peak-fp32" else torch.bfloat16
    return blended_gflops(dtype, repeats=3)


def in_child(kind: str, preset: str, args: argparse.Namespace, steps: int) -> float:
    command = [
        sys.executable,
        __file__,
        "--child",
        kind,
        "--preset",
        preset,
        "--data-dir",
        str(args.data_dir),
        "--steps",
        str(steps),
    ]
    return json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)


def peak_rss_mib(preset: str, data_dir: Path) -> float:
    """Peak resident memory of a one-epoch `gankit train` of the preset, run from a process with no other children."""
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "gankit",
                "train",
                preset,
                "--epochs",
                "1",
                "--no-progress",
                "--data-dir",
                str(source_dir(preset, data_dir)),
                "--out",
                f"{tmp}/run",
            ],
            check=True,
            capture_output=True,
        )
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # Linux reports KiB


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=Path("../shared/data"))
    parser.add_argument("--models", default="mlp,dcgan")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--mlp-steps", type=int, default=100)
    parser.add_argument("--dcgan-steps", type=int, default=8)
    parser.add_argument("--bf16", action="store_true", help="also time gankit's loop under bf16 autocast")
    parser.add_argument("--rss", action="store_true", help="also report the peak memory of a one-epoch run")
    parser.add_argument("--child", help=argparse.SUPPRESS)  # one timing, printed as JSON
    parser.add_argument("--preset", help=argparse.SUPPRESS)
    parser.add_argument("--steps", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.preset, args.data_dir, args.steps)))
        return
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU")
    for model in args.models.split(","):
        preset, steps = PRESETS[model], getattr(args, f"{model}_steps")
        kinds = ["fp32", "straightforward"] + (["bf16"] if args.bf16 else [])
        if model == "mlp":
            kinds += ["peak-fp32"] + (["peak-bf16"] if args.bf16 else [])
        runs: dict[str, list[float]] = {kind: [] for kind in kinds}
        for _ in range(args.repeats):
            for kind in kinds:
                runs[kind].append(in_child(kind, preset, args, steps))
        median = {kind: statistics.median(values) for kind, values in runs.items()}
        base = median["straightforward"]
        print(f"{preset} ({steps} steps of batch 128, medians of {args.repeats}):")
        print(f"  straightforward loop  {base:7,.0f} img/s")
        flops = seed_gan_flops_per_image(load_preset(preset)) if model == "mlp" else None
        for precision in ("fp32", "bf16"):
            if precision not in median:
                continue
            rate = median[precision]
            line = f"  gankit loop, {precision}    {rate:7,.0f} img/s  {rate / base:.2f}x straightforward"
            if precision == "bf16":
                line += f", {rate / median['fp32']:.2f}x gankit fp32"
            if flops is not None:
                achieved, peak = rate * flops / 1e9, median[f"peak-{precision}"]
                line += f", {achieved:.0f} GFLOP/s = {achieved / peak:.0%} of the {peak:.0f} GFLOP/s {precision} peak"
            print(line)
        if flops is not None:
            print(
                f"  ({flops / 1e6:.1f} MFLOP of matrix products per image; "
                f"peak = matmul at the seed GAN's shapes, bench/peak.py, in the same run)"
            )
        if args.rss:
            print(
                f"  peak resident memory of `gankit train {preset} --epochs 1`: {in_child('rss', preset, args, 0):,.0f} MiB"
            )


if __name__ == "__main__":
    main()

"""Training images/s: gankit's loop against a straightforward PyTorch loop, side by side in one run.

The straightforward loop is what a tutorial writes: a torchvision dataset with ToTensor, a
shuffling DataLoader, the same networks, losses and optimisers, and `.item()` on both losses
every step. Both loops alternate over several repetitions; the medians are printed.

    python bench/train_throughput.py --data-dir ../shared/data [--models mlp,dcgan] [--repeats 5] [--bf16]
"""

from __future__ import annotations

import argparse
import statistics
import tarfile
import tempfile
import time
from pathlib import Path

import torch
import torchvision
from torch.utils.data import DataLoader, Subset
from torchvision import transforms

from gankit.config import load_preset
from gankit.data import load_images
from gankit.data.mnist import torchvision_root
from gankit.losses import discriminator_loss, nonsaturating_generator_loss
from gankit.train.loop import run_epoch
from gankit.train.state import new_state
from gankit.train.step import GANStep

PRESETS = {"mlp": "seed-gan-mnist", "dcgan": "seed-dcgan-cifar10"}


def gankit_loop(preset: str, images: torch.Tensor, steps: int, precision: str = "fp32") -> float:
    """images/s of gankit's own epoch loop over `steps` batches."""
    config = load_preset(preset)
    config.output.progress = False
    config.train.precision = precision
    state = new_state(config, torch.device("cpu"))
    step = GANStep(state.G, state.D, state.opt_g, state.opt_d, config.train, torch.device("cpu"))
    subset = images[: steps * config.train.batch_size]
    run_epoch(step, subset[: 2 * config.train.batch_size], state, 1)  # warm-up
    _, seconds, n = run_epoch(step, subset, state, 1)
    return n / seconds


def straightforward_loop(preset: str, dataset: torch.utils.data.Dataset, steps: int) -> float:
    """images/s of a tutorial-style loop: DataLoader, per-step .item() on the losses."""
    config = load_preset(preset)
    state = new_state(config, torch.device("cpu"))
    G, D, opt_g, opt_d = state.G, state.D, state.opt_g, state.opt_d
    loader = DataLoader(dataset, batch_size=config.train.batch_size, shuffle=True, drop_last=True)
    losses = []
    seen = 0
    start = None
    for i, (real, _) in enumerate(loader):
        if i == 2:  # the first two steps warm up, as in gankit_loop
            start, seen = time.perf_counter(), 0
        if i == steps + 2:
            break
        z = torch.randn(real.shape[0], config.model.noise_dim)
        fake = G(z)
        d_loss = discriminator_loss(D(real), D(fake.detach()))
        opt_d.zero_grad()
        d_loss.backward()
        opt_d.step()
        g_loss = nonsaturating_generator_loss(D(fake))
        opt_g.zero_grad()
        g_loss.backward()
        opt_g.step()
        losses.append((d_loss.item(), g_loss.item()))
        seen += real.shape[0]
    return seen / (time.perf_counter() - start)


def tutorial_dataset(model: str, data_dir: Path, n: int, workdir: Path) -> torch.utils.data.Dataset:
    if model == "mlp":
        # gankit unpacks the IDX files once into its cache; the tutorial reads that folder
        root = torchvision_root("mnist", data_dir / "mnist")
        dataset = torchvision.datasets.MNIST(str(root), train=True, transform=transforms.ToTensor())
        return Subset(dataset, range(n))
    # CIFAR-10 JPEGs unpacked for ImageFolder, scaled to [-1, 1]
    with tarfile.open(data_dir / "cifar10-jpeg" / "cifar10-jpeg.tar.gz") as tf:
        members = [m for m in tf.getmembers() if m.name.startswith("train/") and m.isfile()]
        tf.extractall(workdir, members=members[::max(1, len(members) // n)][:n], filter="data")
    normalise = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.5,) * 3, (0.5,) * 3)])
    return torchvision.datasets.ImageFolder(str(workdir / "train"), transform=normalise)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=Path("../shared/data"))
    parser.add_argument("--models", default="mlp,dcgan")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--mlp-steps", type=int, default=100)
    parser.add_argument("--dcgan-steps", type=int, default=8)
    parser.add_argument("--bf16", action="store_true", help="also time gankit's loop under bf16 autocast")
    args = parser.parse_args()
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU")
    for model in args.models.split(","):
        preset, steps = PRESETS[model], getattr(args, f"{model}_steps")
        config = load_preset(preset)
        source = args.data_dir / ("mnist" if model == "mlp" else "cifar10-jpeg")
        images = load_images(config.data, source).images
        n = (steps + 2) * config.train.batch_size
        with tempfile.TemporaryDirectory() as tmp:
            dataset = tutorial_dataset(model, args.data_dir, n, Path(tmp))
            ours, ours_bf16, theirs = [], [], []
            for _ in range(args.repeats):
                ours.append(gankit_loop(preset, images, steps))
                if args.bf16:
                    ours_bf16.append(gankit_loop(preset, images, steps, "bf16"))
                theirs.append(straightforward_loop(preset, dataset, steps))
        a, b = statistics.median(ours), statistics.median(theirs)
        print(f"{preset}: gankit loop {a:,.0f} img/s, straightforward loop {b:,.0f} img/s, "
              f"ratio {a / b:.2f} (medians of {args.repeats}; {steps} steps of batch {config.train.batch_size})")
        if args.bf16:
            c = statistics.median(ours_bf16)
            print(f"{preset}: gankit loop in bf16 {c:,.0f} img/s, {c / a:.2f}x its fp32 loop")


if __name__ == "__main__":
    main()

"""Does the contrastive evaluator rank generators as the data set's classifier does? A ladder of real checkpoints
(early to late, a collapsed one among them) is scored by FD in both networks' features, against the test split, and
the script prints each checkpoint's two FDs, the real floor (a training subset against the test split) in each, and
Spearman's rank correlation of the two columns.

The contrastive encoder is the one gankit trains for a data set without a classifier (gankit.evaluators.contrastive),
here trained on the data set's own training split; the classifier is gankit's evaluator of the data set.

    python bench/evaluator_agreement.py --dataset mnist --data-dir ../shared/data/mnist --n 5000 RUN [RUN ...]

Every checkpoint in each RUN/checkpoints (not best.pt) is a rung; its samples come from the EMA of G's weights where
the run keeps one. With --doubling only a run's 1st, 2nd, 4th, 8th, ... checkpoint is a rung: a run checkpointed every
epoch (or 1 kimg) that kept them all (output.keep_checkpoints=100) gives rungs at 1, 2, 4, ... epochs (kimg), quality
levels far enough apart to have one true order.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

import gankit
from gankit.checkpoint import BEST, list_checkpoints
from gankit.config import DataConfig
from gankit.data import DATASETS, load_images
from gankit.evaluators.contrastive import load_contrastive
from gankit.metrics import compute
from gankit.metrics.features import EncoderExtractor, Extractor, evaluator_features
from gankit.sampling import sample_images


def ranks(values: list[float]) -> list[float]:
    order = sorted(range(len(values)), key=values.__getitem__)
    result = [0.0] * len(values)
    for rank, index in enumerate(order):
        result[index] = float(rank)
    return result


def spearman(a: list[float], b: list[float]) -> float:
    """Spearman's rank correlation (no ties among FDs in practice)."""
    ra, rb = ranks(a), ranks(b)
    n = len(a)
    return 1 - 6 * sum((x - y) ** 2 for x, y in zip(ra, rb)) / (n * (n * n - 1))


def centre(images: torch.Tensor, size: int) -> torch.Tensor:
    """Samples of a run that padded the data (MNIST at 32x32) cropped back to the data's own size."""
    start = (images.shape[-1] - size) // 2
    return images[..., start : start + size, start : start + size]


def fd(extractor: Extractor, real: torch.Tensor, images: torch.Tensor) -> float:
    return float(compute(["fid"], extractor(real), extractor(images))["fid"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, nargs="+")
    parser.add_argument("--dataset", choices=["mnist", "fashion-mnist", "cifar10"], required=True)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--doubling", action="store_true", help="only each run's 1st, 2nd, 4th, 8th, ... checkpoint")
    args = parser.parse_args()
    source = DATASETS[args.dataset]
    data = DataConfig(dataset=args.dataset, dir=str(args.data_dir), image_size=source.size, channels=source.channels)
    train, test = load_images(data, train=True), load_images(data, train=False)
    start = time.perf_counter()
    encoder, info, name = load_contrastive(train.images, progress=False)
    print(
        f"{name}: trained on {info['train_images']} images in {info['train_seconds']:.0f} s "
        f"(this call {time.perf_counter() - start:.0f} s with the cache)"
    )
    extractors = {"classifier": evaluator_features(data, None, False), "contrastive": EncoderExtractor(encoder, name)}
    real = test.images[: args.n]
    pick = torch.randperm(len(train), generator=torch.Generator().manual_seed(0))[: args.n]
    floors = {key: fd(e, real, train.images[pick]) for key, e in extractors.items()}
    print(f"real floor: classifier FD {floors['classifier']:.3f}, contrastive FD {floors['contrastive']:.3f}")
    rows = []
    for path in args.runs:
        run = gankit.load_run(path)
        checkpoints = [c for c in list_checkpoints(run.folder.checkpoints) if c.name != BEST]
        if args.doubling:
            checkpoints = [c for number, c in enumerate(checkpoints, 1) if number & (number - 1) == 0]
        for checkpoint in checkpoints:
            G = run.generator(checkpoint)
            images = centre(sample_images(G, args.n, seed=0), source.size)
            row = {key: fd(e, real, images) for key, e in extractors.items()}
            rows.append((f"{path.name}/{checkpoint.stem}", row))
            print(
                f"{path.name}/{checkpoint.stem:28s} classifier FD {row['classifier']:10.3f}  "
                f"contrastive FD {row['contrastive']:10.3f}",
                flush=True,
            )
    rho = spearman([r["classifier"] for _, r in rows], [r["contrastive"] for _, r in rows])
    print(f"Spearman rank correlation over {len(rows)} checkpoints: {rho:.3f}")


if __name__ == "__main__":
    main()

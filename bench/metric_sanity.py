"""Do gankit's metrics move the right way? Real images made worse step by step must score worse at every step.

N real training images stand in for a generator's samples, scored against N test images, in each extractor's
features (gankit's classifier for the data set, `contrastive`: the encoder gankit trains for data without one, and
with --weights `inception` or a `dinov2-*`):
- noise: Gaussian noise of standard deviation 0, 0.05, 0.1, 0.2, 0.4 (pixels in [0, 1]);
- blur: Gaussian blur of standard deviation 0, 0.5, 1, 1.5, 2 pixels;
- classes: the images of k classes replaced by images of the others, k = 0, 2, 4, 6, 8 (still N images);
- collapsed: one real image N times, which must have recall and coverage near 0 and precision not below recall.
Fidelity (fid, kid_mean, precision, density, is_mean) must worsen along noise and blur, diversity (fid, kid_mean,
recall, coverage, classes_covered, class_kl) along classes; the table marks each such ladder ok or NO.

    python bench/metric_sanity.py --data-dir ../shared/data/mnist --dataset mnist --n 5000
    python bench/metric_sanity.py --data-dir ../shared/data/cifar10-jpeg/cifar10-jpeg.tar.gz --dataset cifar10 \\
        --features evaluator,contrastive,dinov2-vits14 --weights dinov2_vits14_pretrain.pth
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torchvision.transforms.functional as TF

from gankit.config import DataConfig
from gankit.data import DATASETS, ImageSet, load_images
from gankit.metrics import EXTRACTORS, compute, reads
from gankit.metrics.features import EncoderExtractor, Extractor

LOWER_IS_BETTER = {"fid", "kid_mean", "class_kl"}
FIDELITY = ("fid", "kid_mean", "precision", "density", "is_mean")
DIVERSITY = ("fid", "kid_mean", "recall", "coverage", "classes_covered", "class_kl")
LADDERS = {
    "noise": ([0.0, 0.05, 0.1, 0.2, 0.4], FIDELITY),
    "blur": ([0.0, 0.5, 1.0, 1.5, 2.0], FIDELITY),
    "classes": ([0, 2, 4, 6, 8], DIVERSITY),
}


def noise(images: torch.Tensor, sigma: float, gen: torch.Generator) -> torch.Tensor:
    pixels = images.float() / 255 + sigma * torch.randn(images.shape, generator=gen)
    return (pixels.clamp(0, 1) * 255).round().to(torch.uint8)


def blur(images: torch.Tensor, sigma: float) -> torch.Tensor:
    if sigma == 0:
        return images
    size = 2 * math.ceil(3 * sigma) + 1
    return TF.gaussian_blur(images.float(), [size, size], [sigma, sigma]).round().clamp(0, 255).to(torch.uint8)


def drop_classes(data: ImageSet, k: int, gen: torch.Generator) -> torch.Tensor:
    """The images of classes 0..k-1 replaced by images drawn from the other classes."""
    dropped = data.labels < k
    pool = torch.nonzero(~dropped).squeeze(1)
    images = data.images.clone()
    images[dropped] = data.images[pool[torch.randint(len(pool), (int(dropped.sum()),), generator=gen)]]
    return images


def degrade(name: str, data: ImageSet, step: float) -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    if name == "noise":
        return noise(data.images, step, gen)
    if name == "blur":
        return blur(data.images, step)
    return drop_classes(data, int(step), gen)


def monotone(values: list[float], key: str) -> bool:
    """Whether each step scores strictly worse than the one before."""
    worse = (lambda a, b: b > a) if key in LOWER_IS_BETTER else (lambda a, b: b < a)
    return all(worse(a, b) for a, b in zip(values, values[1:]))


def metrics_for(features: str, dataset: str) -> list[str]:
    """Every metric the features can give (the contrastive encoder, like DINOv2, gives no class probabilities)."""
    probabilities = features != "contrastive" and reads(features, dataset).probabilities
    return ["fid", "kid", "pr", *(["is", "coverage"] if probabilities else [])]


def ladders(
    extractor: Extractor, metrics: list[str], real: ImageSet, fake: ImageSet, steps: dict = LADDERS
) -> dict[str, list[dict]]:
    """Every ladder's scores of `fake` made worse, against `real`, in `extractor`'s features."""
    reference = extractor(real.images, real.labels)
    return {
        name: [compute(metrics, reference, extractor(degrade(name, fake, step), fake.labels)) for step in ladder]
        for name, (ladder, _) in steps.items()
    }


def collapsed(extractor: Extractor, metrics: list[str], real: ImageSet, fake: ImageSet) -> dict:
    one = fake.images[:1].expand(len(fake), -1, -1, -1).contiguous()
    return compute(metrics, extractor(real.images, real.labels), extractor(one, fake.labels))


def build(features: str, data: DataConfig, weights: Path | None) -> Extractor:
    if features == "contrastive":  # the folder evaluator, on a data set that has classes to check it by
        from gankit.evaluators.contrastive import load_contrastive

        encoder, _, name = load_contrastive(load_images(data, train=True).images, progress=False)
        return EncoderExtractor(encoder, name)
    make: Callable[[DataConfig, Path | None, bool], Extractor] = EXTRACTORS[features]
    return make(data, weights, False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=DATASETS.names(), default="mnist")
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--n", type=int, default=5000, help="images on each side")
    parser.add_argument("--features", default="evaluator,contrastive", help="comma-separated extractors")
    parser.add_argument("--weights", type=Path, help="the weights file of inception or dinov2-*")
    args = parser.parse_args()
    source = DATASETS[args.dataset]
    data = DataConfig(dataset=args.dataset, dir=str(args.data_dir), image_size=source.size, channels=source.channels)
    real = load_images(data, train=False).head(args.n)
    fake = load_images(data, train=True)
    fake = ImageSet(
        *(
            t[torch.randperm(len(fake), generator=torch.Generator().manual_seed(1))[: args.n]]
            for t in (fake.images, fake.labels)
        ),
        fake.classes,
        fake.source,
    )
    print(f"{args.dataset}: {args.n} training images made worse against {args.n} test images")
    for features in args.features.split(","):
        start = time.perf_counter()
        extractor = build(features, data, args.weights)
        metrics = metrics_for(features, args.dataset)
        results = ladders(extractor, metrics, real, fake)
        print(f"\n{extractor.name} features ({time.perf_counter() - start:.0f} s)")
        for name, (steps, expected) in LADDERS.items():
            keys = [k for k in results[name][0] if isinstance(results[name][0][k], (int, float))]
            print(f"  {name:8s} {'step':>8s} " + " ".join(f"{k:>15s}" for k in keys))
            for step, row in zip(steps, results[name]):
                print(f"  {'':8s} {step:8g} " + " ".join(f"{row[k]:15.4g}" for k in keys))
            marks = [
                f"{k} {'ok' if monotone([r[k] for r in results[name]], k) else 'NO'}" for k in keys if k in expected
            ]
            print(f"  {'':8s} monotone: " + ", ".join(marks))
        one = collapsed(extractor, metrics, real, fake)
        print(
            f"  collapsed: precision {one['precision']:.3f}, recall {one['recall']:.3f}, "
            f"coverage {one['coverage']:.3f}, fid {one['fid']:.4g}"
        )


if __name__ == "__main__":
    main()

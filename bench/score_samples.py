"""Score images made elsewhere (a .npy of uint8 (N, C, H, W)) exactly as gankit scores a run's samples.

For comparing other code with gankit on equal terms: bench/keras_reference.py saves its samples as
such arrays, and this prints their metrics with gankit's evaluator against the test split, beside
the real-versus-real floor.

    python bench/score_samples.py runs/keras/seed-*/samples-epoch-0030.npy --preset report-gan-mnist \\
        --data-dir ../shared/data/mnist [--metrics fid,coverage]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

import gankit
from gankit.evaluate import make_scorer
from gankit.metrics import compute, parse_metrics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("samples", type=Path, nargs="+", help=".npy files of uint8 images (N, C, H, W)")
    parser.add_argument("--preset", default="report-gan-mnist", help="the preset whose data set and evaluator to use")
    parser.add_argument("--data-dir", type=Path, default=Path("../shared/data/mnist"))
    parser.add_argument("--metrics", default="fid,coverage")
    args = parser.parse_args()
    metrics = parse_metrics(args.metrics)
    first = np.load(args.samples[0])
    scorer = make_scorer(
        gankit.load_preset(args.preset),
        n=len(first),
        metrics=metrics,
        features="evaluator",
        data_dir=args.data_dir,
        progress=False,
    )
    print(
        f"{scorer.extractor.name}, n = {scorer.n} against the test split; real floor: "
        + ", ".join(f"{k} {v:.4g}" for k, v in scorer.floor.items() if isinstance(v, (int, float)))
    )
    for path in args.samples:
        images = torch.from_numpy(np.load(path))[: scorer.n_generated]
        if images.dtype != torch.uint8 or images.ndim != 4:
            raise SystemExit(
                f"error: {path} holds {images.dtype} of shape {tuple(images.shape)}, not uint8 (N, C, H, W)"
            )
        result = compute(metrics, scorer.real, scorer.extractor(images))
        print(
            f"{path}: " + ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in result.items())
        )


if __name__ == "__main__":
    main()

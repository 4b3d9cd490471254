"""Seconds to score 10,000 generated images with the MNIST evaluator: sampling, features and all metrics.

    python bench/eval_speed.py RUN_DIR --data-dir ../shared/data/mnist [--n 10000] [--repeats 3]

The real side (test-split features, real-versus-real floor) is computed once per run folder and
timed apart; the figure that matters for repeated scoring is the generated side.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

from gankit.evaluate import make_scorer, score
from gankit.run import load_run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--data-dir", type=Path, default=Path("../shared/data/mnist"))
    parser.add_argument("--n", type=int, default=10000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    run = load_run(args.run)
    G, config, checkpoint = run.generator(), run.config, run.checkpoint()
    start = time.perf_counter()
    scorer = make_scorer(
        config,
        n=args.n,
        metrics=["fid", "kid", "is", "pr", "coverage"],
        features="evaluator",
        data_dir=args.data_dir,
        progress=False,
    )
    real_side = time.perf_counter() - start
    times = [score(scorer, G, seed=i)["seconds"] for i in range(args.repeats)]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {checkpoint}")
    print(f"real side once (evaluator load, {args.n} test + {args.n} train features, floor): {real_side:.1f} s")
    print(
        f"scoring {args.n} generated images (sample, features, fid kid is pr coverage): "
        f"median {statistics.median(times):.1f} s of {args.repeats} ({', '.join(f'{t:.1f}' for t in times)})"
    )


if __name__ == "__main__":
    main()

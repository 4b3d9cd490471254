"""Does a batch-norm G's EMA need its own statistics? Scores each checkpoint of a run three ways: the EMA copy with
the batch-norm statistics it copied from G, the same copy after `standing_statistics`, and the raw G.

    python bench/ema_batch_norm.py RUN --data-dir ../shared/data/mnist [--n 10000]

RUN must have trained with train.ema_decay and code from before standing statistics (commit 7b04f05 or earlier,
whose checkpoints hold the copied statistics). FID and classes covered: gankit's evaluator for the data set.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import gankit
from gankit.checkpoint import list_checkpoints, load_checkpoint
from gankit.evaluate import make_scorer, score
from gankit.models import build_models
from gankit.training.state import standing_statistics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--data-dir", type=Path)
    parser.add_argument("--n", type=int, default=10_000)
    args = parser.parse_args()
    run = gankit.load_run(args.run)
    scorer = make_scorer(
        run.config, n=args.n, metrics=["fid", "coverage"], features="evaluator", data_dir=args.data_dir, progress=False
    )
    print(f"{'checkpoint':16} {'EMA, copied statistics':>24} {'EMA, standing statistics':>26} {'raw G':>20}")
    for path in list_checkpoints(run.path / "checkpoints"):
        checkpoint = load_checkpoint(path)
        ema, raw = build_models(run.config)[0], build_models(run.config)[0]
        ema.load_state_dict(checkpoint["generator_ema"])
        raw.load_state_dict(checkpoint["generator"])
        copied = score(scorer, ema)["metrics"]
        standing_statistics(ema, seed=run.config.train.seed)
        standing = score(scorer, ema)["metrics"]
        plain = score(scorer, raw)["metrics"]
        cells = [
            (f"FID {m['fid']:.1f}, {m['classes_covered']} classes", width)
            for m, width in ((copied, 24), (standing, 26), (plain, 20))
        ]
        print(f"{path.name:16} " + " ".join(f"{text:>{width}}" for text, width in cells))


if __name__ == "__main__":
    main()

"""A run folder as its users need it: config, records, checkpoints, and the trained generator to sample,
walk, score, export and report."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from gankit.checkpoint import BEST, list_checkpoints, load_checkpoint
from gankit.config import Config, model_difference
from gankit.errors import GankitError
from gankit.models import Generator, build_models
from gankit.rundir import RunDir
from gankit.sampling import check_output_size, class_rows, interpolate, resolve_class, sample_images


def load_run(path: Path | str) -> Run:
    """The run in folder `path` (it must hold a config.yaml)."""
    folder = RunDir(Path(path))
    return Run(folder.path, folder.load_config())


@dataclass
class Run:
    """A trained (or training) run: its folder and resolved config, and what can be done with its generator."""

    path: Path
    config: Config

    @property
    def folder(self) -> RunDir:
        """The run folder's files: config, metrics, grids, curves (`plot_path`), checkpoints, evaluations."""
        return RunDir(self.path)

    def metrics(self) -> list[dict[str, Any]]:
        """The per-epoch records of metrics.jsonl."""
        return self.folder.read_metrics()

    def checkpoint(self, which: Path | str | None = None) -> Path:
        """`which` (a path, or "best": the scored epoch with the lowest FID), or the run's newest checkpoint."""
        if which is not None and str(which) == "best":
            best = self.folder.checkpoints / BEST
            if not best.is_file():
                raise GankitError(
                    f"{self.path} has no best checkpoint: checkpoints/{BEST} is kept when a run scores FID "
                    "during training (output.eval_every)"
                )
            return best
        if which is not None:
            return Path(which)
        found = list_checkpoints(self.folder.checkpoints)
        if not found:
            raise GankitError(f"{self.path} has no checkpoint yet (train it for an epoch first)")
        return found[-1]

    def generator(self, checkpoint: Path | None = None, *, raw: bool = False) -> Generator:
        """G of the newest (or the given) checkpoint, in eval mode on the CPU; its `epoch` attribute says when.

        Where the run keeps a moving average of G's weights (train.ema_decay, schedule.ema_kimg_end), that is the G
        returned, unless `raw` asks for G's own weights."""
        path = self.checkpoint(checkpoint)
        state = load_checkpoint(path)
        problem = model_difference(state.get("config"), self.config)
        if problem:
            raise GankitError(f"checkpoint {path} holds a different model than the run {self.path} ({problem})")
        G, _ = build_models(self.config)
        try:
            G.load_state_dict(state["generator"] if raw or "generator_ema" not in state else state["generator_ema"])
            G.epoch = int(state.get("epoch", 0))
        except (KeyError, RuntimeError, ValueError, TypeError, AttributeError, IndexError) as exc:
            raise GankitError(
                f"checkpoint {path} does not fit the run's generator: {str(exc).splitlines()[0][:200]}"
            ) from None
        G.checkpoint = path
        return G.eval()

    @property
    def classes(self) -> list[str]:
        """The class names of a conditional run, by label; empty for an unconditional one (the zero-class case)."""
        m = self.config.model
        return list(self.config.data.classes or [str(i) for i in range(m.num_classes)])

    def conditional_classes(self) -> list[str]:
        """The run's classes, refusing an unconditional run: what a request naming a class calls first."""
        if not self.classes:
            raise GankitError(f"{self.path} is an unconditional run: it takes no class", option="class")
        return self.classes

    def class_index(self, which: int | str) -> int:
        """A class by index or by name (any case), checked against the run's classes."""
        return resolve_class(self.conditional_classes(), which)

    def sample(
        self,
        n: int,
        *,
        seed: int = 0,
        checkpoint: Path | None = None,
        raw: bool = False,
        label: int | str | None = None,
    ) -> torch.Tensor:
        """n uint8 images (n, C, H, W), all of class `label` where given (conditional runs); the same
        seed gives the same images."""
        index = None if label is None else self.class_index(label)
        return sample_images(self.generator(checkpoint, raw=raw), n, seed=seed, label=index)

    def sample_classes(
        self, per_class: int, *, seed: int = 0, checkpoint: Path | None = None, raw: bool = False
    ) -> torch.Tensor:
        """uint8 images (K * per_class, C, H, W) of a conditional run, class by class, each class from
        the same `per_class` noise vectors: a grid with `per_class` images per row has one row per class."""
        count = per_class * len(self.conditional_classes())
        if per_class <= 0:
            raise GankitError(f"n must be positive, got {per_class} per class", option="n")
        G = self.generator(checkpoint, raw=raw)
        check_output_size(G, count, f"n {count}")
        noise, labels = class_rows(G, per_class, seed=seed)
        return sample_images(G, noise=noise, labels=labels)

    def interpolate(
        self,
        pairs: int,
        steps: int,
        *,
        mode: str = "slerp",
        seed: int = 0,
        checkpoint: Path | None = None,
        raw: bool = False,
        label: int | str | None = None,
    ) -> torch.Tensor:
        """uint8 latent walks (pairs, steps, C, H, W); a conditional run's walks stay within class
        `label` (else within a class drawn per walk)."""
        index = None if label is None else self.class_index(label)
        return interpolate(self.generator(checkpoint, raw=raw), pairs, steps, mode=mode, seed=seed, label=index)

    def evaluate(
        self,
        *,
        n: int = 10_000,
        metrics: list[str] | None = None,
        features: str = "evaluator",
        data_dir: Path | str | None = None,
        weights: Path | str | None = None,
        seed: int = 0,
        checkpoint: Path | None = None,
        progress: bool = True,
        raw: bool = False,
        out: Path | str | None = None,
        force: bool = False,
    ) -> tuple[dict[str, Any], Path]:
        """Score a checkpoint against the held-out split (a folder without one: against its training images); the
        result is also written as JSON to `out` (an existing file only with `force`), by default to RUN/eval/."""
        from gankit.evaluate import make_scorer, score
        from gankit.files import check_new
        from gankit.metrics import METRICS, applicable, check_applicable, reads

        if out is not None:
            check_new(Path(out), force)  # before the scoring's minutes
        G = self.generator(checkpoint, raw=raw)
        conditional = bool(G.num_classes)
        if metrics:
            check_applicable(metrics, conditional, features, self.config.data.dataset)
        scorer = make_scorer(
            self.config,
            n=n,
            metrics=metrics
            or [m for m in applicable(conditional, reads(features, self.config.data.dataset)) if METRICS[m].by_default],
            features=features,
            data_dir=None if data_dir is None else Path(data_dir),
            weights=None if weights is None else Path(weights),
            progress=progress,
        )
        sampled = "raw" if raw and self.config.keeps_ema else "ema" if self.config.keeps_ema else "G"
        result = {"epoch": G.epoch, "checkpoint": str(G.checkpoint), "weights": sampled, **score(scorer, G, seed=seed)}
        return result, self.folder.save_eval(result, None if out is None else Path(out))

    def export(
        self,
        fmt: str,
        out: Path | str | None = None,
        *,
        checkpoint: Path | None = None,
        force: bool = False,
        raw: bool = False,
    ) -> tuple[Path, Path]:
        """The generator alone as `fmt` (default: RUN/export/); returns the model's and its description's
        paths. A file `out` (or its description) that exists is replaced only with `force`."""
        from gankit.export import FORMATS, export_generator
        from gankit.files import check_new, ensure_parent

        G = self.generator(checkpoint, raw=raw)
        if out is not None:
            out = Path(out)
            for path in (out, out.with_name(out.name + ".json")):
                check_new(path, force)
        out = out or self.path / "export" / f"generator-{G.checkpoint.stem}{'-raw' if raw else ''}{FORMATS[fmt].suffix}"
        ensure_parent(out)
        return out, export_generator(G, out, fmt, self.classes)

    def report(self, out: Path | str | None = None, *, force: bool = False, raw: bool | None = None) -> Path:
        """Write the run's HTML page (default RUN/report.html, rewritten each time; an existing `out`
        only with `force`) and grid animation; returns the page. Its new samples come from G's own weights
        with `raw`, from their average without; None: as the run's output.sample_from says."""
        from gankit.files import check_new
        from gankit.report import write_report

        if out is not None:
            check_new(Path(out), force)
        if raw is None:
            raw = self.config.output.sample_from == "raw"
        return write_report(self, None if out is None else Path(out), raw=raw)

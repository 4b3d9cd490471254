"""A run folder: the resolved config, metrics as JSON lines, pictures and checkpoints.

RUN/config.yaml          the resolved config, data location included (resuming needs no flags repeated)
RUN/metrics.jsonl        one JSON line per finished epoch, and per point part-way through one where work fell due
RUN/losses.png           loss and D-accuracy curves, redrawn at most once a minute and at the end
RUN/grids/epoch-NNNN.png samples from a fixed noise batch (epoch-NNNN-step-SSSS.png part-way through an epoch)
RUN/checkpoints/epoch-NNNN.pt (and epoch-NNNN-step-SSSS.pt)
RUN/.lock                held by the run writing to the folder
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
from pathlib import Path
from typing import Any

import yaml
from filelock import FileLock, Timeout

from gankit.config import Config, load_config_file
from gankit.errors import GankitError
from gankit.files import atomic_write_text, ensure_parent

log = logging.getLogger(__name__)

JOB_MARK = ".torchrun-job"  # in a run folder: the torchrun job that created it
# what gankit writes into a run folder, beside the folders' own files below: all a failed new run takes back
WRITTEN_FILES = ("config.yaml", "metrics.jsonl", "losses.png", "report.html", "progress.gif", ".lock", JOB_MARK)
WRITTEN_IN_FOLDERS = (
    ("grids", "epoch-*.png"),
    ("checkpoints", "*.pt"),
    ("eval", "*.json"),
    ("tensorboard", "events.out.tfevents.*"),
)


class RunDir:
    def __init__(self, path: Path):
        self.path = path
        self.config_path = path / "config.yaml"
        self.metrics_path = path / "metrics.jsonl"
        self.plot_path = path / "losses.png"
        self.grids = path / "grids"
        self.checkpoints = path / "checkpoints"
        self.evals = path / "eval"
        self._lock: FileLock | None = None

    def exists(self) -> bool:
        return self.config_path.is_file()

    def create(self, config: Config) -> None:
        self.ensure_folders()
        self.lock()
        self.save_config(config)

    def ensure_folders(self) -> None:
        """The folders a run writes into: made for a new run, and again on resume where a user removed them."""
        try:
            self.grids.mkdir(parents=True, exist_ok=True)
            self.checkpoints.mkdir(exist_ok=True)
        except OSError as exc:
            raise GankitError(f"cannot create run folder {self.path}: {exc.strerror}") from None

    def discard(self, *, remove_folder: bool) -> None:
        """Take back what gankit wrote into the folder, never a file anyone else put there; with `remove_folder`
        (gankit made the folder) the folder goes too, if nothing else is left in it."""
        self.unlock()
        written = [self.path / name for name in WRITTEN_FILES]
        for folder, pattern in WRITTEN_IN_FOLDERS:
            written += (self.path / folder).glob(pattern)
        for path in written:
            if path.is_file() and not path.is_symlink():
                with contextlib.suppress(OSError):
                    path.unlink()
        for directory in [
            *(self.path / name for name, _ in WRITTEN_IN_FOLDERS),
            *([self.path] if remove_folder else []),
        ]:
            with contextlib.suppress(OSError):
                directory.rmdir()  # only where empty

    def save_config(self, config: Config) -> None:
        atomic_write_text(self.config_path, yaml.safe_dump(config.to_dict(), sort_keys=False))

    def load_config(self) -> Config:
        if not self.exists():
            raise GankitError(f"{self.path} is not a gankit run folder (no config.yaml)")
        return load_config_file(self.config_path)

    def lock(self) -> None:
        """Hold an exclusive lock on the folder (flock, or Windows' own lock): the OS drops it if the process dies."""
        if self._lock is not None:
            return
        lock = FileLock(self.path / ".lock")
        try:
            lock.acquire(timeout=0)
        except Timeout:
            raise GankitError(f"run folder {self.path} is in use by another live run") from None
        except OSError as exc:
            raise GankitError(f"cannot write to run folder {self.path}: {exc.strerror}") from None
        self._lock = lock

    def unlock(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def read_metrics(self) -> list[dict[str, Any]]:
        """The records of metrics.jsonl. A last line cut short by a crash is dropped (resuming writes it
        again from its checkpoint); a damaged line before it is an error, not something to skip."""
        if not self.metrics_path.is_file():
            return []
        try:
            lines = self.metrics_path.read_text().splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise GankitError(f"cannot read {self.metrics_path}: {getattr(exc, 'strerror', None) or exc}") from None
        records = []
        for number, line in enumerate(lines, 1):
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                record = None
            if not isinstance(record, dict) or not isinstance(record.get("epoch"), int):
                if number == len(lines):
                    log.warning(
                        "%s: its last line is incomplete (a crash cut it short) and is left out", self.metrics_path
                    )
                    break
                raise GankitError(f"{self.metrics_path} line {number} is damaged; restore the file or remove that line")
            records.append(record)
        return records

    def append_metrics(self, record: dict[str, Any]) -> None:
        try:
            with open(self.metrics_path, "a") as f:
                f.write(json.dumps(record) + "\n")
                f.flush()
                os.fsync(f.fileno())
        except OSError as exc:
            raise GankitError(f"cannot write {self.metrics_path}: {exc.strerror}") from None

    def keep_metrics_through(self, at: tuple[int, float], last_record: dict[str, Any] | None = None) -> None:
        """Make the metrics end at the checkpoint's place in the run (`place`), so a resumed run writes each record once.

        Lines past it are dropped; its own line, if a crash kept it from the file, comes from the
        checkpoint (`last_record`).
        """
        records = [r for r in self.read_metrics() if place(r) <= at]
        if last_record is not None and (not records or place(records[-1]) != place(last_record)):
            records.append(last_record)
        atomic_write_text(self.metrics_path, "".join(json.dumps(r) + "\n" for r in records))

    def save_eval(self, result: dict[str, Any], path: Path | None = None) -> Path:
        """One scoring's full result, at `path` or by default RUN/eval/epoch-NNNN[-step-SSSS]-FEATURES-nN.json."""
        raw = "-raw" if result.get("weights") == "raw" else ""  # G's own weights, beside its moving average's score
        stem = place_stem(result["epoch"], result.get("step"))
        path = path or self.evals / f"{stem}-{result['features']}-n{result['n_generated']}{raw}.json"
        ensure_parent(path)
        atomic_write_text(path, json.dumps(result, indent=2) + "\n")
        return path


def place(record: dict[str, Any]) -> tuple[int, float]:
    """Where in the run a record was written: its epoch, and how far through it (1.0 at its end), for ordering records
    and checkpoints alike."""
    return int(record["epoch"]), float(record.get("epoch_fraction", 1.0))


def place_stem(epoch: int, step: int | None = None) -> str:
    """The name of what a point of the run writes (grid, checkpoint, score): epoch-NNNN at an epoch's end,
    epoch-NNNN-step-SSSS part-way through it."""
    return f"epoch-{epoch:04d}" if step is None else f"epoch-{epoch:04d}-step-{step:04d}"


def next_run_dir(root: Path, name: str) -> Path:
    """runs/00000-NAME, runs/00001-NAME, ...: a fresh auto-numbered folder."""
    numbers = (
        [int(m.group(1)) for p in root.glob("*") if (m := re.match(r"^(\d{5})-", p.name))] if root.is_dir() else []
    )
    return root / f"{max(numbers, default=-1) + 1:05d}-{name}"


def numbered_run_dirs(root: Path, name: str) -> list[Path]:
    """The auto-numbered folders of runs named NAME, oldest first."""
    return sorted(p for p in root.glob(f"[0-9][0-9][0-9][0-9][0-9]-{name}") if p.is_dir()) if root.is_dir() else []

"""Checkpoints: everything needed to continue a run exactly, written atomically, read safely.

A checkpoint is a dict of tensors and plain values saved by `torch.save`. Loading uses
`weights_only=True`, so a file crafted to run code while unpickling is refused.
"""

from __future__ import annotations

import json
import math
import pickle
import re
from pathlib import Path
from typing import Any, BinaryIO, cast

import torch

from gankit.errors import GankitError
from gankit.files import atomic_write
from gankit.rundir import RunDir, place

FORMAT = "gankit-checkpoint"
FORMAT_VERSION = 1
NAME = re.compile(r"^epoch-(\d{4,})(?:-step-(\d{4,}))?\.pt$")  # rundir.place_stem
BEST = "best.pt"  # the scored epoch with the lowest FID, beside the newest epochs


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write to a temporary file, fsync it, rename it over `path`, fsync the folder."""
    state = {"format": FORMAT, "format_version": FORMAT_VERSION, **state}
    atomic_write(path, lambda tmp: torch_save(state, tmp), durable=True)


def torch_save(state: Any, path: Path) -> None:
    """torch.save through a Python file object, so that a failed write (a full disk) comes out as the OSError it is;
    torch's own writer reports it as 'unexpected pos'."""
    with open(path, "wb") as f:
        writer = _KeepingWriteErrors(f)
        try:
            torch.save(state, cast(BinaryIO, writer))  # a file object, as torch.save takes
        except RuntimeError:
            if writer.error is not None:
                raise writer.error from None
            raise


class _KeepingWriteErrors:
    """A file's writer that remembers the OSError of a failed write, which torch's writer turns into another error."""

    def __init__(self, f: BinaryIO) -> None:
        self.f = f
        self.error: OSError | None = None

    def write(self, data: bytes) -> int:
        try:
            return self.f.write(data)
        except OSError as exc:
            self.error = exc
            raise

    def flush(self) -> None:
        self.f.flush()


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read a gankit checkpoint on the CPU; anything else is refused with a clear error."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise GankitError(f"checkpoint {path} does not exist") from None
    except IsADirectoryError:
        raise GankitError(f"checkpoint {path} is a folder, not a file") from None
    except pickle.UnpicklingError as exc:
        # torch's message suggests weights_only=False, which would run the file's code: never. A file that names a
        # function or class to call ("unsupported GLOBAL") tried to; anything else is damaged
        if "unsupported global" in str(exc).lower():
            raise _corrupt(
                path, "it holds more than tensors and plain values; gankit refuses to run code from a file"
            ) from None
        raise _corrupt(path, "not a file torch wrote") from None
    except Exception as exc:  # noqa: BLE001 - a damaged file fails in torch's readers in many ways, all meaning one
        raise _corrupt(path, _first_sentence(str(exc)) or type(exc).__name__) from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise GankitError(f"{path} is not a gankit checkpoint")
    if state.get("format_version") != FORMAT_VERSION:
        raise GankitError(
            f"checkpoint {path} has format version {state.get('format_version')}; this gankit reads {FORMAT_VERSION}"
        )
    return state


def _corrupt(path: Path, reason: str) -> GankitError:
    """The refusal of an unreadable checkpoint, naming an older one beside it that can be used instead."""
    at = _place_of(path)
    older = [p for p in list_checkpoints(path.parent) if at is not None and (_place_of(p) or (0, 0.0)) < at]
    instead = f"; {older[-1].name} beside it is untouched: to resume from it, move this one aside" if older else ""
    return GankitError(f"checkpoint {path} is corrupt or unsafe to load ({reason}){instead}")


def _place_of(path: Path) -> tuple[int, float] | None:
    """A checkpoint's order by its name: its epoch, then its step part-way through it (an epoch's end after them)."""
    match = NAME.match(path.name)
    if match is None:
        return None
    return int(match.group(1)), float(match.group(2)) if match.group(2) else math.inf


def _first_sentence(text: str, limit: int = 160) -> str:
    """The first line of a message, to its first full stop, and no longer than `limit` (cut at a word, with '...')."""
    line = text.strip().splitlines()[0].strip() if text.strip() else ""
    line = line.split(". ")[0].rstrip(".")
    return line if len(line) <= limit else line[:limit].rsplit(" ", 1)[0] + "..."


def list_checkpoints(folder: Path) -> list[Path]:
    """The folder's checkpoints, oldest first."""
    if not folder.is_dir():
        return []
    found = [(at, p) for p in folder.iterdir() if (at := _place_of(p)) is not None]
    return [p for _, p in sorted(found)]


def newest_checkpoint(run: RunDir) -> tuple[dict[str, Any] | None, str]:
    """The run's newest checkpoint, loaded, and its path in words; (None, "") when it has none yet."""
    checkpoints = list_checkpoints(run.checkpoints)
    return (load_checkpoint(checkpoints[-1]), str(checkpoints[-1])) if checkpoints else (None, "")


def check_records_agree(run: RunDir, at: tuple[int, float], record: Any, source: str) -> None:
    """Refuse to resume from the checkpoint at place `at` in the run (`rundir.place`; (0, 1.0): none) that carries
    `record`, where the run's records disagree with it: a resume cuts the records back to it, so records past it that a
    checkpoint was written with (its later checkpoints were removed) or another record of its own place (another run's
    checkpoint) would be lost. Records written without a checkpoint (`"checkpoint": false`) are replayed, not lost.
    Runs before anything is written."""
    records = run.read_metrics()
    past = [r for r in records if place(r) > at and r.get("checkpoint", True)]
    if past:
        epoch = at[0]
        found = (
            f"its newest checkpoint is {source}"
            if record is not None or epoch
            else f"{run.checkpoints} holds no checkpoint"
        )
        raise GankitError(
            f"{run.metrics_path} records epochs up to {past[-1]['epoch']}, but {found}: resuming would drop those "
            f"records; put the removed checkpoints back, or, to go back to epoch {epoch} on purpose, "
            "remove the later lines of metrics.jsonl first (or start a new run in another folder)"
        )
    own = [r for r in records if place(r) == at]
    if own and record is not None and _as_json(own[0]) != _as_json(record):
        raise GankitError(
            f"{source} is not this run's checkpoint: its record of epoch {at[0]} differs from {run.metrics_path}'s"
        )


def _as_json(record: Any) -> str | None:
    try:
        return json.dumps(record)
    except (TypeError, ValueError):  # not a record gankit wrote
        return None


def prune_checkpoints(folder: Path, keep: int) -> None:
    for path in list_checkpoints(folder)[:-keep]:
        path.unlink(missing_ok=True)

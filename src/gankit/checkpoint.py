"""Checkpoints: everything needed to continue a run exactly, written atomically, read safely.

A checkpoint is a dict of tensors and plain values saved by `torch.save`. Loading uses
`weights_only=True`, so a file crafted to run code while unpickling is refused.
"""

from __future__ import annotations

import pickle
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from gankit.errors import GankitError
from gankit.files import atomic_write

if TYPE_CHECKING:
    from gankit.rundir import RunDir

FORMAT = "gankit-checkpoint"
FORMAT_VERSION = 1
NAME = re.compile(r"^epoch-(\d{4,})\.pt$")
BEST = "best.pt"  # the scored epoch with the lowest FID, beside the newest epochs


def checkpoint_name(epoch: int) -> str:
    return f"epoch-{epoch:04d}.pt"


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write to a temporary file, fsync it, rename it over `path`, fsync the folder."""
    state = {"format": FORMAT, "format_version": FORMAT_VERSION, **state}
    atomic_write(path, lambda tmp: torch.save(state, tmp), durable=True)


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read a gankit checkpoint on the CPU; anything else is refused with a clear error."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise GankitError(f"checkpoint {path} does not exist") from None
    except pickle.UnpicklingError:
        # torch's own message goes on to suggest loading with weights_only=False, which would run the file's code
        raise GankitError(f"checkpoint {path} is corrupt or unsafe to load (it holds more than tensors and plain "
                          "values; gankit refuses to run code from a file)") from None
    except (RuntimeError, EOFError, ValueError, OSError, AttributeError, TypeError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise GankitError(f"checkpoint {path} is corrupt or unsafe to load ({reason[:200]})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise GankitError(f"{path} is not a gankit checkpoint")
    if state.get("format_version") != FORMAT_VERSION:
        raise GankitError(f"checkpoint {path} has format version {state.get('format_version')}; this gankit reads {FORMAT_VERSION}")
    return state


def list_checkpoints(folder: Path) -> list[Path]:
    """The folder's checkpoints, oldest epoch first."""
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := NAME.match(p.name))]
    return [p for _, p in sorted(found)]


def newest_checkpoint(run: "RunDir") -> tuple[dict[str, Any] | None, str]:
    """The run's newest checkpoint, loaded, and its path in words; (None, "") when it has none yet."""
    checkpoints = list_checkpoints(run.checkpoints)
    return (load_checkpoint(checkpoints[-1]), str(checkpoints[-1])) if checkpoints else (None, "")


def prune_checkpoints(folder: Path, keep: int) -> None:
    for path in list_checkpoints(folder)[:-keep]:
        path.unlink(missing_ok=True)

"""Where data lives: the folder the user names, the run's remembered one, $GANKIT_DATA_DIR, or gankit's cache."""

from __future__ import annotations

import os
from pathlib import Path

from gankit.errors import GankitError

ENV_DATA_DIR = "GANKIT_DATA_DIR"


def cache_dir() -> Path:
    """gankit's cache, made if need be: $GANKIT_CACHE_DIR, else $XDG_CACHE_HOME/gankit, else ~/.cache/gankit."""
    if os.environ.get("GANKIT_CACHE_DIR"):
        folder, named_by = Path(os.environ["GANKIT_CACHE_DIR"]), "$GANKIT_CACHE_DIR"
    else:
        folder = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "gankit"
        named_by = "$XDG_CACHE_HOME" if os.environ.get("XDG_CACHE_HOME") else "the home folder"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise GankitError(
            f"gankit's cache {folder} (from {named_by}) cannot be a folder: {exc.strerror or exc}"
        ) from None
    return folder


def resolve_data_dir(data_dir: Path | None, stored: str | None = None) -> Path | None:
    """The data location as an absolute path: `data_dir` if given, else `stored` (data.dir), else
    $GANKIT_DATA_DIR; None means gankit's cache (downloading there)."""
    if data_dir is not None:
        if not data_dir.exists():
            raise GankitError(f"data_dir {data_dir} does not exist", option="data_dir")
        return data_dir.resolve()
    if stored is not None:
        if not Path(stored).exists():
            raise GankitError(
                f"the data at {stored} (data.dir) is no longer there; name where it is now with data_dir",
                option="data_dir",
            )
        return Path(stored).resolve()
    if os.environ.get(ENV_DATA_DIR):
        path = Path(os.environ[ENV_DATA_DIR])
        if not path.exists():
            raise GankitError(f"${ENV_DATA_DIR} names {path}, which does not exist")
        return path.resolve()
    return None


def download_dir() -> Path:
    return cache_dir() / "data"

"""Where data lives: the folder the user names, $GANKIT_DATA_DIR, or gankit's cache."""

from __future__ import annotations

import os
from pathlib import Path

from gankit.errors import GankitError

ENV_DATA_DIR = "GANKIT_DATA_DIR"


def cache_dir() -> Path:
    """gankit's cache: $GANKIT_CACHE_DIR, else $XDG_CACHE_HOME/gankit, else ~/.cache/gankit."""
    if os.environ.get("GANKIT_CACHE_DIR"):
        return Path(os.environ["GANKIT_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "gankit"


def explicit_data_dir(data_dir: Path | None) -> Path | None:
    """The folder the user named (--data-dir, then $GANKIT_DATA_DIR); None means use the cache."""
    if data_dir is None and os.environ.get(ENV_DATA_DIR):
        data_dir = Path(os.environ[ENV_DATA_DIR])
    if data_dir is not None and not data_dir.exists():
        raise GankitError(f"data directory {data_dir} does not exist")
    return data_dir


def download_dir() -> Path:
    return cache_dir() / "data"

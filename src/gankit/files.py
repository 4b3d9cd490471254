"""Atomic writes: a temporary file beside the target, renamed over it only once complete."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from gankit.errors import GankitError


def atomic_write(path: Path, write: Callable[[Path], None], *, durable: bool = False) -> None:
    """Call `write(tmp)`, then rename tmp over `path`; with `durable`, fsync the file and the folder first.

    Any failure leaves `path` as it was and no temporary file behind.
    """
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        write(tmp)
        if durable:
            _fsync(tmp, os.O_RDONLY)
        os.replace(tmp, path)
        if durable:
            _fsync(path.parent, os.O_RDONLY)
    except OSError as exc:
        raise GankitError(f"cannot write {path}: {exc.strerror or exc}") from None
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_text(path: Path, text: str, *, durable: bool = True) -> None:
    atomic_write(path, lambda tmp: tmp.write_text(text), durable=durable)


def _fsync(path: Path, flags: int) -> None:
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def ensure_parent(path: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise GankitError(f"cannot write {path}: {exc.strerror}") from None


def check_new(path: Path, force: bool) -> None:
    """Refuse to replace a user's existing file unless asked (`force`); never replace anything but a file."""
    if path.is_symlink() or (path.exists() and not path.is_file()):
        raise GankitError(f"{path} exists and is not a plain file; name another file")
    if not force and path.exists():
        raise GankitError(f"{path} already exists; name another file, or replace it with force", option="force")

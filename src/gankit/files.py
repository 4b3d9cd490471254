"""Atomic writes: a temporary file beside the target, renamed over it only once complete."""

from __future__ import annotations

import functools
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from gankit.errors import GankitError


def atomic_write(path: Path, write: Callable[[Path], None], *, durable: bool = False) -> None:
    """Call `write(tmp)`, then rename tmp over `path`; with `durable`, fsync the file and the folder first.

    Any failure leaves `path` as it was and no temporary file behind.
    """
    tmp = temporary_beside(path)
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


def temporary_beside(path: Path, *, folder: bool = False) -> Path:
    """A new empty file (or folder) beside `path` under an unpredictable name, created exclusively, so that nothing
    planted there beforehand (a link to another file, say) is followed; readable as a file made with open() would be."""
    prefix, parent = f".{path.name}.", path.parent
    try:
        if folder:
            made = Path(tempfile.mkdtemp(prefix=prefix, suffix=".tmp", dir=parent))
            os.chmod(made, 0o777 & ~_umask())
            return made
        fd, name = tempfile.mkstemp(prefix=prefix, suffix=".tmp", dir=parent)
        try:
            os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes it private; the finished file is an ordinary one
        finally:
            os.close(fd)
        return Path(name)
    except OSError as exc:
        raise GankitError(f"cannot write {path}: {exc.strerror or exc}") from None


@functools.cache
def _umask() -> int:
    mask = os.umask(0o022)  # read by setting it, and put back at once
    os.umask(mask)
    return mask


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

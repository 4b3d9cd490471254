"""Atomic writes: a temporary file beside the target, renamed over it only once complete."""

from __future__ import annotations

import os
import secrets
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
    """A new empty file (or folder) beside `path` under an unpredictable name, created exclusively (O_EXCL), so that
    nothing planted there beforehand (a link to another file, say) is followed: writers reopen it by name, which is safe
    because no one can guess the name in advance. Its permissions are those open() gives."""
    for _ in range(100):
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
        try:
            if folder:
                tmp.mkdir(0o777)
            else:
                os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            return tmp
        except FileExistsError:
            continue  # taken (by chance, or planted): another name
        except OSError as exc:
            raise GankitError(f"cannot write {path}: {exc.strerror or exc}") from None
    raise GankitError(f"cannot write {path}: no free temporary name beside it")


def atomic_write_text(path: Path, text: str, *, durable: bool = True) -> None:
    def write(tmp: Path) -> None:
        tmp.write_text(text)

    atomic_write(path, write, durable=durable)


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

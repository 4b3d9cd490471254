"""Ctrl-C and SIGTERM as exceptions raised where the program is, except inside code that must not stop half-way.

The command line installs `stop_on_signals`: SIGINT raises KeyboardInterrupt and SIGTERM (how torchrun, SLURM and
docker stop a process) `Terminated`, so that finally-blocks remove partial files and a new run's folder, as on Ctrl-C.
An exception raised inside a process pool's bookkeeping or a lock's release can leave a lock held and the process
hanging at exit, and one raised inside a finaliser is swallowed. So code of gankit's that must not stop half-way runs
under `deferred()`, where a signal is raised as the block ends; and a signal that finds the program inside Python's
standard library (logging's lock, a pool's finaliser) is sent again a moment later, to land in gankit's or torch's code.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sysconfig
import threading
from collections.abc import Iterator
from types import FrameType


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the program is so that it stops as it does on Ctrl-C."""


_held = 0  # depth of `deferred()` blocks (signal handlers run on the main thread only: no lock needed)
_pending: int | None = None  # a signal that arrived in one
_STDLIB = sysconfig.get_paths()["stdlib"]
RESEND_SECONDS, MOST_RESENDS = (
    0.05,
    40,
)  # a signal waits at most about 2 s for the program to leave the standard library
_resends = 0
_resend_timers: list[threading.Timer] = []


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """SIGINT and SIGTERM raise (KeyboardInterrupt, `Terminated`) inside the block; the handlers before it come back
    after it. Only the main thread can set handlers: elsewhere the block changes nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, _raise_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for timer in _resend_timers:  # a signal sent again after this would meet the handler before it
            timer.cancel()
        _resend_timers.clear()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """A signal arriving inside the block is raised when the block ends (if it ends without an exception of its own)."""
    global _held, _pending
    _held += 1
    try:
        yield
    except BaseException:
        _held -= 1
        if not _held and _pending is not None:  # the block failed: the signal comes again, for the next safe moment
            signum, _pending = _pending, None
            os.kill(os.getpid(), signum)
        raise
    _held -= 1
    if not _held and _pending is not None:
        signum, _pending = _pending, None
        _raise(signum)


def _raise_signal(signum: int, frame: FrameType | None) -> None:
    global _pending, _resends
    if _held:
        _pending = signum
        return
    if frame is not None and _in_standard_library(frame) and _resends < MOST_RESENDS:
        _resends += 1
        resend = threading.Timer(RESEND_SECONDS, os.kill, (os.getpid(), signum))
        resend.daemon = True
        resend.start()
        _resend_timers.append(resend)
        return
    _resends = 0
    _raise(signum)


def _in_standard_library(frame: FrameType) -> bool:
    filename = frame.f_code.co_filename
    return filename.startswith(_STDLIB) and "site-packages" not in filename


def _raise(signum: int) -> None:
    raise Terminated if signum == signal.SIGTERM else KeyboardInterrupt

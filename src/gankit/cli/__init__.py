"""The `gankit` command: parses the line (parser.py), runs the command (commands.py), and turns what goes wrong into
one line on stderr and an exit code. User errors exit 2."""

from __future__ import annotations

import logging
import os
import re
import select
import signal
import sys

from gankit.checkpoint import list_checkpoints
from gankit.cli import commands
from gankit.cli.parser import build_parser
from gankit.errors import GankitError
from gankit.interrupts import Terminated, stop_on_signals
from gankit.training.distributed import lost_a_peer, speaks_for_group

log = logging.getLogger("gankit")

# the library's names for what a user can set, and the flags that set them here (GankitError.options)
FLAGS = {
    "data_dir": "--data-dir",
    "run_dir": "--out",
    "resume": "--resume",
    "n": "--n",
    "seed": "--seed",
    "pairs": "--pairs",
    "steps": "--steps",
    "mode": "--mode",
    "weights": "--weights",
    "train.on_nan": "--on-nan",
    "train.precision": "--precision",
    "train.device": "--device",
    "output.tensorboard": "--tensorboard",
    "override": "--set",
    "force": "--force",
    "class": "--class",
    "port": "--port",
    "train.batch_size": "--batch-size",
    "train.compile": "--compile",
    "format": "--format",
}


def main(argv: list[str] | None = None) -> int:
    _setup_logging()
    with stop_on_signals():  # SIGTERM stops as Ctrl-C does, cleaning up on the way
        return _main(argv)


def _main(argv: list[str] | None) -> int:
    args = None
    try:
        args = build_parser().parse_args(argv)
        args.argv = list(sys.argv[1:] if argv is None else argv)
        code = getattr(commands, f"cmd_{args.command}")(args)
        sys.stdout.flush()  # a reader gone away (gankit presets | head -1) shows here, not in Python's exit
        return code
    except BrokenPipeError as exc:
        if not _stdout_reader_gone():  # some other pipe: a failure like any other
            return _internal_error(exc)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so the flush at exit cannot fail again
        return 141  # 128 + SIGPIPE (13): what a shell shows for any tool whose reader closed the pipe
    except GankitError as exc:
        if speaks_for_group():
            print(f"gankit: error: {cli_message(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as stop:
        code = 128 + (signal.SIGTERM if isinstance(stop, Terminated) else signal.SIGINT)
        if not speaks_for_group():
            return code
        out = args.out if args is not None and args.command == "train" else None
        resumable = out is not None and bool(list_checkpoints(out / "checkpoints"))
        what = "terminated" if isinstance(stop, Terminated) else "interrupted"
        print(
            f"gankit: {what}; continue with --resume --out {out}" if resumable else f"gankit: {what}",
            file=sys.stderr,
        )
        return code
    except Exception as exc:  # noqa: BLE001 - a bug, or a failure gankit did not foresee: one line, details on disk
        return _internal_error(exc)


def _internal_error(exc: Exception) -> int:
    """One line naming the failure and the file that holds its traceback; exit code 1."""
    if not speaks_for_group() and lost_a_peer(exc):  # the process that failed first has said why
        return 1
    where = _save_traceback()
    print(
        f"gankit: internal error: {type(exc).__name__}: {str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ''}"
        f" (the traceback is in {where}; please report it)",
        file=sys.stderr,
    )
    return 1


def _stdout_reader_gone() -> bool:
    """Whether stdout is a pipe whose reader has closed it (`gankit presets | head -1`), as poll() reports it."""
    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLERR)
        return any(event & select.POLLERR for _, event in poller.poll(0))
    except (AttributeError, OSError, ValueError):  # no poll() (Windows), or stdout is no file
        return False


def _save_traceback() -> str:
    """Write the current exception's traceback to a file of its own; returns its path."""
    import tempfile
    import traceback

    with tempfile.NamedTemporaryFile("w", prefix="gankit-traceback-", suffix=".txt", delete=False) as f:
        traceback.print_exc(file=f)
    return f.name


def cli_message(error: GankitError) -> str:
    """The error's message with the library's names for options replaced by this command's flags."""
    message = str(error)
    for term in error.options:
        if term in FLAGS:
            message = re.sub(rf"(?<![\w./\\-]){re.escape(term)}(?![\w./\\-])", FLAGS[term], message, count=1)
    return message


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is at the time (tests and tqdm swap it)."""

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


def _setup_logging() -> None:
    if not log.handlers:
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("gankit: %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)

"""`gankit train ... --nproc-per-node N`: N processes of the same command on this machine, as
`torchrun --standalone --nproc-per-node N -m gankit train ...` starts them, without torchrun's own log lines and
the 40-line traceback it prints when a process fails. The processes speak through rank 0: a user error is its one
line, and the command exits with that process's code."""

from __future__ import annotations

import logging
import os

from gankit.errors import GankitError

TORCH_LOGGERS = ("torch.distributed", "torch.distributed.elastic")


PER_DEVICE = ("gpu", "cpu", "auto")  # torchrun's own counts: one process per GPU, one, or one per GPU if any


def launch(argv: list[str], processes: str) -> int:
    """Run `gankit` with the arguments `argv` in `processes` processes joined into one group (a number, or one of
    torchrun's PER_DEVICE counts); each process sees the same argv and knows from torchrun's environment that it
    is one of the group. Returns the exit code of the first that failed, else 0."""
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import get_args_parser, run

    if processes not in PER_DEVICE and not (processes.isdigit() and int(processes) >= 1):
        raise GankitError(
            f"--nproc-per-node must be a number of processes or one of {', '.join(PER_DEVICE)}, got {processes!r}",
            option="nproc_per_node",
        )
    if processes.isdigit():  # torchrun would give each process 1 thread: share the cores out instead
        os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // int(processes))))
    for name in TORCH_LOGGERS:
        logging.getLogger(name).setLevel(logging.CRITICAL)
    options = get_args_parser().parse_args(["--standalone", f"--nproc-per-node={processes}", "-m", "gankit", *argv])
    try:
        run(options)
    except ChildFailedError as failed:
        by_rank = sorted(failed.failures.items())
        return next((f.exitcode for _, f in by_rank if f.exitcode > 0), 1)
    except (KeyboardInterrupt, SignalException):  # each process has said what it stopped and how to resume
        return 130
    return 0

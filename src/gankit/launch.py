"""`gankit train ... --nproc-per-node N`: N processes of the same command on this machine, as
`torchrun --standalone --nproc-per-node N -m gankit train ...` starts them, without torchrun's own log lines and
the 40-line traceback it prints when a process fails. The processes speak through rank 0: a user error is its one
line, and the command exits with that process's code."""

from __future__ import annotations

import logging
import os
import signal

import torch

from gankit.errors import GankitError

TORCH_LOGGERS = ("torch.distributed", "torch.distributed.elastic")


PER_DEVICE = ("gpu", "cpu", "auto")  # torchrun's own counts: one process per GPU, per CPU core, per GPU if any


def launch(argv: list[str], processes: str) -> int:
    """Run `gankit` with the arguments `argv` in `processes` processes joined into one group (a number, or one of
    torchrun's PER_DEVICE counts); each process sees the same argv and knows from torchrun's environment that it
    is one of the group. Returns the exit code of the first that failed, else 0."""
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import get_args_parser, run

    count = process_count(processes)
    # torchrun would give each process 1 thread: share the cores out instead
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // count)))
    options = get_args_parser().parse_args(["--standalone", f"--nproc-per-node={count}", "-m", "gankit", *argv])
    for name in [*TORCH_LOGGERS, *logging.root.manager.loggerDict]:  # each of torch's has a level of its own
        if name.startswith(TORCH_LOGGERS):
            logging.getLogger(name).setLevel(logging.CRITICAL)
    try:
        run(options)
    except ChildFailedError as failed:  # the first process to fail says why; the others were stopped after it
        _, first = failed.get_first_failure()
        return first.exitcode if first.exitcode > 0 else 128 - first.exitcode  # -9: killed by SIGKILL, 137
    except KeyboardInterrupt:  # each process has said what it stopped and how to resume
        return 128 + signal.SIGINT
    except SignalException as stop:
        return 128 + stop.sigval
    return 0


def process_count(processes: str) -> int:
    """The number of processes `--nproc-per-node` asks for: a number, or one of PER_DEVICE."""
    if processes.isdigit() and int(processes) >= 1:
        return int(processes)
    if processes not in PER_DEVICE:
        raise GankitError(
            f"--nproc-per-node must be a number of processes or one of {', '.join(PER_DEVICE)}, got {processes!r}",
            option="nproc_per_node",
        )
    gpus = torch.cuda.device_count()
    if processes == "gpu" and not gpus:
        raise GankitError("--nproc-per-node gpu: this machine has no GPU that torch can use", option="nproc_per_node")
    return gpus if processes == "gpu" or (processes == "auto" and gpus) else os.cpu_count() or 1

"""Data-parallel training under torchrun: who this process is, and the few collectives a run needs.

`torchrun --nproc-per-node N -m gankit train ...` starts N processes with RANK, WORLD_SIZE and
LOCAL_RANK in their environment; `join` turns them into one process group (gloo for CPU tensors,
NCCL for GPU ones). Without torchrun there is no group, and every helper here is a no-op, so one
plain process trains exactly as it always did.
"""

from __future__ import annotations

import contextlib
import inspect
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar, cast

import torch
import torch.distributed as dist

from gankit.config import Config, every
from gankit.errors import GankitError
from gankit.rundir import JOB_MARK

T = TypeVar("T")


@dataclass(frozen=True)
class World:
    rank: int = 0  # global rank: which share of each global batch this process trains on
    size: int = 1  # processes in the group
    local_rank: int = 0  # rank on this machine: which GPU this process drives
    local_size: int = 1  # processes on this machine
    launched: bool = False  # started by torchrun (a process group exists, even of one)

    @property
    def main(self) -> bool:
        """Rank 0: the one process that writes the run folder and logs."""
        return self.rank == 0


SINGLE = World()


def launched_by_torchrun() -> bool:
    return "WORLD_SIZE" in os.environ and "RANK" in os.environ


def speaks_for_group() -> bool:
    """Whether this process tells the user what happened: any process outside torchrun, and rank 0 within it (the
    others would repeat its messages, or report only that it went away)."""
    return not launched_by_torchrun() or os.environ.get("RANK") == "0"


def lost_a_peer(error: BaseException) -> bool:
    """Whether `error` is this process's group failing under it: a peer gone, a collective broken or timed out."""
    return isinstance(error, dist.DistError) or (
        isinstance(error, RuntimeError) and any(s in str(error) for s in ("Connection closed by peer", "gloo"))
    )


def restarted() -> bool:
    """Whether torchrun has restarted this group after a failure (its --max-restarts)."""
    return int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")) > 0


def job_id() -> str | None:
    """torchrun's id of this job (--rdzv-id, or --standalone's own); None outside torchrun and for its default "none",
    which every job without an id shares."""
    found = os.environ.get("TORCHELASTIC_RUN_ID")
    return None if found in (None, "", "none") else found


def mark_job(run_path: Path) -> None:
    """Note in a new run folder which torchrun job created it, so that only this job's restarts resume it."""
    job = job_id()
    if job is not None:
        (run_path / JOB_MARK).write_text(job)


def made_by_this_job(run_path: Path) -> bool:
    """Whether this torchrun job created the run folder (a restart resumes it; someone else's run, never)."""
    try:
        return job_id() is not None and (run_path / JOB_MARK).read_text() == job_id()
    except OSError:
        return False


def join() -> World:
    """This process's place in the torchrun group (joining it the first time), or SINGLE without torchrun."""
    if not launched_by_torchrun():
        return SINGLE
    if not dist.is_initialized():
        # one group serves both kinds of tensor: gloo for the CPU's, NCCL for a GPU's
        backend = "cpu:gloo,cuda:nccl" if torch.cuda.is_available() else "gloo"
        store, rank, size = next(dist.rendezvous("env://"))
        # a prefix per attempt: with torch 2.14 and --standalone, a restarted group read the addresses of the
        # processes that had died from the agent's store and failed to connect
        attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
        # rank 0 alone scores and writes checkpoints (and may first train the evaluator) while the others wait
        dist.init_process_group(
            backend,
            store=dist.PrefixStore(f"gankit/attempt-{attempt}", store),
            rank=rank,
            world_size=size,
            timeout=timedelta(hours=2),
        )
    return World(
        dist.get_rank(),
        dist.get_world_size(),
        int(os.environ.get("LOCAL_RANK", "0")),
        int(os.environ.get("LOCAL_WORLD_SIZE", "1")),
        launched=True,
    )


def leave(world: World) -> None:
    if world.launched and dist.is_initialized():
        dist.destroy_process_group()


def device_for(device: torch.device, world: World) -> torch.device:
    """Each process of a node drives its own GPU (cuda:LOCAL_RANK)."""
    if world.launched and device.type == "cuda":
        if world.local_size > torch.cuda.device_count():  # on every rank: rank 0 speaks for them all
            raise GankitError(
                f"{world.local_size} processes on this machine, and it has {torch.cuda.device_count()} GPUs "
                "(start at most one process per GPU)"
            )
        torch.cuda.set_device(world.local_rank)
        return torch.device("cuda", world.local_rank)
    return device


def shard_size(global_batch: int, world: World) -> int:
    """This rank's share of a global batch of `train.batch_size` images."""
    if global_batch % world.size:
        raise GankitError(
            f"train.batch_size {global_batch} does not divide over {world.size} processes: it is the "
            f"global batch, split evenly (use a multiple of {world.size})",
            option="train.batch_size",
        )
    return global_batch // world.size


def check_options(config: Config, device: torch.device, world: World) -> None:
    """Refuse, before any work, what this group cannot train."""
    train, output = config.train, config.output
    shard_size(train.batch_size, world)
    if train.sync_batch_norm and world.size > 1 and device.type != "cuda":
        raise GankitError("train.sync_batch_norm needs GPUs: PyTorch's SyncBatchNorm does not run on the CPU")
    if train.minutes is not None and world.size > 1:  # each rank's clock would end its run at another step
        raise GankitError("train.minutes is not supported under torchrun yet: give train.kimg", option="train.minutes")
    for key in ("grid_every", "eval_every", "checkpoint_every"):  # each rank's clock would pause at another step
        if every(getattr(output, key)).unit == "minutes" and world.size > 1:
            raise GankitError(
                f"output.{key} in minutes is not supported under torchrun yet: give epochs or kimg",
                option=f"output.{key}",
            )
    if train.compile and world.launched:
        raise GankitError("train.compile is not supported under torchrun yet: leave it off", option="train.compile")


def barrier(world: World) -> None:
    if world.launched:
        dist.barrier()


def broadcast(value: T, world: World) -> T:
    """Rank 0's `value` on every rank (any picklable object)."""
    if not world.launched:
        return value
    box: list[Any] = [value if world.main else None]
    dist.broadcast_object_list(box, src=0)
    return cast(T, box[0])


def on_main(world: World, work: Callable[[], T]) -> T:
    """`work()` on rank 0, its result on every rank; a GankitError there is raised on every rank, so
    every process ends with the same one-line message instead of waiting for a partner that left."""
    outcome: tuple[str, Any] = ("", None)
    if world.main:
        try:
            outcome = ("ok", work())
        except GankitError as exc:
            if not world.launched:
                raise
            outcome = ("error", (str(exc), exc.options))
    kind, value = broadcast(outcome, world)
    if kind == "error":
        message, options = value
        raise GankitError(message, option=options)
    return value


@contextlib.contextmanager
def local_main_first(world: World) -> Iterator[None]:
    """Local rank 0 of each machine goes first (decoding into the cache, say); the others then read its result."""
    if world.local_rank != 0:
        barrier(world)
    yield
    if world.local_rank == 0:
        barrier(world)


def all_reduce_mean(tensor: torch.Tensor, world: World) -> torch.Tensor:
    if world.launched:
        dist.all_reduce(tensor)
        tensor /= world.size
    return tensor


def all_reduce_min(tensor: torch.Tensor, world: World) -> torch.Tensor:
    if world.launched:
        dist.all_reduce(tensor, op=dist.ReduceOp.MIN)
    return tensor


def lost_partner(error: BaseException, world: World) -> bool:
    """Whether `error` is a collective failing because another process of the group died."""
    if not world.launched:
        return False
    return isinstance(error, dist.DistError) or (isinstance(error, RuntimeError) and "gloo" in str(error).lower())


def distributed_nets(
    G: torch.nn.Module, D: torch.nn.Module, device: torch.device, world: World, *, sync_batch_norm: bool = False
) -> tuple[torch.nn.Module, torch.nn.Module]:
    """The forwards of G's and D's updates: under torchrun each net in its own DistributedDataParallel wrapper.

    Two wrappers, not one around the pair: D's backward all-reduces D's gradients during D's update, and G's
    update goes through the bare D (its weights frozen, so it has no gradients to reduce) and all-reduces only G's.
    find_unused_parameters stays off: every parameter of the net being updated takes part in its update, and
    searching the graph for unused ones would cost each step a traversal. Buffers are not broadcast: batch
    norm's running statistics are used only by G in eval mode, on rank 0, whose copy is the one saved.
    With `sync_batch_norm` (GPUs, several ranks) batch norm normalises over the global batch: its layers
    become SyncBatchNorm in place, keeping their parameters, so the optimisers and checkpoints are unchanged.
    """
    # a group of one has nothing to reduce, and the wrappers' copies cost time (docs/distributed.md)
    if world.size == 1:
        return G, D
    from torch.nn.parallel import DistributedDataParallel

    if sync_batch_norm:
        G, D = (torch.nn.SyncBatchNorm.convert_sync_batchnorm(net) for net in (G, D))

    ids = [device.index] if device.type == "cuda" else None
    # torch renamed the switch (2.12); the old name still works there, with a warning
    buffer_sync = (
        "forward_sync_buffers"
        if "forward_sync_buffers" in inspect.signature(DistributedDataParallel).parameters
        else "broadcast_buffers"
    )
    no_sync: dict[str, Any] = {buffer_sync: False}
    return (
        DistributedDataParallel(G, device_ids=ids, **no_sync),
        DistributedDataParallel(D, device_ids=ids, **no_sync),
    )

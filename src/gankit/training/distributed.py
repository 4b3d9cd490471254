"""Data-parallel training under torchrun: who this process is, and the few collectives a run needs.

`torchrun --nproc-per-node N -m gankit train ...` starts N processes with RANK, WORLD_SIZE and
LOCAL_RANK in their environment; `join` turns them into one process group (gloo for CPU tensors,
NCCL for GPU ones). Without torchrun there is no group, and every helper here is a no-op, so one
plain process trains exactly as it always did.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
import torch.distributed as dist

from gankit.errors import GankitError

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


def restarted() -> bool:
    """Whether torchrun has restarted this group after a failure (its --max-restarts)."""
    return int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")) > 0


def join() -> World:
    """This process's place in the torchrun group (joining it the first time), or SINGLE without torchrun."""
    if not launched_by_torchrun():
        return SINGLE
    if not dist.is_initialized():
        # one group serves both kinds of tensor: gloo for the CPU's, NCCL for a GPU's
        backend = "cpu:gloo,cuda:nccl" if torch.cuda.is_available() else "gloo"
        store, rank, size = next(dist.rendezvous("env://"))
        # torchrun's agent keeps its store across restarts: without a prefix per attempt, a restarted group
        # would read the addresses of the processes that died and fail to connect
        attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
        dist.init_process_group(backend, store=dist.PrefixStore(f"gankit/attempt-{attempt}", store), rank=rank,
                                world_size=size)
    return World(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")),
                 int(os.environ.get("LOCAL_WORLD_SIZE", "1")), launched=True)


def leave(world: World) -> None:
    if world.launched and dist.is_initialized():
        dist.destroy_process_group()


def device_for(device: torch.device, world: World) -> torch.device:
    """Each process of a node drives its own GPU (cuda:LOCAL_RANK)."""
    if world.launched and device.type == "cuda":
        if world.local_rank >= torch.cuda.device_count():
            raise GankitError(f"local rank {world.local_rank} has no GPU: this machine has {torch.cuda.device_count()} "
                              "(start at most that many processes per node)")
        torch.cuda.set_device(world.local_rank)
        return torch.device("cuda", world.local_rank)
    return device


def shard_size(global_batch: int, world: World) -> int:
    """This rank's share of a global batch of `train.batch_size` images."""
    if global_batch % world.size:
        raise GankitError(f"train.batch_size {global_batch} does not divide over {world.size} processes: it is the "
                          f"global batch, split evenly (use a multiple of {world.size})", option="train.batch_size")
    return global_batch // world.size


def barrier(world: World) -> None:
    if world.launched:
        dist.barrier()


def broadcast(value: T, world: World) -> T:
    """Rank 0's `value` on every rank (any picklable object)."""
    if not world.launched:
        return value
    box = [value if world.main else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


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


def all_reduce_max(tensor: torch.Tensor, world: World) -> torch.Tensor:
    if world.launched:
        dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return tensor

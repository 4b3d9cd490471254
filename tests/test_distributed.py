"""Data-parallel training under torchrun, on the CPU with gloo: two processes against one."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import gankit
from gankit.checkpoint import load_checkpoint
from gankit.errors import GankitError
from gankit.training.distributed import World, shard_size

WORKER = Path(__file__).with_name("torchrun_worker.py")
# the tanh MLP without dropout and without batch norm: no randomness of a rank's own, so two ranks must
# compute what one process does; 2 steps an epoch
SETTINGS = ["gan-mnist-tanh", "--set", "model.dropout=0", "--set", "model.g_hidden=[64, 64]", "--set",
            "model.d_hidden=[64, 64]", "--limit", "256", "--batch-size", "128", "--no-progress",
            "--set", "output.report=false"]
# 4 Adam steps of lr 2e-4 apart from float rounding (summing a batch in halves, then averaging)
TOLERANCE = 2e-5


def torchrun(tmp_path: Path, mnist_dir: Path, *args: str, ranks: int = 2, restarts: int = 0,
             env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(ranks),
               "--max-restarts", str(restarts), str(WORKER), *args, "--data-dir", str(mnist_dir.resolve())]
    return subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})})


def one_process(mnist_dir: Path, out: Path, epochs: int, *, resume: bool = False) -> None:
    config = gankit.apply_overrides(gankit.load_preset("gan-mnist-tanh"), [
        "model.dropout=0", "model.g_hidden=[64, 64]", "model.d_hidden=[64, 64]", "data.limit=256",
        "train.batch_size=128", "output.progress=false", "output.report=false", f"train.epochs={epochs}"])
    gankit.train(None if resume else config, out, data_dir=mnist_dir, resume=resume)


def weights(run: Path, epoch: int) -> dict[str, torch.Tensor]:
    checkpoint = load_checkpoint(run / "checkpoints" / f"epoch-{epoch:04d}.pt")
    return {f"{net}.{name}": t for net in ("generator", "discriminator") for name, t in checkpoint[net].items()}


def largest_difference(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys()
    return max((a[k] - b[k]).abs().max().item() for k in a)


@pytest.fixture(scope="module")
def two_rank_run(mnist_dir, tmp_path_factory):
    """2 epochs on 2 ranks (2 steps each), with rank 1's writes recorded; and the same on one plain process."""
    tmp = tmp_path_factory.mktemp("ddp")
    done = torchrun(tmp, mnist_dir, *SETTINGS, "--epochs", "2", "--out", "two",
                    env={"GANKIT_TEST_WRITES": str(tmp / "writes")})
    assert done.returncode == 0, done.stderr[-3000:]
    one_process(mnist_dir, tmp / "one", 2)
    return tmp, done


def test_two_ranks_train_what_one_process_does(two_rank_run):
    tmp, done = two_rank_run
    assert "2 processes" in done.stderr
    difference = largest_difference(weights(tmp / "two", 2), weights(tmp / "one", 2))
    assert difference < TOLERANCE
    # the stats are averaged over the ranks: the epoch's losses are one process's, to rounding
    two, one = (gankit.load_run(tmp / name).metrics() for name in ("two", "one"))
    assert [r["epoch"] for r in two] == [1, 2]
    for a, b in zip(two, one):
        assert a["d_loss"] == pytest.approx(b["d_loss"], rel=1e-4)
        assert a["g_loss"] == pytest.approx(b["g_loss"], rel=1e-4)
        assert a["d_acc_fake"] == pytest.approx(b["d_acc_fake"], abs=1 / 256)


def test_only_rank_0_writes_the_run_folder(two_rank_run):
    tmp, _ = two_rank_run
    assert json.loads((tmp / "writes.1").read_text()) == []
    assert (tmp / "two" / "config.yaml").is_file() and (tmp / "two" / "grids" / "epoch-0002.png").is_file()


def test_a_run_resumes_on_another_world_size(two_rank_run, mnist_dir):
    tmp, _ = two_rank_run
    reference = weights(tmp / "one", 2)
    # 1 -> 2: one process trains epoch 1, two ranks continue to epoch 2
    one_process(mnist_dir, tmp / "grow", 1)
    done = torchrun(tmp, mnist_dir, *SETTINGS, "--epochs", "2", "--out", "grow", "--resume")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "resuming" in done.stderr
    assert largest_difference(weights(tmp / "grow", 2), reference) < TOLERANCE
    # 2 -> 1: the two-rank run's epoch 1, continued by one process
    shrink = tmp / "shrink"
    shutil.copytree(tmp / "two", shrink)
    (shrink / "checkpoints" / "epoch-0002.pt").unlink()
    one_process(mnist_dir, shrink, 2, resume=True)
    assert largest_difference(weights(shrink, 2), reference) < TOLERANCE
    assert [r["epoch"] for r in gankit.load_run(shrink).metrics()] == [1, 2]


def test_a_killed_rank_restarts_the_group_which_resumes(mnist_dir, tmp_path):
    # rank 1 dies at its 4th step (epoch 2 of 2-step epochs); torchrun restarts both ranks, with no flag added
    done = torchrun(tmp_path, mnist_dir, *SETTINGS, "--epochs", "3", "--out", "run", restarts=1,
                    env={"GANKIT_TEST_KILL_AT_STEP": "4"})
    assert done.returncode == 0, done.stderr[-3000:]
    assert "resuming" in done.stderr and "after epoch 1" in done.stderr
    assert [r["epoch"] for r in gankit.load_run(tmp_path / "run").metrics()] == [1, 2, 3]


def test_a_batch_that_does_not_divide_is_refused_in_one_line(mnist_dir, tmp_path):
    done = torchrun(tmp_path, mnist_dir, *SETTINGS, "--batch-size", "63", "--epochs", "1", "--out", "odd")
    assert done.returncode != 0
    lines = [line for line in done.stderr.splitlines() if line.startswith("gankit: error")]
    assert lines and all("--batch-size 63 does not divide over 2 processes" in line for line in lines)
    assert not (tmp_path / "odd").exists()


def test_shard_size():
    assert shard_size(128, World(rank=1, size=4, launched=True)) == 32
    with pytest.raises(GankitError, match="does not divide over 3 processes"):
        shard_size(128, World(rank=0, size=3, launched=True))

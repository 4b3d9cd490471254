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
from filelock import FileLock

import gankit
from gankit.checkpoint import load_checkpoint
from gankit.cli import main
from gankit.config import Config, OutputConfig, TrainConfig
from gankit.errors import GankitError
from gankit.training.distributed import World, check_options, shard_size

WORKER = Path(__file__).with_name("torchrun_worker.py")
# the tanh MLP without dropout and without batch norm: no randomness of a rank's own, so two ranks must
# compute what one process does; 2 steps an epoch
# Adam with epsilon 1 moves each weight by about lr times its gradient, so a gradient of the wrong scale
# (summed over the ranks, say) shows, as it would not with Adam's usual epsilon
NETS = [
    "model.dropout=0",
    "model.g_hidden=[64, 64]",
    "model.d_hidden=[64, 64]",
    "train.adam_eps=1",
    "train.lr_g=0.05",
    "train.lr_d=0.05",
]
SETTINGS = [
    "gan-mnist-tanh",
    *(arg for item in NETS for arg in ("--set", item)),
    "--limit",
    "256",
    "--batch-size",
    "128",
    "--no-progress",
    "--set",
    "output.report=false",
]
# 4 to 6 steps apart from float rounding (a batch summed in halves, then averaged); a step moves weights by ~1e-3
TOLERANCE = 2e-5


def torchrun(
    tmp_path: Path, mnist_dir: Path, *args: str, ranks: int = 2, restarts: int = 0, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node",
        str(ranks),
        "--max-restarts",
        str(restarts),
        str(WORKER),
        *args,
        "--data-dir",
        str(mnist_dir.resolve()),
    ]
    return subprocess.run(
        command,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})},
    )


def one_process(mnist_dir: Path, out: Path, epochs: int, *, resume: bool = False) -> None:
    config = gankit.apply_overrides(
        gankit.load_preset("gan-mnist-tanh"),
        [
            *NETS,
            "data.limit=256",
            "train.batch_size=128",
            "output.progress=false",
            "output.report=false",
            f"train.epochs={epochs}",
        ],
    )
    gankit.train(None if resume else config, out, data_dir=mnist_dir, resume=resume)


def weights(run: Path, epoch: int) -> dict[str, torch.Tensor]:
    checkpoint = load_checkpoint(run / "checkpoints" / f"epoch-{epoch:04d}.pt")
    return {f"{net}.{name}": t for net in ("generator", "discriminator") for name, t in checkpoint[net].items()}


def largest_difference(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys()
    return max((a[k] - b[k]).abs().max().item() for k in a)


@pytest.fixture(scope="module")
def two_rank_run(mnist_dir, tmp_path_factory):
    """2 epochs on 2 ranks (2 steps each), with each rank's writes recorded; and the same on one plain process."""
    tmp = tmp_path_factory.mktemp("ddp")
    done = torchrun(
        tmp, mnist_dir, *SETTINGS, "--epochs", "2", "--out", "two", env={"GANKIT_TEST_WRITES": str(tmp / "writes")}
    )
    assert done.returncode == 0, done.stderr[-3000:]
    one_process(mnist_dir, tmp / "one", 2)
    return tmp, done


def test_two_ranks_train_what_one_process_does(two_rank_run):
    tmp, done = two_rank_run
    assert "2 processes (batch 128 = 2 x 64)" in done.stderr
    assert largest_difference(weights(tmp / "two", 2), weights(tmp / "one", 2)) < TOLERANCE
    assert largest_difference(weights(tmp / "two", 2), weights(tmp / "two", 1)) > 50 * TOLERANCE  # training moved them
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
    by_rank_0 = " ".join(json.loads((tmp / "writes.0").read_text()))  # the recording works: rank 0 wrote the run
    for name in ("config.yaml", "metrics.jsonl", "epoch-0002.png", "epoch-0002.pt"):
        assert name in by_rank_0


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
    (shrink / "checkpoints" / "epoch-0002.pt").unlink()  # as if it had stopped after epoch 1: its records too
    records = (shrink / "metrics.jsonl").read_text().splitlines(keepends=True)
    (shrink / "metrics.jsonl").write_text(records[0])
    one_process(mnist_dir, shrink, 2, resume=True)
    assert largest_difference(weights(shrink, 2), reference) < TOLERANCE
    assert [r["epoch"] for r in gankit.load_run(shrink).metrics()] == [1, 2]


def test_a_killed_rank_restarts_the_group_which_resumes(mnist_dir, tmp_path):
    # rank 1 dies at its 4th step (epoch 2 of 2-step epochs); torchrun restarts both ranks, with no flag added
    done = torchrun(
        tmp_path,
        mnist_dir,
        *SETTINGS,
        "--epochs",
        "3",
        "--out",
        "run",
        restarts=1,
        env={"GANKIT_TEST_KILL_AT_STEP": "4"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "resuming" in done.stderr and "after epoch 1" in done.stderr
    assert [r["epoch"] for r in gankit.load_run(tmp_path / "run").metrics()] == [1, 2, 3]
    one_process(mnist_dir, tmp_path / "uninterrupted", 3)
    assert largest_difference(weights(tmp_path / "run", 3), weights(tmp_path / "uninterrupted", 3)) < TOLERANCE


def test_batch_norm_acgan_ema_penalties_diffaugment_d_steps_and_fresh_noise_on_two_ranks(mnist_dir, tmp_path):
    # the DCGAN's D has batch norm: two forwards (real, generated) before D's backward
    options = [
        "output.report=false",
        "model.base_channels=8",
        "model.conditioning=acgan",
        "train.ema_decay=0.9",
        "train.r1_gamma=1",
        "train.gp_lambda=1",
        "train.diffaugment=translation,cutout",
        "train.d_steps=2",
        "train.g_noise=fresh",
    ]
    done = torchrun(
        tmp_path,
        mnist_dir,
        "dcgan-mnist",
        "--limit",
        "256",
        "--batch-size",
        "64",
        "--epochs",
        "1",
        "--no-progress",
        "--out",
        "run",
        *(arg for item in options for arg in ("--set", item)),
        env={"GANKIT_TEST_CHECKSUMS": str(tmp_path / "sums")},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    record = gankit.load_run(tmp_path / "run").metrics()[0]
    terms = ("d_loss", "g_loss", "r1_penalty", "gradient_penalty", "d_class_loss", "g_class_loss")
    assert record["epoch"] == 1 and all(torch.isfinite(torch.tensor(record[k])) for k in terms)
    # both ranks hold the same weights after every step: each update's gradients were reduced
    sums = [json.loads((tmp_path / f"sums.{rank}").read_text()) for rank in (0, 1)]
    assert len(sums[0]) == 4 and sums[0] == sums[1] and len(set(sums[0])) == 4


def gankit_launch(tmp_path: Path, mnist_dir: Path, *args: str) -> subprocess.CompletedProcess:
    """`gankit train ... --nproc-per-node 2`: gankit's own launch of two processes."""
    command = [sys.executable, "-m", "gankit", "train", *args, "--data-dir", str(mnist_dir.resolve())]
    return subprocess.run(
        [*command, "--nproc-per-node", "2"], cwd=tmp_path, capture_output=True, text=True, timeout=600
    )


def test_a_batch_that_does_not_divide_is_refused_in_one_line_from_one_rank(mnist_dir, tmp_path):
    done = torchrun(tmp_path, mnist_dir, *SETTINGS, "--batch-size", "63", "--epochs", "1", "--out", "odd")
    assert done.returncode != 0
    lines = [line for line in done.stderr.splitlines() if line.startswith("gankit:")]
    assert len(lines) == 1 and "--batch-size 63 does not divide over 2 processes" in lines[0]  # torchrun's own follow
    assert not (tmp_path / "odd").exists()
    launched = gankit_launch(tmp_path, mnist_dir, *SETTINGS, "--batch-size", "63", "--epochs", "1", "--out", "odd")
    assert launched.returncode == 2
    assert launched.stderr.splitlines() == lines  # and nothing of torchrun's
    assert not (tmp_path / "odd").exists()


def test_a_failure_of_rank_0_alone_is_told_by_rank_0_alone(two_rank_run, mnist_dir):
    tmp, _ = two_rank_run
    with FileLock(tmp / "two" / ".lock", timeout=0):  # another live run holds the folder: rank 0 finds it, not rank 1
        done = torchrun(tmp, mnist_dir, *SETTINGS, "--epochs", "3", "--out", "two", "--resume")
    assert done.returncode != 0
    said = [line for line in done.stderr.splitlines() if line.startswith("gankit")]
    assert said == ["gankit: error: run folder two is in use by another live run"], done.stderr[-3000:]


def test_gankit_s_own_launch_trains_what_torchrun_does(two_rank_run, mnist_dir):
    tmp, _ = two_rank_run
    done = gankit_launch(tmp, mnist_dir, *SETTINGS, "--epochs", "2", "--out", "launched")
    assert done.returncode == 0, done.stderr[-3000:]
    assert largest_difference(weights(tmp / "launched", 2), weights(tmp / "two", 2)) == 0.0
    assert "2 processes" in done.stderr and "Traceback" not in done.stderr and "torch.distributed" not in done.stderr


@pytest.mark.parametrize("count", ["0", "two", "-1"])
def test_a_bad_process_count_is_refused_in_one_line(count, capsys):
    assert main(["train", "report-gan-mnist", "--nproc-per-node", count]) == 2
    assert capsys.readouterr().err == (
        f"gankit: error: --nproc-per-node must be a number of processes or one of gpu, cpu, auto, got '{count}'\n"
    )


@pytest.mark.skipif(torch.cuda.is_available(), reason="a machine with a GPU starts a process per GPU")
def test_a_process_per_gpu_without_a_gpu_is_refused_in_one_line(capsys):
    assert main(["train", "report-gan-mnist", "--nproc-per-node", "gpu"]) == 2
    assert (
        capsys.readouterr().err == "gankit: error: --nproc-per-node gpu: this machine has no GPU that torch can use\n"
    )


def test_options_a_group_cannot_train_are_refused():
    assert shard_size(128, World(rank=1, size=4, launched=True)) == 32
    with pytest.raises(GankitError, match="does not divide over 3 processes"):
        shard_size(128, World(rank=0, size=3, launched=True))
    two, cpu = World(rank=0, size=2, launched=True), torch.device("cpu")
    with pytest.raises(GankitError, match="train.sync_batch_norm needs GPUs"):
        check_options(Config(train=TrainConfig(sync_batch_norm=True)), cpu, two)
    check_options(Config(train=TrainConfig(sync_batch_norm=True)), cpu, World())  # one process: nothing to synchronise
    with pytest.raises(GankitError, match="train.compile is not supported under torchrun"):
        check_options(Config(train=TrainConfig(compile=True)), cpu, two)
    with pytest.raises(GankitError, match="output.grid_every in minutes is not supported under torchrun"):
        check_options(Config(output=OutputConfig(grid_every="10min")), cpu, two)
    check_options(Config(output=OutputConfig(grid_every="5kimg")), cpu, two)  # images: the same step on every rank

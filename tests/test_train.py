import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from conftest import TINY_MLP
from gankit import device
from gankit.checkpoint import list_checkpoints, load_checkpoint
from gankit.cli import main


def _train(mnist_dir, out, *extra):
    return main(["train", "seed-gan-mnist", "--data-dir", str(mnist_dir), "--out", str(out), *TINY_MLP, *extra])


def _weights(run):
    state = load_checkpoint(list_checkpoints(run / "checkpoints")[-1])
    return {**{f"G.{k}": v for k, v in state["generator"].items()}, **{f"D.{k}": v for k, v in state["discriminator"].items()}}


def _assert_same(a, b):
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_a_run_writes_its_folder(mnist_dir, tmp_path):
    run = tmp_path / "run"
    assert _train(mnist_dir, run, "--epochs", "2", "--set", "output.grid_every=2") == 0
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2]
    for r in records:
        assert r["images_per_s"] > 0 and r["epoch_seconds"] > 0
        assert 0 <= r["d_acc_real"] <= 1 and 0 <= r["d_acc_fake"] <= 1
        assert r["d_loss"] > 0 and r["g_loss"] > 0
    assert sorted(p.name for p in (run / "grids").iterdir()) == ["epoch-0001.png", "epoch-0002.png"]
    assert (run / "losses.png").stat().st_size > 1000
    assert "dataset: mnist" in (run / "config.yaml").read_text()
    state = load_checkpoint(list_checkpoints(run / "checkpoints")[-1])
    assert state["epoch"] == 2
    assert {"generator", "discriminator", "opt_g", "opt_d", "rng", "config"} <= state.keys()


def test_the_loss_plot_waits_between_draws_but_always_shows_the_last_epoch(mnist_dir, tmp_path, monkeypatch):
    from gankit.train import loop

    drawn = []
    monkeypatch.setattr(loop, "plot_history", lambda history, path: drawn.append(history[-1]["epoch"]))
    monkeypatch.setattr(loop, "PLOT_EVERY_S", 3600.0)
    _train(mnist_dir, tmp_path / "run", "--epochs", "4")
    assert drawn == [1, 4]
    monkeypatch.setattr(loop, "PLOT_EVERY_S", 0.0)
    drawn.clear()
    _train(mnist_dir, tmp_path / "run2", "--epochs", "3")  # with no wait: after every epoch
    assert drawn == [1, 2, 3]


def test_grid_is_an_rgb_png_of_the_fixed_batch(mnist_dir, tmp_path):
    from PIL import Image

    run = tmp_path / "run"
    _train(mnist_dir, run, "--epochs", "1", "--set", "output.grid_samples=16")
    with Image.open(run / "grids" / "epoch-0001.png") as img:
        assert img.size == (4 * 30 + 2, 4 * 30 + 2)  # 4x4 images of 28 px with 2 px padding


def test_same_seed_same_weights(mnist_dir, tmp_path):
    _train(mnist_dir, tmp_path / "a", "--epochs", "1", "--seed", "3")
    _train(mnist_dir, tmp_path / "b", "--epochs", "1", "--seed", "3")
    _train(mnist_dir, tmp_path / "c", "--epochs", "1", "--seed", "4")
    _assert_same(_weights(tmp_path / "a"), _weights(tmp_path / "b"))
    assert not torch.equal(_weights(tmp_path / "a")["G.net.0.weight"], _weights(tmp_path / "c")["G.net.0.weight"])


def test_resume_equals_an_uninterrupted_run(mnist_dir, tmp_path):
    _train(mnist_dir, tmp_path / "straight", "--epochs", "3")
    _train(mnist_dir, tmp_path / "split", "--epochs", "1")
    assert main(["train", "--resume", "--out", str(tmp_path / "split"), "--epochs", "3",
                 "--data-dir", str(mnist_dir), "--no-progress"]) == 0
    _assert_same(_weights(tmp_path / "straight"), _weights(tmp_path / "split"))
    straight = [json.loads(x) for x in (tmp_path / "straight" / "metrics.jsonl").read_text().splitlines()]
    split = [json.loads(x) for x in (tmp_path / "split" / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in split] == [1, 2, 3]
    assert [r["g_loss"] for r in split] == [r["g_loss"] for r in straight]


@pytest.mark.skipif(not device.cpu_supports_bf16(), reason="this CPU has no bf16 support")
def test_bf16_trains_with_fp32_weights(mnist_dir, tmp_path):
    assert _train(mnist_dir, tmp_path / "r", "--epochs", "2", "--precision", "bf16") == 0
    weights = _weights(tmp_path / "r")
    assert all(w.dtype == torch.float32 and torch.isfinite(w).all() for w in weights.values())
    records = [json.loads(x) for x in (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2]
    assert all(0 < r["d_loss"] < 10 and 0 < r["g_loss"] < 50 for r in records)


def test_bf16_is_refused_on_a_cpu_without_it(mnist_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(device, "cpu_supports_bf16", lambda: False)
    assert _train(mnist_dir, tmp_path / "r", "--epochs", "1", "--precision", "bf16") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["gankit: error: --precision bf16: this CPU has no bf16 support (use fp32)"]
    assert not (tmp_path / "r").exists()


def test_minimax_uniform_and_smoothing_train(mnist_dir, tmp_path):
    assert _train(mnist_dir, tmp_path / "r", "--epochs", "1", "--set", "train.loss=minimax",
                  "--set", "model.noise=uniform", "--set", "train.label_smoothing=0.1") == 0
    assert load_checkpoint(list_checkpoints(tmp_path / "r" / "checkpoints")[-1])["config"]["train"]["loss"] == "minimax"


def test_killed_mid_epoch_resumes_without_duplicate_or_missing_epochs(mnist_dir, tmp_path):
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "gankit", "train", "seed-gan-mnist", "--data-dir", str(mnist_dir), "--out", str(run),
           "--epochs", "4", *TINY_MLP[:-3], "--limit", "6400", "--batch-size", "32", "--no-progress"]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, env=os.environ.copy())
    # wait for the first finished epoch, then kill in the middle of a later one
    deadline = time.time() + 120
    while time.time() < deadline and not list_checkpoints(run / "checkpoints"):
        time.sleep(0.05)
    time.sleep(0.3)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = load_checkpoint(list_checkpoints(run / "checkpoints")[-1])["epoch"]
    assert 1 <= done < 4
    resumed = subprocess.run([sys.executable, "-m", "gankit", "train", "--resume", "--out", str(run),
                              "--data-dir", str(mnist_dir), "--no-progress"], capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming {run} after epoch {done}" in resumed.stderr
    epochs = [json.loads(x)["epoch"] for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert epochs == [1, 2, 3, 4]

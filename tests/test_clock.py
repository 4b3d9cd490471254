"""The run's clock in images and minutes: train.kimg, train.minutes and a hook's stop end a run between steps, and
resuming goes on from that step exactly."""

import json
import logging

import pytest
import torch

import gankit
from gankit.checkpoint import list_checkpoints, load_checkpoint
from gankit.cli import main

from conftest import tiny_config, train_tiny

# 512 images in batches of 64: 8 steps an epoch, 0.512 thousand images
STEPS = 8


def _records(run):
    return [json.loads(line) for line in (run.path / "metrics.jsonl").read_text().splitlines()]


def test_kimg_ends_the_run_part_way_through_an_epoch_and_records_where(mnist_dir, tmp_path):
    run = train_tiny(mnist_dir, tmp_path / "r", "train.epochs=5", "train.kimg=0.7")
    first, second = _records(run)  # 0.7 thousand images are reached at step 11: 704 images, 3 steps into epoch 2
    assert first["epoch"] == 1 and first["kimg"] == pytest.approx(0.512) and "epoch_fraction" not in first
    assert second["epoch"] == 2 and second["kimg"] == pytest.approx(0.704)
    assert second["epoch_fraction"] == pytest.approx(3 / STEPS)
    checkpoint = load_checkpoint(list_checkpoints(run.path / "checkpoints")[-1])
    assert checkpoint["epoch"] == 2 and checkpoint["position"]["step"] == 3
    assert {float(s["step"]) for s in checkpoint["opt_d"]["state"].values()} == {11.0}
    assert (run.path / "grids" / "epoch-0002.png").is_file()  # the run's last grid, as at a last epoch


def test_a_run_stopped_part_way_resumes_to_the_same_weights_and_records(mnist_dir, tmp_path):
    options = ["train.epochs=3", "train.ema_decay=0.9", "train.r1_gamma=1", "train.r1_every=3"]
    straight = train_tiny(mnist_dir, tmp_path / "straight", *options)
    train_tiny(mnist_dir, tmp_path / "split", *options, "train.kimg=0.7")
    split = gankit.train(tiny_config(*options), tmp_path / "split", resume=True)  # train.kimg unset: on to epoch 3
    a, b = (load_checkpoint(r.checkpoint()) for r in (straight, split))
    assert "position" not in b and b["epoch"] == 3
    for key in ("generator", "discriminator", "generator_ema"):
        assert all(torch.equal(a[key][name], b[key][name]) for name in a[key])
    timing = ("images_per_s", "epoch_seconds", "elapsed_seconds")
    drop = lambda record: {k: v for k, v in record.items() if k not in timing}  # noqa: E731
    assert [drop(r) for r in _records(straight)] == [drop(r) for r in _records(split)]


def test_a_hook_ends_the_run_after_a_step_and_says_why(mnist_dir, tmp_path, caplog):
    def enough(step):
        if step.g_updates == 5:
            step.request_stop("seen enough")

    run = train_tiny(mnist_dir, tmp_path / "r", "train.epochs=3", hooks=gankit.Hooks(after_step=[enough]))
    assert "seen enough" in caplog.text
    (record,) = _records(run)
    assert record["epoch"] == 1 and record["epoch_fraction"] == pytest.approx(5 / STEPS)
    assert load_checkpoint(run.checkpoint())["position"]["step"] == 5


def test_minutes_end_the_run_and_a_run_at_its_length_has_nothing_to_do(mnist_dir, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="gankit")
    run = train_tiny(mnist_dir, tmp_path / "r", "train.epochs=3", "train.minutes=1e-9")  # over after one step
    (record,) = _records(run)
    assert record["epoch_fraction"] == pytest.approx(1 / STEPS)
    caplog.clear()
    gankit.train(None, tmp_path / "r", resume=True)
    assert "nothing to do: the run reached its length, train.minutes 1e-09" in caplog.text
    assert _records(run) == [record]


def test_the_clock_s_flags_are_checked(tmp_path, capsys):
    assert main(["train", "report-gan-mnist", "--kimg", "0", "--out", str(tmp_path / "r")]) == 2
    assert "expected a positive number, got '0'" in capsys.readouterr().err and not (tmp_path / "r").exists()
    with pytest.raises(gankit.GankitError, match="train.minutes must be positive"):
        tiny_config("train.minutes=-1")

"""The run's clock in images and minutes: train.kimg, train.minutes and a hook's stop end a run between steps, and
resuming goes on from that step exactly."""

import json
import logging

import pytest
import torch

import gankit
import gankit.animation
from gankit.checkpoint import list_checkpoints, load_checkpoint
from gankit.cli import main

from conftest import tiny_config, train_tiny

# 512 images in batches of 64: 8 steps an epoch, 0.512 thousand images
STEPS = 8


def _records(run):
    return [json.loads(line) for line in (run.path / "metrics.jsonl").read_text().splitlines()]


def _untimed(record):
    return {k: v for k, v in record.items() if k not in ("images_per_s", "epoch_seconds", "elapsed_seconds")}


def test_kimg_ends_the_run_part_way_through_an_epoch_and_records_where(mnist_dir, tmp_path):
    run = train_tiny(mnist_dir, tmp_path / "r", "train.epochs=5", "train.kimg=0.7")
    first, second = _records(run)  # 0.7 thousand images are reached at step 11: 704 images, 3 steps into epoch 2
    assert first["epoch"] == 1 and first["kimg"] == pytest.approx(0.512) and "epoch_fraction" not in first
    assert second["epoch"] == 2 and second["kimg"] == pytest.approx(0.704)
    assert second["epoch_fraction"] == pytest.approx(3 / STEPS)
    checkpoint = load_checkpoint(list_checkpoints(run.path / "checkpoints")[-1])
    assert checkpoint["epoch"] == 2 and checkpoint["position"]["step"] == 3
    assert {float(s["step"]) for s in checkpoint["opt_d"]["state"].values()} == {11.0}
    assert (run.path / "grids" / "epoch-0002-step-0003.png").is_file()  # the run's last grid, as at a last epoch
    assert [p.name for p in list_checkpoints(run.path / "checkpoints")] == ["epoch-0001.pt", "epoch-0002-step-0003.pt"]


def test_a_run_stopped_part_way_resumes_to_the_same_weights_and_records(mnist_dir, tmp_path):
    options = ["train.epochs=3", "train.ema_decay=0.9", "train.r1_gamma=1", "train.r1_every=3"]
    straight = train_tiny(mnist_dir, tmp_path / "straight", *options)
    train_tiny(mnist_dir, tmp_path / "split", *options, "train.kimg=0.7")
    split = gankit.train(tiny_config(*options), tmp_path / "split", resume=True)  # train.kimg unset: on to epoch 3
    a, b = (load_checkpoint(r.checkpoint()) for r in (straight, split))
    assert "position" not in b and b["epoch"] == 3
    for key in ("generator", "discriminator", "generator_ema"):
        assert all(torch.equal(a[key][name], b[key][name]) for name in a[key])
    records = [_untimed(r) for r in _records(split)]
    assert records.pop(1)["epoch_fraction"] == pytest.approx(3 / STEPS)  # where the first session stopped, kept
    assert [_untimed(r) for r in _records(straight)] == records


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


def test_work_scheduled_in_images_falls_due_part_way_and_leaves_the_training_as_it_was(mnist_dir, tmp_path):
    options = ["train.epochs=2", "train.ema_decay=0.9"]
    plain = train_tiny(mnist_dir, tmp_path / "plain", *options)
    marks = ["output.grid_every=0.3kimg", "output.checkpoint_every=0.3kimg", "output.keep_checkpoints=10"]
    timed = train_tiny(mnist_dir, tmp_path / "timed", *options, *marks)
    # marks at 300, 600 and 900 images: the first steps past them end at 320, 640 and 960 images (steps 5, 10 and 15)
    records = _records(timed)
    assert [(r["epoch"], r.get("epoch_fraction")) for r in records] == [
        (1, 5 / STEPS),
        (1, None),
        (2, 2 / STEPS),
        (2, 7 / STEPS),
        (2, None),
    ]
    assert [r["kimg"] for r in records] == pytest.approx([0.32, 0.512, 0.64, 0.96, 1.024])
    grids = sorted(p.name for p in (timed.path / "grids").iterdir())
    assert grids == ["epoch-0001-step-0005.png", "epoch-0001.png", "epoch-0002-step-0002.png"] + [
        "epoch-0002-step-0007.png",
        "epoch-0002.png",
    ]
    names = [p.name for p in list_checkpoints(timed.path / "checkpoints")]
    assert names == ["epoch-0001-step-0005.pt", "epoch-0002-step-0002.pt", "epoch-0002-step-0007.pt", "epoch-0002.pt"]
    assert "checkpoint" in records[1] and records[1]["checkpoint"] is False  # epoch 1's end: no mark passed there
    a, b = (load_checkpoint(r.checkpoint()) for r in (plain, timed))
    for key in ("generator", "discriminator", "generator_ema"):
        assert all(torch.equal(a[key][name], b[key][name]) for name in a[key])
    whole = [_untimed(r) for r in records if "epoch_fraction" not in r]
    assert [{k: v for k, v in r.items() if k != "checkpoint"} for r in whole] == [_untimed(r) for r in _records(plain)]
    assert [frame for frame, _ in gankit.animation.grid_frames(timed.path / "grids")] == [
        "1, step 5",
        "1",
        "2, step 2",
        "2, step 7",
        "2",
    ]


def test_a_run_interrupted_between_checkpoints_replays_the_records_written_since(mnist_dir, tmp_path):
    options = ["train.epochs=4", "output.checkpoint_every=2"]
    straight = train_tiny(mnist_dir, tmp_path / "straight", *options)
    assert [p.name for p in list_checkpoints(straight.path / "checkpoints")] == ["epoch-0002.pt", "epoch-0004.pt"]

    def crash_in_epoch_4(step):
        if step.d_updates == 3 * STEPS + 2:
            raise RuntimeError("the machine went down")

    with pytest.raises(RuntimeError, match="went down"):
        train_tiny(mnist_dir, tmp_path / "split", *options, hooks=gankit.Hooks(after_step=[crash_in_epoch_4]))
    records = [json.loads(line) for line in (tmp_path / "split" / "metrics.jsonl").read_text().splitlines()]
    assert [r.get("checkpoint", True) for r in records] == [False, True, False]  # epoch 3's: no checkpoint
    split = gankit.train(None, tmp_path / "split", resume=True)  # from epoch 2's checkpoint, epoch 3 trained again
    a, b = (load_checkpoint(r.checkpoint()) for r in (straight, split))
    assert all(torch.equal(a["generator"][name], b["generator"][name]) for name in a["generator"])
    assert [_untimed(r) for r in _records(straight)] == [_untimed(r) for r in _records(split)]


def test_grids_fall_due_in_minutes_of_training(mnist_dir, tmp_path):
    run = train_tiny(mnist_dir, tmp_path / "r", "train.epochs=1", "output.grid_every=0.00001min")
    records = _records(run)  # a mark passed after every step: a grid at each
    assert [r.get("epoch_fraction") for r in records] == [pytest.approx(i / STEPS) for i in range(1, STEPS)] + [None]
    assert len(list((run.path / "grids").iterdir())) == STEPS


@pytest.mark.parametrize(
    ("value", "kept"), [(5, 5), ("5", 5), ("12 epochs", 12), ("2.50kimg", "2.5kimg"), (".5 min", "0.5min")]
)
def test_a_schedule_is_read_in_epochs_kimg_or_minutes(value, kept):
    config = gankit.apply_overrides(gankit.load_preset("report-gan-mnist"), [f"output.grid_every={value}"])
    assert config.output.grid_every == kept


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("output.grid_every=2.5", "a number of epochs is whole"),
        ("output.grid_every=5 hours", "expected a number of epochs, or one with a unit"),
        ("output.grid_every=0kimg", "output.grid_every must be positive"),
        ("output.checkpoint_every=0", "output.checkpoint_every must be positive"),
        ("output.eval_every=-1", "output.eval_every must be >= 0"),
        ("output.eval_every=true", "expected a number of epochs"),
    ],
)
def test_a_bad_schedule_is_named(override, message):
    with pytest.raises(gankit.GankitError, match=message):
        gankit.apply_overrides(gankit.load_preset("report-gan-mnist"), [override])


def test_the_eval_flag_takes_a_unit(tmp_path, capsys):
    assert main(["train", "report-gan-mnist", "--eval-every", "3 hours", "--out", str(tmp_path / "r")]) == 2
    assert "output.eval_every: expected a number of epochs" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()

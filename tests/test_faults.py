"""Runs that survive faults: divergence, hostile checkpoints, full disks, kills at random moments."""

import json
import os
import random
import signal
import subprocess
import sys

import pytest
import torch

import gankit
from conftest import TINY_NETS, train_tiny
from gankit.checkpoint import list_checkpoints, load_checkpoint
from gankit.cli import main
from gankit.errors import GankitError
from gankit.training import loop


def _resume(run, epochs, **kwargs):
    config = gankit.load_run(run).config
    config.train.epochs = epochs
    return gankit.train(config, run, resume=True, **kwargs)


def _epochs(run):
    return [json.loads(line)["epoch"] for line in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture
def poison_step(monkeypatch):
    """Make the n-th training step of the session turn one of D's weights into NaN."""
    calls = {"n": 0}

    class PoisonedStep(loop.GANStep):
        def __call__(self, real, labels=None, **options):
            calls["n"] += 1
            if calls["n"] == calls.get("at") or calls["n"] >= calls.get("from", float("inf")):
                with torch.no_grad():
                    next(self.D.parameters()).view(-1)[0] = float("nan")
            return super().__call__(real, labels, **options)

    monkeypatch.setattr(loop, "GANStep", PoisonedStep)
    return calls


def test_nan_stops_the_run_and_keeps_the_good_checkpoint(mnist_dir, tmp_path, poison_step):
    run = tmp_path / "run"
    poison_step["at"] = 8 + 3  # epoch 2 (8 steps of 64 per epoch), step 3
    with pytest.raises(GankitError, match="the losses became NaN or infinite at epoch 2, step 3") as error:
        train_tiny(mnist_dir, run, "train.epochs=3")
    assert error.value.options == ("train.on_nan",)
    assert [p.name for p in list_checkpoints(run / "checkpoints")] == ["epoch-0001.pt"]
    good = load_checkpoint(run / "checkpoints" / "epoch-0001.pt")
    assert all(torch.isfinite(v).all() for v in good["discriminator"].values())
    assert _epochs(run) == [1]


def test_nan_rollback_lowers_the_learning_rate_and_finishes(mnist_dir, tmp_path, poison_step, caplog):
    run = tmp_path / "run"
    poison_step["at"] = 8 + 3
    train_tiny(mnist_dir, run, "train.epochs=3", "train.on_nan=rollback")
    assert "at epoch 2, step 3: rolled back to epoch 1, learning rates now 0.0001 (G) and 0.0001 (D)" in caplog.text
    final = load_checkpoint(list_checkpoints(run / "checkpoints")[-1])
    assert final["epoch"] == 3 and final["opt_d"]["param_groups"][0]["lr"] == pytest.approx(1e-4)
    assert _epochs(run) == [1, 2, 3]


def test_rollbacks_that_keep_failing_stop_without_suggesting_rollback_again(mnist_dir, tmp_path, poison_step):
    poison_step["from"] = 8 + 3  # every step from epoch 2, step 3 on
    with pytest.raises(GankitError) as error:
        train_tiny(mnist_dir, tmp_path / "run", "train.epochs=3", "train.on_nan=rollback")
    assert str(error.value).endswith("(after 3 rollbacks: start a new run with lower learning rates)")
    assert "try train.on_nan rollback" not in str(error.value)


def test_hostile_checkpoint_is_refused_by_every_command_without_running_its_code(mnist_dir, tmp_path, capsys):
    run = tmp_path / "run"
    train_tiny(mnist_dir, run, "train.epochs=1")
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    hostile = run / "checkpoints" / "epoch-0002.pt"
    torch.save({"format": "gankit-checkpoint", "format_version": 1, "epoch": Payload()}, hostile)
    commands = [
        ["train", "--resume", "--out", str(run), "--epochs", "3", "--data-dir", str(mnist_dir)],
        ["sample", str(run)],
        ["interpolate", str(run)],
        ["export", str(run), "--format", "torchscript"],
        ["eval", str(run), "--data-dir", str(mnist_dir)],
        ["report", str(run)],
        ["sample", str(run), "--checkpoint", str(hostile)],
    ]
    for args in commands:
        capsys.readouterr()
        assert main(args) == 2, args
        err = capsys.readouterr().err.strip().splitlines()
        assert err[-1].startswith(f"gankit: error: checkpoint {hostile} is corrupt or unsafe to load"), (args, err)
        assert "weights_only" not in err[-1]  # no advice to load it the unsafe way
        assert not marker.exists()


def test_truncated_checkpoint_is_refused(mnist_dir, tmp_path):
    run = tmp_path / "run"
    train_tiny(mnist_dir, run, "train.epochs=1")
    path = list_checkpoints(run / "checkpoints")[-1]
    path.write_bytes(path.read_bytes()[:500])
    with pytest.raises(GankitError, match="is corrupt or unsafe to load"):
        _resume(run, 2)


def test_metrics_line_lost_in_a_crash_comes_back_from_the_checkpoint(mnist_dir, tmp_path):
    run = tmp_path / "run"
    train_tiny(mnist_dir, run, "train.epochs=2")
    lines = (run / "metrics.jsonl").read_text().splitlines()
    (run / "metrics.jsonl").write_text(lines[0] + "\n" + lines[1][:20])  # the last line cut short
    _resume(run, 3)
    assert _epochs(run) == [1, 2, 3]


def test_full_disk_fails_cleanly_and_keeps_what_was_written(mnist_dir, tmp_path):
    mount = tmp_path / "small"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], capture_output=True).returncode:
        pytest.skip("mounting a tmpfs is not allowed here")
    try:
        run = mount / "run"
        train_tiny(mnist_dir, run, "train.epochs=1")
        checkpoint = (run / "checkpoints" / "epoch-0001.pt").read_bytes()
        metrics = (run / "metrics.jsonl").read_bytes()
        free = os.statvfs(mount).f_bavail * os.statvfs(mount).f_frsize
        (mount / "filler").write_bytes(b"\0" * (free - 4096))
        with pytest.raises(GankitError) as error:
            _resume(run, 3)
        assert str(error.value).startswith("cannot write") and "No space left on device" in str(error.value)
        assert (run / "checkpoints" / "epoch-0001.pt").read_bytes() == checkpoint
        assert (run / "metrics.jsonl").read_bytes() == metrics
        assert not [p for p in (run / "checkpoints").iterdir() if p.name.startswith(".")]  # no temporary left
    finally:
        subprocess.run(["umount", str(mount)])


def test_sigkill_at_random_moments_then_resume_matches_an_uninterrupted_run(mnist_dir, tmp_path):
    base = [sys.executable, "-m", "gankit", "train", "seed-gan-mnist", "--data-dir", str(mnist_dir),
            "--epochs", "4", *TINY_NETS, "--limit", "3200", "--batch-size", "32"]
    straight = tmp_path / "straight"
    subprocess.run([*base, "--out", str(straight)], check=True, capture_output=True)
    expected = load_checkpoint(list_checkpoints(straight / "checkpoints")[-1])

    run = tmp_path / "killed"
    rng = random.Random(7)
    kills = 0
    for _ in range(6):
        # a run killed before it wrote its config is started afresh, as a user would
        cmd = [sys.executable, "-m", "gankit", "train", "--resume", "--out", str(run)] \
            if (run / "config.yaml").exists() else [*base, "--out", str(run)]
        proc = subprocess.Popen(cmd, stderr=subprocess.DEVNULL)
        try:
            proc.wait(timeout=rng.uniform(2.0, 7.0))  # the whole run takes about 9 s, a third of it startup
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            kills += 1
        if proc.returncode == 0:
            break
    else:
        subprocess.run(cmd, check=True, capture_output=True)
    assert kills >= 1
    print(f"killed {kills} times")  # shown with pytest -s: the figure BENCHMARKS.md quotes
    final = load_checkpoint(list_checkpoints(run / "checkpoints")[-1])
    assert final["epoch"] == 4
    for net in ("generator", "discriminator"):
        for key, value in expected[net].items():
            assert torch.equal(final[net][key], value), (net, key)
    assert _epochs(run) == [1, 2, 3, 4]


def test_a_folder_in_use_by_a_live_run_is_refused(mnist_dir, tmp_path):
    run = tmp_path / "run"
    train_tiny(mnist_dir, run, "train.epochs=1")
    holder = subprocess.Popen([sys.executable, "-c", "import fcntl, sys, time; f = open(sys.argv[1], 'a');"
                               "fcntl.flock(f, fcntl.LOCK_EX); print('locked', flush=True); time.sleep(60)",
                               str(run / ".lock")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        result = subprocess.run([sys.executable, "-m", "gankit", "train", "--resume", "--out", str(run), "--epochs", "2",
                                 "--data-dir", str(mnist_dir)], capture_output=True, text=True)
        assert result.returncode == 2
        assert result.stderr.strip().splitlines()[-1] == f"gankit: error: run folder {run} is in use by another live run"
        assert _epochs(run) == [1]
    finally:
        holder.kill()
        holder.wait()


def test_a_checkpoint_of_another_model_is_refused(mnist_dir, tmp_path):
    mlp, dcgan = tmp_path / "mlp", tmp_path / "dcgan"
    train_tiny(mnist_dir, mlp, "train.epochs=1")
    gankit.train(gankit.apply_overrides(gankit.load_preset("dcgan-mnist"), [
        "train.epochs=1", "data.limit=128", "model.base_channels=4", "output.progress=false"]), dcgan, data_dir=mnist_dir)
    (dcgan / "checkpoints" / "epoch-0002.pt").write_bytes((mlp / "checkpoints" / "epoch-0001.pt").read_bytes())
    with pytest.raises(GankitError, match=r"holds a different model than this run \(model.arch is 'mlp' there, 'dcgan' here\)"):
        _resume(dcgan, 3)


def test_a_damaged_metrics_line_is_an_error_not_a_silent_rewrite(mnist_dir, tmp_path):
    run = tmp_path / "run"
    train_tiny(mnist_dir, run, "train.epochs=3")
    lines = (run / "metrics.jsonl").read_text().splitlines()
    damaged = "\n".join([lines[0], lines[1][:-5] + "#####", lines[2]]) + "\n"
    (run / "metrics.jsonl").write_text(damaged)
    with pytest.raises(GankitError, match=r"metrics.jsonl line 2 is damaged; restore the file or remove that line"):
        _resume(run, 4)
    assert (run / "metrics.jsonl").read_text() == damaged


def test_a_checkpoint_from_before_a_model_key_existed_still_resumes(mnist_dir, tmp_path):
    run = tmp_path / "run"
    train_tiny(mnist_dir, run, "train.epochs=1")
    path = list_checkpoints(run / "checkpoints")[-1]
    state = load_checkpoint(path)
    del state["config"]["model"]["spectral_norm"]  # as written by gankit before the key was added
    torch.save(state, path)
    assert _resume(run, 2).metrics()[-1]["epoch"] == 2

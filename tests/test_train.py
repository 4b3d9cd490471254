import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

import gankit
from gankit import device
from gankit.checkpoint import list_checkpoints, load_checkpoint
from gankit.errors import GankitError
from gankit.training.callbacks import Callback

from conftest import TINY_MLP, TINY_NETS, tiny_config, train_tiny


def _weights(run):
    state = load_checkpoint(list_checkpoints(run / "checkpoints")[-1])
    return {
        **{f"G.{k}": v for k, v in state["generator"].items()},
        **{f"D.{k}": v for k, v in state["discriminator"].items()},
    }


def _assert_same(a, b):
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def _records(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_a_run_writes_its_folder(mnist_dir, tmp_path):
    run = train_tiny(mnist_dir, tmp_path / "run", "train.epochs=2", "output.grid_every=2")
    assert run.path == tmp_path / "run" and run.config.train.epochs == 2
    records = _records(run.path)
    assert [r["epoch"] for r in records] == [1, 2]
    assert list(records[0])[:5] == ["epoch", "d_loss", "g_loss", "d_acc_real", "d_acc_fake"]  # the step's named stats
    for r in records:
        assert r["images_per_s"] > 0 and r["epoch_seconds"] > 0
        assert 0 <= r["d_acc_real"] <= 1 and 0 <= r["d_acc_fake"] <= 1
        assert r["d_loss"] > 0 and r["g_loss"] > 0
    assert run.metrics() == records
    assert sorted(p.name for p in (run.path / "grids").iterdir()) == ["epoch-0001.png", "epoch-0002.png"]
    assert (run.path / "losses.png").stat().st_size > 1000
    assert "dataset: mnist" in (run.path / "config.yaml").read_text()
    state = load_checkpoint(list_checkpoints(run.path / "checkpoints")[-1])
    assert state["epoch"] == 2
    assert {"generator", "discriminator", "opt_g", "opt_d", "rng", "config"} <= state.keys()


def test_one_epoch_and_samples_in_python(mnist_dir, tmp_path):
    """The README's Python example."""
    config = gankit.load_preset("report-gan-mnist")
    config.train.epochs = 1
    config.data.limit = 1024
    config.output.progress = False
    run = gankit.train(config, tmp_path / "py", data_dir=mnist_dir)
    images = run.sample(16, seed=0)
    assert images.shape == (16, 1, 28, 28) and images.dtype == torch.uint8
    assert torch.equal(images, gankit.load_run(tmp_path / "py").sample(16, seed=0))


def test_the_loss_plot_waits_between_draws_but_always_shows_the_last_epoch(mnist_dir, tmp_path, monkeypatch):
    from gankit.training import callbacks

    drawn = []
    monkeypatch.setattr(callbacks, "plot_history", lambda history, path: drawn.append(history[-1]["epoch"]))
    monkeypatch.setattr(callbacks, "PLOT_EVERY_S", 3600.0)
    train_tiny(mnist_dir, tmp_path / "run", "train.epochs=4")
    assert drawn == [1, 4]
    monkeypatch.setattr(callbacks, "PLOT_EVERY_S", 0.0)
    drawn.clear()
    train_tiny(mnist_dir, tmp_path / "run2", "train.epochs=3")  # with no wait: after every epoch
    assert drawn == [1, 2, 3]


def test_grid_is_an_rgb_png_of_the_fixed_batch(mnist_dir, tmp_path):
    from PIL import Image

    run = train_tiny(mnist_dir, tmp_path / "run", "train.epochs=1", "output.grid_samples=16")
    with Image.open(run.path / "grids" / "epoch-0001.png") as img:
        assert img.size == (4 * 30 + 2, 4 * 30 + 2)  # 4x4 images of 28 px with 2 px padding


def test_same_seed_same_weights(mnist_dir, tmp_path):
    train_tiny(mnist_dir, tmp_path / "a", "train.epochs=1", "train.seed=3")
    train_tiny(mnist_dir, tmp_path / "b", "train.epochs=1", "train.seed=3")
    train_tiny(mnist_dir, tmp_path / "c", "train.epochs=1", "train.seed=4")
    _assert_same(_weights(tmp_path / "a"), _weights(tmp_path / "b"))
    assert not torch.equal(_weights(tmp_path / "a")["G.net.0.weight"], _weights(tmp_path / "c")["G.net.0.weight"])


def test_resume_equals_an_uninterrupted_run(mnist_dir, tmp_path):
    train_tiny(mnist_dir, tmp_path / "straight", "train.epochs=3")
    train_tiny(mnist_dir, tmp_path / "split", "train.epochs=1")
    config = gankit.load_run(tmp_path / "split").config
    config.train.epochs = 3
    gankit.train(config, tmp_path / "split", resume=True)  # no data_dir: the run remembers its data
    _assert_same(_weights(tmp_path / "straight"), _weights(tmp_path / "split"))
    straight, split = _records(tmp_path / "straight"), _records(tmp_path / "split")
    assert [r["epoch"] for r in split] == [1, 2, 3]
    assert [r["g_loss"] for r in split] == [r["g_loss"] for r in straight]


def test_resume_accepts_the_same_values_and_names_a_real_change(mnist_dir, tmp_path):
    train_tiny(mnist_dir, tmp_path / "r", "train.epochs=1", "train.seed=3")
    # the same command again, now resuming: equal values pass, the length may change
    gankit.train(tiny_config("train.epochs=2", "train.seed=3"), tmp_path / "r", data_dir=mnist_dir, resume=True)
    assert [r["epoch"] for r in _records(tmp_path / "r")] == [1, 2]
    with pytest.raises(GankitError) as error:
        gankit.train(tiny_config("train.epochs=3", "train.seed=4"), tmp_path / "r", resume=True)
    assert str(error.value) == (
        "cannot change train.seed from 3 to 4 when resuming: it would change the run's maths (start a new run)"
    )


def test_the_same_config_resumes_without_naming_the_data_again(mnist_dir, tmp_path):
    train_tiny(mnist_dir, tmp_path / "r", "train.epochs=1")
    run = gankit.train(tiny_config("train.epochs=2"), tmp_path / "r", resume=True)  # the command again, no data_dir
    assert run.config.data.dir == str(mnist_dir.resolve()) and [r["epoch"] for r in run.metrics()] == [1, 2]


def test_a_failed_resume_releases_the_folder(mnist_dir, tmp_path):
    train_tiny(mnist_dir, tmp_path / "r", "train.epochs=1")
    path = list_checkpoints(tmp_path / "r" / "checkpoints")[-1]
    good = path.read_bytes()
    path.write_bytes(good[:500])
    with pytest.raises(GankitError, match="is corrupt or unsafe to load"):
        gankit.train(None, tmp_path / "r", resume=True)
    path.write_bytes(good)
    assert gankit.train(tiny_config("train.epochs=2"), tmp_path / "r", resume=True).metrics()[-1]["epoch"] == 2


def test_the_run_remembers_its_data_and_says_when_it_moved(mnist_dir, tmp_path):
    import shutil

    copy = tmp_path / "mnist"
    shutil.copytree(mnist_dir, copy)
    run = train_tiny(copy, tmp_path / "r", "train.epochs=1")
    assert run.config.data.dir == str(copy.resolve())
    shutil.rmtree(copy)
    with pytest.raises(GankitError, match=rf"the data at {copy} \(data.dir\) is no longer there; name where it is now"):
        gankit.train(None, run.path, resume=True)
    config = gankit.load_run(run.path).config
    config.train.epochs = 2
    gankit.train(config, run.path, data_dir=mnist_dir, resume=True)  # an explicit location wins, and is remembered
    assert gankit.load_run(run.path).config.data.dir == str(mnist_dir.resolve())


def test_a_folder_holding_a_run_is_not_trained_over(mnist_dir, tmp_path):
    train_tiny(mnist_dir, tmp_path / "r", "train.epochs=1")
    with pytest.raises(GankitError, match="already holds a run; continue it with resume or choose another run_dir"):
        train_tiny(mnist_dir, tmp_path / "r", "train.epochs=1")


@pytest.mark.skipif(not device.cpu_supports_bf16(), reason="this CPU has no bf16 support")
def test_bf16_trains_with_fp32_weights(mnist_dir, tmp_path, caplog):
    with caplog.at_level("WARNING"):
        train_tiny(mnist_dir, tmp_path / "r", "train.epochs=2", "train.precision=bf16")
    # the tiny seed GAN has the report's sigmoid output, which lost a seed to bf16 that fp32 kept
    assert "bf16 with the sigmoid-output MLP" in caplog.text and "fp32 is safer for this model" in caplog.text
    weights = _weights(tmp_path / "r")
    assert all(w.dtype == torch.float32 and torch.isfinite(w).all() for w in weights.values())
    records = _records(tmp_path / "r")
    assert [r["epoch"] for r in records] == [1, 2]
    assert all(0 < r["d_loss"] < 10 and 0 < r["g_loss"] < 50 for r in records)


def test_bf16_is_refused_on_a_cpu_without_it(mnist_dir, tmp_path, monkeypatch, capsys):
    from gankit.cli import main

    monkeypatch.setattr(device, "cpu_supports_bf16", lambda: False)
    with pytest.raises(GankitError, match=r"^train.precision bf16: this CPU has no bf16 support \(use fp32\)$"):
        train_tiny(mnist_dir, tmp_path / "r", "train.precision=bf16")
    assert (
        main(
            [
                "train",
                "report-gan-mnist",
                "--data-dir",
                str(mnist_dir),
                "--out",
                str(tmp_path / "r"),
                "--precision",
                "bf16",
                *TINY_MLP,
            ]
        )
        == 2
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["gankit: error: --precision bf16: this CPU has no bf16 support (use fp32)"]  # the CLI names its flag
    assert not (tmp_path / "r").exists()


def test_emulated_bf16_on_the_cpu_warns_that_fp32_is_faster(monkeypatch, caplog):
    monkeypatch.setattr(device, "cpu_supports_bf16", lambda: True)
    for native, warned in ((False, True), (True, False)):
        monkeypatch.setattr(device, "cpu_has_native_bf16", lambda native=native: native)
        caplog.clear()
        with caplog.at_level("WARNING", logger="gankit"):
            device.check_precision("bf16", torch.device("cpu"))
            device.check_precision("fp32", torch.device("cpu"))
        assert [r.getMessage() for r in caplog.records] == (
            [
                "bf16 on this CPU is emulated (it has no AVX-512 BF16 or AMX), so it trains slower than fp32: "
                "--precision fp32 is faster here"
            ]
            if warned
            else []
        )


def test_minimax_uniform_and_smoothing_train(mnist_dir, tmp_path):
    train_tiny(
        mnist_dir,
        tmp_path / "r",
        "train.epochs=1",
        "train.loss=minimax",
        "model.noise=uniform",
        "train.label_smoothing=0.1",
    )
    assert load_checkpoint(list_checkpoints(tmp_path / "r" / "checkpoints")[-1])["config"]["train"]["loss"] == "minimax"


def test_sampling_with_replacement_and_keras_settings_train_and_resume_exactly(mnist_dir, tmp_path):
    keras = ("train.batch_order=replacement", "train.adam_eps=1e-7", "train.probability_clip=1e-7")
    train_tiny(mnist_dir, tmp_path / "straight", "train.epochs=2", *keras)
    train_tiny(mnist_dir, tmp_path / "split", "train.epochs=1", *keras)
    gankit.train(tiny_config("train.epochs=2", *keras), tmp_path / "split", data_dir=mnist_dir, resume=True)
    _assert_same(_weights(tmp_path / "straight"), _weights(tmp_path / "split"))
    state = load_checkpoint(list_checkpoints(tmp_path / "straight" / "checkpoints")[-1])
    assert state["opt_d"]["param_groups"][0]["eps"] == 1e-7


def test_killed_mid_epoch_resumes_without_duplicate_or_missing_epochs(mnist_dir, tmp_path):
    run = tmp_path / "run"
    cmd = [
        sys.executable,
        "-m",
        "gankit",
        "train",
        "report-gan-mnist",
        "--data-dir",
        str(mnist_dir),
        "--out",
        str(run),
        "--epochs",
        "4",
        *TINY_NETS,
        "--limit",
        "6400",
        "--batch-size",
        "32",
    ]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, env=os.environ.copy())
    # wait for the first finished epoch, then kill in the middle of a later one
    deadline = time.time() + 600
    while time.time() < deadline and proc.poll() is None and not list_checkpoints(run / "checkpoints"):
        time.sleep(0.05)
    time.sleep(0.3)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = load_checkpoint(list_checkpoints(run / "checkpoints")[-1])["epoch"]
    assert 1 <= done < 4
    resumed = subprocess.run(
        [sys.executable, "-m", "gankit", "train", "--resume", "--out", str(run), "--no-progress"],
        capture_output=True,
        text=True,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming {run} after epoch {done}" in resumed.stderr
    assert [r["epoch"] for r in _records(run)] == [1, 2, 3, 4]


def test_trains_where_fcntl_does_not_exist(mnist_dir, tmp_path):
    """Windows has no fcntl: the package imports, locks its run folder and trains without it."""
    program = (
        "import sys; sys.modules['fcntl'] = None\n"  # `import fcntl` now raises ImportError
        "from conftest import train_tiny\n"
        "from pathlib import Path\n"
        f"train_tiny(Path({str(mnist_dir)!r}), Path({str(tmp_path / 'r')!r}), 'train.epochs=1')\n"
        "from gankit.rundir import RunDir; from gankit.errors import GankitError\n"
        f"first, second = RunDir(Path({str(tmp_path / 'r')!r})), RunDir(Path({str(tmp_path / 'r')!r}))\n"
        "first.lock()\n"
        "try:\n    second.lock()\nexcept GankitError as e:\n    print(e)\n"
        "import filelock; print(filelock.FileLock.__name__)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", program],
        capture_output=True,
        text=True,
        cwd=os.path.dirname(__file__),
        env=os.environ.copy(),
    )
    assert result.returncode == 0, result.stderr
    refused, lock_class = result.stdout.strip().splitlines()
    assert refused == f"run folder {tmp_path / 'r'} is in use by another live run"
    assert lock_class != "UnixFileLock"
    assert [r["epoch"] for r in _records(tmp_path / "r")] == [1]


def test_a_run_that_fails_before_its_first_checkpoint_leaves_nothing(mnist_dir, tmp_path, monkeypatch):
    from gankit.training import loop

    def broken(*args, **kwargs):
        raise RuntimeError("a step that fails")

    monkeypatch.setattr(loop, "run_epoch", broken)
    with pytest.raises(RuntimeError, match="a step that fails"):
        train_tiny(mnist_dir, tmp_path / "new", "train.epochs=1")
    assert not (tmp_path / "new").exists()
    (tmp_path / "mine").mkdir()  # an empty folder the user made: it stays, empty
    with pytest.raises(RuntimeError):
        train_tiny(mnist_dir, tmp_path / "mine", "train.epochs=1")
    assert (tmp_path / "mine").is_dir() and not list((tmp_path / "mine").iterdir())
    monkeypatch.undo()
    train_tiny(mnist_dir, tmp_path / "new", "train.epochs=1")  # the same command now runs: nothing was left behind


def test_batch_norm_with_a_batch_of_one_is_refused_before_a_folder_exists(mnist_dir, tmp_path):
    config = gankit.apply_overrides(gankit.load_preset("dcgan-mnist"), ["train.batch_size=1", "model.base_channels=4"])
    with pytest.raises(GankitError, match="train.batch_size must be at least 2 for model.arch dcgan"):
        gankit.train(config, tmp_path / "r", data_dir=mnist_dir)
    assert not (tmp_path / "r").exists()


def test_linear_decay_takes_each_net_s_own_learning_rate_to_zero_and_d_has_its_own_betas(mnist_dir, tmp_path):
    run = train_tiny(
        mnist_dir,
        tmp_path / "r",
        "train.epochs=2",
        "train.lr_decay=linear",
        "train.lr_g=1e-4",
        "train.lr_d=4e-4",
        "train.beta1_d=0.0",
        "train.beta2_d=0.9",
    )
    state = load_checkpoint(run.checkpoint())
    steps = 2 * 8  # 2 epochs of 8 batches of 64
    (g_group,), (d_group,) = state["opt_g"]["param_groups"], state["opt_d"]["param_groups"]
    assert g_group["base_lr"] == 1e-4 and d_group["base_lr"] == 4e-4
    assert g_group["lr"] == pytest.approx(1e-4 / steps) and d_group["lr"] == pytest.approx(
        4e-4 / steps
    )  # the last step's
    assert g_group["betas"] == (0.5, 0.999) and d_group["betas"] == (0.0, 0.9)


def test_resuming_a_linear_decay_with_more_epochs_warns_that_the_rate_changes(mnist_dir, tmp_path, caplog):
    train_tiny(mnist_dir, tmp_path / "r", "train.epochs=1", "train.lr_decay=linear")
    with caplog.at_level("WARNING"):
        gankit.train(tiny_config("train.epochs=2", "train.lr_decay=linear"), tmp_path / "r", resume=True)
    assert "train.epochs 1 -> 2: the linear learning-rate decay now spans 2 epochs" in caplog.text


def test_resume_is_bit_identical_with_linear_decay(mnist_dir, tmp_path):
    class StopAfterEpochOne(Callback):  # an interruption: the schedule still spans the run's 3 epochs
        def on_epoch_end(self, epoch):
            if epoch.state.epoch == 1:
                epoch.stop = "stopped for the test"

    train_tiny(mnist_dir, tmp_path / "straight", "train.epochs=3", "train.lr_decay=linear")
    train_tiny(
        mnist_dir,
        tmp_path / "split",
        "train.epochs=3",
        "train.lr_decay=linear",
        hooks=gankit.Hooks(callbacks=[StopAfterEpochOne()]),
    )
    assert [r["epoch"] for r in gankit.load_run(tmp_path / "split").metrics()] == [1]
    gankit.train(None, tmp_path / "split", resume=True)
    _assert_same(_weights(tmp_path / "straight"), _weights(tmp_path / "split"))


def test_compile_trains_as_eager_does_and_resumes(mnist_dir, tmp_path):
    """torch.compile of G and D (a tiny MLP with gankit's dropout, whose mask is made outside the graph): the same
    step, so the same losses within float reordering, and checkpoints of the bare nets that resume."""
    eager = train_tiny(mnist_dir, tmp_path / "eager", "train.epochs=1", "output.report=false")
    compiled = train_tiny(
        mnist_dir, tmp_path / "compiled", "train.epochs=1", "train.compile=true", "output.report=false"
    )
    for name in ("d_loss", "g_loss", "d_acc_real"):
        # compiled kernels sum in another order: after one epoch of 8 steps the runs agree to 4 digits here
        assert compiled.metrics()[0][name] == pytest.approx(eager.metrics()[0][name], rel=1e-2, abs=1e-2), name
    assert _weights(tmp_path / "compiled").keys() == _weights(tmp_path / "eager").keys()  # no _orig_mod. prefix
    config = compiled.config
    config.train.epochs = 2
    assert [r["epoch"] for r in gankit.train(config, tmp_path / "compiled", resume=True).metrics()] == [1, 2]

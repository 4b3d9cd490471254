"""Runs that survive faults: divergence, hostile checkpoints, full disks, kills at random moments."""

import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch

import gankit
from gankit.checkpoint import list_checkpoints, load_checkpoint
from gankit.cli import main
from gankit.errors import GankitError
from gankit.training import loop

from conftest import TINY_NETS, train_tiny


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
        def __call__(self, real, labels, **options):
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


def test_rollbacks_that_keep_failing_stop_without_suggesting_rollback_again(mnist_dir, tmp_path, poison_step, caplog):
    poison_step["from"] = 8 + 3  # every step from epoch 2, step 3 on
    with pytest.raises(GankitError) as error:
        train_tiny(mnist_dir, tmp_path / "run", "train.epochs=3", "train.on_nan=rollback")
    assert str(error.value).endswith("(after 3 rollbacks: start a new run with lower learning rates)")
    assert "try train.on_nan rollback" not in str(error.value)
    # each rollback to epoch 1's checkpoint halves the rates that diverged, not those the checkpoint saved
    rates = re.findall(r"learning rates now ([\d.e-]+) \(G\)", caplog.text)
    assert [float(r) for r in rates] == pytest.approx([1e-4, 5e-5, 2.5e-5])


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


def test_signals_at_random_moments_keep_the_run_whole_and_resume_matches_an_uninterrupted_run(mnist_dir, tmp_path):
    """Ctrl-C (SIGINT), SIGTERM (torchrun, SLURM, docker) and SIGKILL at random moments: after each, the records match
    the checkpoints, a handled signal leaves no partial file and names itself, and the same command goes on."""
    base = [
        sys.executable,
        "-m",
        "gankit",
        "train",
        "report-gan-mnist",
        "--data-dir",
        str(mnist_dir),
        "--epochs",
        "4",
        *TINY_NETS,
        "--limit",
        "3200",
        "--batch-size",
        "32",
    ]
    straight = tmp_path / "straight"
    start = time.monotonic()
    subprocess.run([*base, "--out", str(straight)], check=True, capture_output=True)
    whole = time.monotonic() - start  # about 9 s here, a third of it startup: the moments are drawn within it
    expected = load_checkpoint(list_checkpoints(straight / "checkpoints")[-1])

    run = tmp_path / "killed"
    rng = random.Random(7)
    kills = 0
    for _ in range(5):
        # a run killed before it wrote its config is started afresh, as a user would
        cmd = (
            [sys.executable, "-m", "gankit", "train", "--resume", "--out", str(run)]
            if (run / "config.yaml").exists()
            else [*base, "--out", str(run)]
        )
        proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
        sig = rng.choice([signal.SIGINT, signal.SIGTERM, signal.SIGKILL])
        try:
            proc.wait(timeout=rng.uniform(0.25, 0.8) * whole)
        except subprocess.TimeoutExpired:
            proc.send_signal(sig)
            kills += 1
        err = proc.communicate()[1]
        if proc.returncode == 0 and not kills:  # the straight run was slowed (a busy machine): draw earlier moments
            shutil.rmtree(run)
            whole /= 2
            continue
        if proc.returncode == 0:
            break
        # a handled signal ends in gankit's own line and code; -sig only before gankit had set its handlers (startup)
        assert proc.returncode in ((-sig,) if sig == signal.SIGKILL else (128 + sig, -sig)), (proc.returncode, err)
        if proc.returncode == 128 + sig:
            assert (
                err.strip()
                .splitlines()[-1]
                .startswith("gankit: interrupted" if sig == signal.SIGINT else "gankit: terminated")
            ), err
            assert not [p for p in run.rglob("*.tmp")] if run.exists() else True  # no partial file
        if (
            run / "config.yaml"
        ).exists():  # the records end at the newest checkpoint (or one before: resume repairs it)
            newest = list_checkpoints(run / "checkpoints")
            done = load_checkpoint(newest[-1])["epoch"] if newest else 0
            assert _epochs(run) in ([*range(1, done + 1)], [*range(1, done)]), (_epochs(run), done)
    else:  # not finished within the tries: the same command, as a user would give it now
        cmd = (
            [sys.executable, "-m", "gankit", "train", "--resume", "--out", str(run)]
            if (run / "config.yaml").exists()
            else [*base, "--out", str(run)]
        )
        subprocess.run(cmd, check=True, capture_output=True)
    assert kills >= 1
    print(f"stopped {kills} times")
    final = load_checkpoint(list_checkpoints(run / "checkpoints")[-1])
    assert final["epoch"] == 4
    for net in ("generator", "discriminator"):
        for key, value in expected[net].items():
            assert torch.equal(final[net][key], value), (net, key)
    assert _epochs(run) == [1, 2, 3, 4]


def _children(pid):
    """The processes `pid` forked that still run its program (Linux): not a tool it ran, such as ldconfig at import."""
    path = f"/proc/{pid}/task/{pid}/children"
    try:
        children = [int(child) for child in open(path).read().split()]
        own = open(f"/proc/{pid}/cmdline", "rb").read()
        return [child for child in children if open(f"/proc/{child}/cmdline", "rb").read() == own]
    except OSError:  # ended meanwhile
        return []


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return not open(f"/proc/{pid}/stat").read().split(")")[-1].split()[0] == "Z"  # a zombie has ended


@pytest.mark.skipif(
    not os.path.exists(f"/proc/{os.getpid()}/task/{os.getpid()}/children"), reason="needs Linux's /proc"
)
def test_sigterm_while_decoding_stops_the_decoding_pool_and_leaves_no_run(tmp_path):
    from conftest import CIFAR_ARCHIVE

    run = tmp_path / "run"
    env = {**os.environ, "GANKIT_CACHE_DIR": str(tmp_path / "cache")}  # a cold cache: the archive is decoded
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gankit",
            "train",
            "report-dcgan-cifar10",
            "--data-dir",
            str(CIFAR_ARCHIVE),
            "--out",
            str(run),
            "--no-progress",
        ],
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    deadline = time.monotonic() + 600
    workers = []
    while not workers and time.monotonic() < deadline and proc.poll() is None:
        seen = _children(proc.pid)
        time.sleep(0.3)  # a pool's workers stay; a fork that runs a tool (at import, say) becomes that tool at once
        workers = [child for child in _children(proc.pid) if child in seen]
    if not workers:
        proc.kill()
        pytest.skip("the decode finished before its pool could be seen")
    proc.send_signal(signal.SIGTERM)
    err = proc.communicate(timeout=300)[1]
    assert proc.returncode == 143 and err.strip().splitlines()[-1] == "gankit: terminated", err
    deadline = time.monotonic() + 10
    while any(_alive(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [w for w in workers if _alive(w)]
    assert not run.exists()


def test_sigterm_while_writing_sample_files_leaves_no_partial_folder(mnist_dir, tmp_path):
    run = tmp_path / "run"
    train_tiny(mnist_dir, run, "train.epochs=1")
    out = tmp_path / "samples"
    proc = subprocess.Popen(
        [sys.executable, "-m", "gankit", "sample", str(run), "--format", "files", "--n", "200000", "--out", str(out)],
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 600
    while not list(tmp_path.glob(".samples.*")) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.02)
    assert proc.poll() is None and list(tmp_path.glob(".samples.*")), "the files were never being written"
    proc.send_signal(signal.SIGTERM)
    err = proc.communicate(timeout=300)[1]
    assert proc.returncode == 143 and err.strip().splitlines()[-1] == "gankit: terminated", err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_a_folder_in_use_by_a_live_run_is_refused(mnist_dir, tmp_path):
    run = tmp_path / "run"
    train_tiny(mnist_dir, run, "train.epochs=1")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, sys, time; f = open(sys.argv[1], 'a');"
            "fcntl.flock(f, fcntl.LOCK_EX); print('locked', flush=True); time.sleep(60)",
            str(run / ".lock"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "gankit",
                "train",
                "--resume",
                "--out",
                str(run),
                "--epochs",
                "2",
                "--data-dir",
                str(mnist_dir),
            ],
            capture_output=True,
            text=True,
        )
        assert result.returncode == 2
        assert (
            result.stderr.strip().splitlines()[-1] == f"gankit: error: run folder {run} is in use by another live run"
        )
        assert _epochs(run) == [1]
    finally:
        holder.kill()
        holder.wait()


def test_a_checkpoint_of_another_model_is_refused(mnist_dir, tmp_path):
    mlp, dcgan = tmp_path / "mlp", tmp_path / "dcgan"
    train_tiny(mnist_dir, mlp, "train.epochs=1")
    gankit.train(
        gankit.apply_overrides(
            gankit.load_preset("dcgan-mnist"),
            ["train.epochs=1", "data.limit=128", "model.base_channels=4", "output.progress=false"],
        ),
        dcgan,
        data_dir=mnist_dir,
    )
    (dcgan / "checkpoints" / "epoch-0002.pt").write_bytes((mlp / "checkpoints" / "epoch-0001.pt").read_bytes())
    with pytest.raises(
        GankitError, match=r"holds a different model than this run \(model.arch is 'mlp' there, 'dcgan' here\)"
    ):
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


@pytest.mark.parametrize("loss", ["the checkpoints folder", "every checkpoint", "the newest checkpoint"])
def test_resume_after_checkpoints_are_gone_keeps_the_records(mnist_dir, tmp_path, capsys, loss):
    run = tmp_path / "run"
    train_tiny(mnist_dir, run, "train.epochs=2", "output.keep_checkpoints=2")
    records = (run / "metrics.jsonl").read_bytes()
    if loss == "the checkpoints folder":
        shutil.rmtree(run / "checkpoints")
    else:
        for path in list_checkpoints(run / "checkpoints")[-1 if loss == "the newest checkpoint" else 0 :]:
            path.unlink()
    assert main(["train", "--resume", "--out", str(run), "--epochs", "3"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    found = (
        f"its newest checkpoint is {run / 'checkpoints' / 'epoch-0001.pt'}"
        if loss == "the newest checkpoint"
        else f"{run / 'checkpoints'} holds no checkpoint"
    )
    back_to = 1 if loss == "the newest checkpoint" else 0
    assert err[-1] == (
        f"gankit: error: {run / 'metrics.jsonl'} records epochs up to 2, but {found}: resuming would "
        f"drop those records; put the removed checkpoints back, or, to go back to epoch {back_to} on "
        "purpose, remove the later lines of metrics.jsonl first (or start a new run in another folder)"
    )
    assert (run / "metrics.jsonl").read_bytes() == records  # not rewritten
    assert main(["train", "--resume", "--out", str(run), "--epochs", "3"]) == 2  # the same refusal: the folder is free
    assert "records epochs up to 2" in capsys.readouterr().err
    if back_to:  # going back on purpose, as the message says: the records from epoch 2 on go first
        (run / "metrics.jsonl").write_bytes(records.splitlines(keepends=True)[0])
        assert main(["train", "--resume", "--out", str(run), "--epochs", "3"]) == 0
        assert _epochs(run) == [1, 2, 3]


def test_a_run_stopped_before_its_first_checkpoint_resumes_from_epoch_1_even_without_its_folders(mnist_dir, tmp_path):
    run = tmp_path / "run"
    train_tiny(mnist_dir, run, "train.epochs=1")
    shutil.rmtree(run / "checkpoints")
    shutil.rmtree(run / "grids")
    (run / "metrics.jsonl").unlink()  # as a run interrupted in its first epoch leaves it, less its empty folders
    assert _resume(run, 2).metrics()[-1]["epoch"] == 2
    assert _epochs(run) == [1, 2]


def test_another_run_s_checkpoint_of_the_same_model_is_refused(mnist_dir, tmp_path):
    mine, other = tmp_path / "mine", tmp_path / "other"
    train_tiny(mnist_dir, mine, "train.epochs=1")
    train_tiny(mnist_dir, other, "train.epochs=1")  # the same config and weights: only the records' timings differ
    (mine / "checkpoints" / "epoch-0001.pt").write_bytes((other / "checkpoints" / "epoch-0001.pt").read_bytes())
    records = (mine / "metrics.jsonl").read_bytes()
    with pytest.raises(GankitError, match=r"epoch-0001.pt is not this run's checkpoint: its record of epoch 1 differs"):
        _resume(mine, 2)
    assert (mine / "metrics.jsonl").read_bytes() == records


@pytest.mark.parametrize("folder", ["made by the run", "empty, made by the user"])
def test_an_interrupted_new_run_removes_only_what_it_wrote(mnist_dir, tmp_path, monkeypatch, folder):
    run = tmp_path / "run"
    if folder != "made by the run":
        run.mkdir()

    def interrupted(*args, **kwargs):  # the user saves notes into the folder during epoch 1, then presses Ctrl-C
        (run / "notes.txt").write_text("mine")
        (run / "grids" / "favourite.png").write_bytes(b"mine too")
        raise KeyboardInterrupt

    monkeypatch.setattr(loop, "run_epoch", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train_tiny(mnist_dir, run, "train.epochs=1")
    assert sorted(str(p.relative_to(run)) for p in run.rglob("*")) == ["grids", "grids/favourite.png", "notes.txt"]
    assert (run / "notes.txt").read_text() == "mine"


GARBAGE = {
    "one byte": b"x",
    "/etc/passwd": b"root:x:0:0:root:/root:/bin/bash\nbin:x:1:1::/:/usr/sbin/nologin\n",
    "empty": b"",
    "a zip header alone": b"PK\x03\x04" + bytes(60),
}


@pytest.mark.parametrize("garbage", list(GARBAGE))
def test_a_garbage_checkpoint_is_refused_in_one_line_naming_the_intact_one(mnist_dir, tmp_path, capsys, garbage):
    run = tmp_path / "run"
    train_tiny(mnist_dir, run, "train.epochs=1")
    bad = run / "checkpoints" / "epoch-0002.pt"
    bad.write_bytes(GARBAGE[garbage])
    for args in (
        ["train", "--resume", "--out", str(run), "--epochs", "3"],
        ["sample", str(run)],
        ["interpolate", str(run)],
        ["export", str(run), "--format", "torchscript"],
        ["report", str(run)],
        ["eval", str(run), "--n", "64"],
        ["serve", str(run), "--port", "0"],
    ):
        capsys.readouterr()
        assert main(args) == 2, args
        err = capsys.readouterr().err.strip().splitlines()
        assert err[-1].startswith(f"gankit: error: checkpoint {bad} is corrupt or unsafe to load ("), (args, err)
        assert err[-1].endswith("); epoch-0001.pt beside it is untouched: to resume from it, move this one aside"), err
        assert "run code" not in err[-1]  # garbage, not a file that tried to run code
    assert _epochs(run) == [1]


def test_a_checkpoint_missing_its_parts_is_refused_not_a_crash(mnist_dir, tmp_path, capsys):
    run = tmp_path / "run"
    train_tiny(mnist_dir, run, "train.epochs=1")
    good = load_checkpoint(run / "checkpoints" / "epoch-0001.pt")
    bad = run / "checkpoints" / "epoch-0002.pt"
    for broken in (
        {"format": "gankit-checkpoint", "format_version": 1},
        {**good, "generator": "not weights"},
        {**good, "epoch": "two"},
        {**good, "config": [1, 2]},
    ):
        torch.save(broken, bad)
        for args in (["train", "--resume", "--out", str(run), "--epochs", "3"], ["sample", str(run)]):
            capsys.readouterr()
            assert main(args) == 2, (args, list(broken))
            last = capsys.readouterr().err.strip().splitlines()[-1]
            assert last.startswith("gankit: error: ") and str(bad) in last, (args, last)
    assert _epochs(run) == [1]


@pytest.fixture
def small_disk(tmp_path):
    """A 3 MB file system of its own (tmpfs: root only), unmounted afterwards."""
    mount = tmp_path / "small"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)], capture_output=True).returncode:
        pytest.skip("mounting a tmpfs is not allowed here")
    yield mount
    subprocess.run(["umount", str(mount)])


def _fill(mount, leave=4096):
    free = os.statvfs(mount).f_bavail * os.statvfs(mount).f_frsize
    (mount / "filler").write_bytes(b"\0" * max(0, free - leave))


def test_a_checkpoint_on_a_full_disk_says_no_space_and_leaves_nothing_partial(small_disk):
    from gankit.checkpoint import save_checkpoint

    _fill(small_disk, leave=64 * 1024)
    with pytest.raises(GankitError) as error:
        save_checkpoint(small_disk / "epoch-0001.pt", {"weights": torch.zeros(256, 1024)})  # 1 MB
    assert str(error.value) == f"cannot write {small_disk / 'epoch-0001.pt'}: No space left on device"
    assert sorted(p.name for p in small_disk.iterdir()) == ["filler"]


def test_an_export_onto_a_full_disk_says_no_space_in_one_line(mnist_dir, tmp_path, small_disk):
    run = tmp_path / "run"
    train_tiny(mnist_dir, run, "train.epochs=1", "model.g_hidden=[256, 512]")  # G of about 0.6 MB
    _fill(small_disk, leave=128 * 1024)
    out = small_disk / "g.torchscript.pt"
    result = subprocess.run(
        [sys.executable, "-m", "gankit", "export", str(run), "--format", "torchscript", "--out", str(out)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines()[-1] == f"gankit: error: cannot write {out}: No space left on device"
    assert sorted(p.name for p in small_disk.iterdir()) == ["filler"]


def test_decoding_into_a_cache_without_room_fails_in_one_line_not_sigbus(tmp_path, small_disk):
    folder = tmp_path / "pictures"
    folder.mkdir()
    from PIL import Image

    for i in range(40):
        Image.new("RGB", (256, 256), (i, 2 * i, 3 * i)).save(folder / f"{i:03d}.png")
    program = (  # the free-space check is fooled, as a disk that fills while decoding would be: allocation must catch it
        "import sys; from gankit.data import decoding; decoding.free_disk_bytes = lambda path: 1 << 40\n"
        "from gankit.cli import main; sys.exit(main(sys.argv[1:]))\n"
    )
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            program,
            "train",
            "dcgan-small-data",
            "--data-dir",
            str(folder),
            "--out",
            str(tmp_path / "run"),
            "--set",
            "data.image_size=256",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "GANKIT_CACHE_DIR": str(small_disk)},
    )
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])  # SIGBUS would be -7
    assert "no space left in the cache" in result.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "edit",
    [("batch_size", "64", "32"), ("seed", "0", "9"), ("lr_g", "0.0002", "0.001"), ("loss", "nonsaturating", "hinge")],
)
def test_an_edited_config_yaml_is_refused_on_resume(mnist_dir, tmp_path, capsys, edit):
    key, before, after = edit
    run = tmp_path / "run"
    train_tiny(mnist_dir, run, "train.epochs=1")
    text = (run / "config.yaml").read_text()
    assert f"  {key}: {before}\n" in text
    (run / "config.yaml").write_text(text.replace(f"  {key}: {before}\n", f"  {key}: {after}\n"))
    assert main(["train", "--resume", "--out", str(run), "--epochs", "2"]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"gankit: error: train.{key} is {gankit.load_run(run).config.to_dict()['train'][key]!r} in {run / 'config.yaml'}, "
        f"but {run / 'checkpoints' / 'epoch-0001.pt'} was trained with "
        f"{load_checkpoint(run / 'checkpoints' / 'epoch-0001.pt')['config']['train'][key]!r}: put it back to resume "
        "the run, or start a new run"
    )
    assert _epochs(run) == [1]


def test_temporary_files_never_follow_a_link_planted_beside_the_target(tmp_path, monkeypatch):
    from gankit import files

    victim = tmp_path / "victim"
    victim.write_text("precious")
    (tmp_path / ".out.txt.planted.tmp").symlink_to(victim)  # where a guessable temporary name would be
    tokens = iter(["planted", "fresh", "another"])
    monkeypatch.setattr(files.secrets, "token_hex", lambda n: next(tokens))
    files.atomic_write_text(tmp_path / "out.txt", "new")
    assert victim.read_text() == "precious" and (tmp_path / "out.txt").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".out.txt.planted.tmp", "out.txt", "victim"]

    def disk_full(tmp):
        raise OSError(28, "No space left on device")

    with pytest.raises(GankitError, match="cannot write .*other.txt: No space left on device"):
        files.atomic_write(tmp_path / "other.txt", disk_full)  # and leaves no temporary behind
    assert sorted(p.name for p in tmp_path.iterdir()) == [".out.txt.planted.tmp", "out.txt", "victim"]


def test_resume_refuses_another_data_set_of_the_same_format(mnist_dir, tmp_path, capsys):
    from conftest import SHARED_DATA

    run = tmp_path / "run"
    train_tiny(mnist_dir, run, "train.epochs=1")
    fashion = tmp_path / "fashion-as-mnist"  # Fashion-MNIST's files under MNIST's names: the format cannot tell them
    fashion.mkdir()
    for name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"):
        shutil.copy(SHARED_DATA / "fashion-mnist" / name, fashion / name)
    assert main(["train", "--resume", "--out", str(run), "--epochs", "2", "--data-dir", str(fashion)]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"gankit: error: the images in {fashion} are not the ones {run / 'checkpoints' / 'epoch-0001.pt'} was trained "
        "on (their fingerprints differ): give the run's own data with --data-dir"
    )
    assert _epochs(run) == [1]
    assert main(["train", "--resume", "--out", str(run), "--epochs", "2", "--data-dir", str(mnist_dir)]) == 0
    assert _epochs(run) == [1, 2]

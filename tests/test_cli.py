"""Bad input: one clear line on stderr, exit code 2, and no run folder left behind."""

import gzip
import subprocess
import sys

import pytest

from conftest import TINY_MLP
from gankit.cli import main


def _run(args, capsys):
    """Exit code and the error lines (log lines before them are progress, not errors)."""
    code = main(args)
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, [line for line in err.splitlines() if not line.startswith("gankit: ") or line.startswith("gankit: error:")]


def test_presets_lists_the_seed_presets(capsys):
    assert main(["presets"]) == 0
    out = capsys.readouterr().out
    assert "seed-gan-mnist" in out and "seed-dcgan-cifar10" in out


@pytest.mark.parametrize("args, message", [
    (["train", "no-such-preset"], "unknown preset 'no-such-preset'"),
    (["train", "seed-gan-mnist", "--set", "train.nope=1"], "unknown config key 'train.nope'"),
    (["train", "seed-gan-mnist", "--epochs", "ten"], "argument --epochs: expected a whole number, got 'ten'"),
    (["train", "seed-gan-mnist", "--epochs", "0"], "expected a positive whole number"),
    (["train", "seed-gan-mnist", "--device", "tpu"], "argument --device: invalid choice"),
    (["train", "seed-gan-mnist", "--data-dir", "/no/such/dir"], "data directory /no/such/dir does not exist"),
    (["train", "missing.yaml"], "config file missing.yaml does not exist"),
    (["fly"], "invalid choice: 'fly'"),
])
def test_bad_input_is_one_line_and_exit_2(args, message, capsys, tmp_path):
    out = tmp_path / "run"
    code, err = _run([*args, "--out", str(out)] if args[0] == "train" else args, capsys)
    assert code == 2
    assert len(err) == 1 and message in err[0], err
    assert err[0].startswith("gankit: error: ")
    assert not out.exists()


def test_resume_needs_a_run_folder(capsys):
    assert _run(["train", "--resume"], capsys) == (2, ["gankit: error: --resume needs --out naming the run folder to continue"])


def test_truncated_idx_leaves_no_run_folder(mnist_dir, tmp_path, capsys):
    data = tmp_path / "mnist"
    data.mkdir()
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"):
        raw = gzip.decompress((mnist_dir / f"{name}.gz").read_bytes())
        (data / name).write_bytes(raw[:1000] if "images" in name else raw)
    out = tmp_path / "run"
    code, err = _run(["train", "seed-gan-mnist", "--data-dir", str(data), "--out", str(out)], capsys)
    assert code == 2 and len(err) == 1 and "is truncated" in err[-1]
    assert not out.exists()


def test_existing_run_is_not_overwritten(mnist_dir, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "seed-gan-mnist", "--data-dir", str(mnist_dir), "--out", str(out), "--epochs", "1", *TINY_MLP]) == 0
    before = (out / "metrics.jsonl").read_bytes()
    capsys.readouterr()
    code, err = _run(["train", "seed-gan-mnist", "--data-dir", str(mnist_dir), "--out", str(out), *TINY_MLP], capsys)
    assert code == 2 and "already holds a run" in err[-1]
    assert (out / "metrics.jsonl").read_bytes() == before
    code, err = _run(["train", "--resume", "--out", str(out), "--set", "train.lr_g=0.1"], capsys)
    assert code == 2 and "cannot change train.lr_g when resuming" in err[-1]


def test_console_entry_point_exits_2_without_traceback():
    result = subprocess.run([sys.executable, "-m", "gankit", "train", "nope"], capture_output=True, text=True)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gankit: error: unknown preset 'nope' (known: ")
    assert "seed-gan-mnist" in lines[0] and "seed-dcgan-cifar10" in lines[0]

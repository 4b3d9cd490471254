"""The command line itself; the table of bad inputs is in test_bad_inputs.py."""

import subprocess
import sys

from gankit.cli import main


def test_presets_lists_the_seed_presets(capsys):
    assert main(["presets"]) == 0
    out = capsys.readouterr().out
    assert "seed-gan-mnist" in out and "seed-dcgan-cifar10" in out and "gan-mnist-tanh" in out


def test_resume_needs_a_run_folder(capsys):
    assert main(["train", "--resume"]) == 2
    assert capsys.readouterr().err.strip() == "gankit: error: --resume needs --out naming the run folder to continue"


def test_console_entry_point_exits_2_without_traceback():
    result = subprocess.run([sys.executable, "-m", "gankit", "train", "nope"], capture_output=True, text=True)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gankit: error: unknown preset 'nope' (known: ")
    assert "seed-gan-mnist" in lines[0] and "seed-dcgan-cifar10" in lines[0]

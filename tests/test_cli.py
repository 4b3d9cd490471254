"""The command line itself; the table of bad inputs is in test_bad_inputs.py."""

import subprocess
import sys

import pytest

from gankit.cli import main


def test_presets_lists_the_seed_presets(capsys):
    assert main(["presets"]) == 0
    out = capsys.readouterr().out
    assert "report-gan-mnist" in out and "report-dcgan-cifar10" in out and "gan-mnist-tanh" in out


def test_resume_needs_a_run_folder(capsys):
    assert main(["train", "--resume"]) == 2
    assert capsys.readouterr().err.strip() == "gankit: error: --resume needs --out naming the run folder to continue"


@pytest.mark.slow  # a subprocess
def test_console_entry_point_exits_2_without_traceback():
    result = subprocess.run([sys.executable, "-m", "gankit", "train", "nope"], capture_output=True, text=True)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gankit: error: unknown preset 'nope' (known: ")
    assert "report-gan-mnist" in lines[0] and "report-dcgan-cifar10" in lines[0]


@pytest.mark.slow  # a subprocess
def test_a_reader_that_goes_away_ends_the_command_quietly():
    proc = subprocess.Popen([sys.executable, "-m", "gankit", "presets"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # as `gankit presets | head -1` does once it has its line
    err = proc.stderr.read()
    assert proc.wait() == 141 and err == b""  # 128 + SIGPIPE, and no "internal error"


def test_an_unexpected_failure_is_one_line_with_the_traceback_saved(monkeypatch, capsys):
    import gankit.cli.commands

    def broken(args):
        raise ZeroDivisionError("a bug\nwith a second line")

    monkeypatch.setattr(gankit.cli.commands, "cmd_presets", broken)
    assert main(["presets"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("gankit: internal error: ZeroDivisionError: a bug (the traceback is in ")
    saved = err[0].split("the traceback is in ")[1].split(";")[0]
    with open(saved) as f:
        assert "Traceback" in f.read() and "broken" in open(saved).read()


def test_a_broken_pipe_other_than_stdout_is_an_internal_error(monkeypatch, capsys):
    import gankit.cli.commands

    def worker_gone(args):
        raise BrokenPipeError("a pipe to a worker")

    monkeypatch.setattr(gankit.cli.commands, "cmd_presets", worker_gone)
    assert main(["presets"]) == 1  # stdout is still being read: not the quiet 141 of `gankit presets | head -1`
    assert capsys.readouterr().err.startswith("gankit: internal error: BrokenPipeError: a pipe to a worker")

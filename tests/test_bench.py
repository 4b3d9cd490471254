"""Every benchmark script still starts: each is run with --help in this process (its imports, its options), so a
refactor that breaks one shows here rather than in the next study."""

import runpy
import sys
from pathlib import Path

import pytest
import torch

from gankit.data import unlabelled

BENCH = Path(__file__).resolve().parents[1] / "bench"


@pytest.mark.parametrize("script", sorted(p.name for p in BENCH.glob("*.py")))
def test_each_bench_script_imports_and_prints_its_help(script, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", [script, "--help"])
    monkeypatch.syspath_prepend(str(BENCH))  # the scripts import their neighbours
    with pytest.raises(SystemExit) as done:
        runpy.run_path(str(BENCH / script), run_name="__main__")
    out = capsys.readouterr().out
    assert done.value.code == 0 and out.startswith("usage:") and "--help" in out


def test_the_scripts_that_build_a_step_themselves_still_train(mnist_dir, monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))
    speedups = runpy.run_path(str(BENCH / "speedups.py"))
    step = speedups["make_step"]("fp32", "dropout")
    real = torch.rand(128, 1, 28, 28)
    stats = step(real, unlabelled(real))
    assert {"d_loss", "g_loss"} <= set(stats)
    throughput = runpy.run_path(str(BENCH / "train_throughput.py"))
    assert throughput["gankit_loop"]("report-gan-mnist", mnist_dir.parent, 4, "fp32") > 0


def test_quality_per_minute_checkpoints_on_every_budget(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))
    quality = runpy.run_path(str(BENCH / "quality_per_minute.py"))
    assert quality["checkpoint_every"]([2, 5, 10]) == "1min"
    assert quality["checkpoint_every"]([2.5, 10]) == "2.5min"
    assert quality["checkpoint_every"]([0.5]) == "0.5min"

"""gankit.heap: with freed memory kept for reuse, the training step's re-allocations stop costing page faults."""

import subprocess
import sys

import pytest

from gankit.heap import _libc

# a few seed-GAN steps in a fresh process; print the page faults per step after warming up
PROGRAM = """
import resource, sys, torch
from gankit.config import load_preset
from gankit.heap import reuse_freed_memory
from gankit.train.state import new_state
from gankit.train.step import GANStep
if sys.argv[1] == "reuse":
    assert reuse_freed_memory()
config = load_preset("seed-gan-mnist")
state = new_state(config, torch.device("cpu"))
step = GANStep(state.G, state.D, state.opt_g, state.opt_d, config.train, torch.device("cpu"))
real = torch.rand(128, 1, 28, 28)
for _ in range(20):
    step(real)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    step(real)
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 20)
"""


@pytest.mark.skipif(_libc() is None, reason="no glibc malloc here")
def test_reused_memory_needs_no_fresh_pages():
    faults = {mode: float(subprocess.run([sys.executable, "-c", PROGRAM, mode], check=True, capture_output=True,
                                         text=True).stdout) for mode in ("default", "reuse")}
    assert faults["default"] > 50, faults  # glibc's defaults: the kernel maps and zeroes fresh pages every step
    assert faults["reuse"] < faults["default"] / 3, faults

"""`gankit train ARGS` under torchrun, for tests/test_distributed.py, with two test-only instruments:

- GANKIT_TEST_WRITES=FILE: every rank records the files it creates, changes or removes under the current
  directory (Python's audit events) and writes the list to FILE.RANK when it exits;
- GANKIT_TEST_CHECKSUMS=FILE: every rank writes the sum of G's and D's weights after each step to FILE.RANK;
- GANKIT_TEST_KILL_AT_STEP=N: in torchrun's first attempt, rank 1 kills itself (SIGKILL) at its Nth step.
"""

from __future__ import annotations

import atexit
import json
import os
import signal
import sys
from pathlib import Path

rank = int(os.environ["RANK"])
WRITING = ("w", "a", "x", "+")

if os.environ.get("GANKIT_TEST_WRITES"):
    here, writes = Path.cwd().resolve(), []

    def record(event: str, args: tuple) -> None:
        if event == "open" and isinstance(args[0], (str, Path)):
            mode, flags = args[1] or "r", args[2] or 0
            if not (any(m in str(mode) for m in WRITING) or flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT)):
                return
        elif event not in ("os.rename", "os.remove", "os.mkdir", "os.rmdir", "shutil.rmtree"):
            return
        path = args[0]
        if isinstance(path, (str, Path)) and Path(path).resolve().is_relative_to(here):
            writes.append(f"{event} {path}")

    sys.addaudithook(record)
    atexit.register(lambda: Path(f"{os.environ['GANKIT_TEST_WRITES']}.{rank}").write_text(json.dumps(writes)))

if os.environ.get("GANKIT_TEST_CHECKSUMS"):
    from gankit.training import step as step_module

    sums: list[float] = []
    plain_call = step_module.GANStep.__call__

    def call_and_sum(self: step_module.GANStep, *args: object, **kwargs: object) -> dict:
        stats = plain_call(self, *args, **kwargs)
        sums.append(sum(float(p.double().sum()) for net in (self.G, self.D) for p in net.parameters()))
        return stats

    step_module.GANStep.__call__ = call_and_sum
    atexit.register(lambda: Path(f"{os.environ['GANKIT_TEST_CHECKSUMS']}.{rank}").write_text(json.dumps(sums)))

if os.environ.get("GANKIT_TEST_KILL_AT_STEP") and rank == 1 and os.environ.get("TORCHELASTIC_RESTART_COUNT") == "0":
    from gankit.training import step

    kill_at, calls = int(os.environ["GANKIT_TEST_KILL_AT_STEP"]), [0]
    original = step.GANStep.__call__

    def call_then_die(self: step.GANStep, *args: object, **kwargs: object) -> dict:
        calls[0] += 1
        if calls[0] == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        return original(self, *args, **kwargs)

    step.GANStep.__call__ = call_then_die

from gankit.cli import main  # noqa: E402

sys.exit(main(["train", *sys.argv[1:]]))

"""How fast `gankit serve` answers: a grid of 64 samples over HTTP, against the same work in-process.

Starts the page's server for RUN on a free port (in a thread of this process), then times
--requests requests for /api/samples?n=64 (a new seed each), each a fresh HTTP connection, and the
same calls made directly (Playground.samples: sampling and PNG encoding, no HTTP). Prints the
medians, the HTTP overhead as a ratio, and the target (< 100 ms on the CPU for the seed GAN).

    python bench/serve_latency.py runs/report-gan-mnist-run --requests 50
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import torch

from gankit.run import load_run
from gankit.serve import make_server
from gankit.serve.playground import Playground

TARGET_MS = 100.0


def timed(call: Callable[[int], object], repeats: int) -> list[float]:
    """Milliseconds of each of `repeats` calls call(0), call(1), ..."""
    times = []
    for i in range(repeats):
        start = time.perf_counter()
        call(i)
        times.append(1000 * (time.perf_counter() - start))
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--n", type=int, default=64)
    args = parser.parse_args()

    server, sock = make_server(args.run, port=0)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}/api/samples?n={args.n}&seed="
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise SystemExit("error: the server did not start")
        time.sleep(0.01)

    def over_http(i: int) -> None:
        with urllib.request.urlopen(url + str(i)) as response:
            assert response.status == 200 and response.read(8) == b"\x89PNG\r\n\x1a\n"

    playground = Playground(load_run(args.run))
    timed(over_http, 5)  # warm-up: first calls allocate
    timed(lambda i: playground.samples(i, args.n), 5)
    http = timed(over_http, args.requests)
    direct = timed(lambda i: playground.samples(i, args.n), args.requests)
    server.should_exit = True
    thread.join()

    run = load_run(args.run)
    print(
        f"{run.config.name} ({args.run}), {args.n} samples per request, {args.requests} requests, "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads"
    )
    print(f"over HTTP: median {statistics.median(http):.1f} ms (min {min(http):.1f}, max {max(http):.1f})")
    print(f"in-process (sampling + PNG): median {statistics.median(direct):.1f} ms")
    print(
        f"HTTP / in-process: {statistics.median(http) / statistics.median(direct):.2f}x; "
        f"target < {TARGET_MS:.0f} ms: {'met' if statistics.median(http) < TARGET_MS else 'not met'}"
    )


if __name__ == "__main__":
    main()

"""`gankit serve`: a local page to play with a trained generator (the optional extra `gankit[serve]`).

`make_server` loads the run once and binds the socket; `serve` runs it until Ctrl-C.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from pathlib import Path
from typing import TYPE_CHECKING

from gankit.errors import GankitError

if TYPE_CHECKING:
    import uvicorn

log = logging.getLogger("gankit")

MAX_REQUESTS = 32  # requests worked on at once; beyond this the server answers 503 at once rather than queueing work
MAX_CONNECTIONS = 512  # open connections, idle ones included; beyond this every request gets 503
HEAD_TIMEOUT = 10.0  # seconds a connection has to send a whole request head after opening or after its last answer


def make_server(
    run_path: Path | str,
    *,
    checkpoint: Path | str | None = None,
    host: str = "127.0.0.1",
    port: int = 7860,
    raw: bool = False,
) -> tuple[uvicorn.Server, socket.socket]:
    """The page's server for the run at `run_path` and its bound socket (port 0: a free one)."""
    try:
        import uvicorn

        from gankit.serve.app import create_app
        from gankit.serve.protocol import RequestHeadDeadline
    except ImportError:
        raise GankitError("gankit serve needs its extra: pip install 'gankit[serve]'") from None
    from gankit.run import load_run
    from gankit.serve.playground import Playground

    playground = Playground(load_run(run_path), checkpoint, raw=raw)
    sock = _bind(host, port)
    app = create_app(playground, allowed_hosts=_allowed_hosts(host), max_requests=MAX_REQUESTS)
    # idle and slow connections are closed after HEAD_TIMEOUT and count only against the larger MAX_CONNECTIONS: a
    # client must open connections faster than MAX_CONNECTIONS / HEAD_TIMEOUT a second to keep real requests out
    config = uvicorn.Config(
        app,
        log_level="warning",
        lifespan="off",
        access_log=False,
        limit_concurrency=MAX_CONNECTIONS,
        http=RequestHeadDeadline.with_timeout(HEAD_TIMEOUT),
    )
    return uvicorn.Server(config), sock


def serve(
    run_path: Path | str,
    *,
    checkpoint: Path | str | None = None,
    host: str = "127.0.0.1",
    port: int = 7860,
    raw: bool = False,
) -> None:
    """Serve the page until Ctrl-C; nothing is written anywhere."""
    server, sock = make_server(run_path, checkpoint=checkpoint, host=host, port=port, raw=raw)
    port = sock.getsockname()[1]
    if not _is_loopback(host):
        log.warning("listening on %s: anyone who can reach this machine on port %d can use the page", host, port)
    address = f"[{host}]" if ":" in host else host
    log.info("serving %s at http://%s:%d/ (Ctrl-C stops)", run_path, address, port)
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()


def _bind(host: str, port: int) -> socket.socket:
    if not 0 <= port <= 65535:
        raise GankitError(f"port must be from 0 to 65535, got {port}", option="port")
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)  # connections queue from here on, so the address is good as soon as it is logged
    except OSError as exc:
        sock.close()
        raise GankitError(f"cannot listen on {host} port {port}: {exc.strerror or exc}", option="port") from None
    return sock


def _allowed_hosts(host: str) -> list[str]:
    """The names a request may give in its Host header: this machine's, and the address listened on; any
    name when listening on every interface (the user chose to be reachable by whatever name finds them)."""
    if host in ("0.0.0.0", "::", ""):
        return ["*"]
    return sorted({"localhost", "127.0.0.1", "[::1]", f"[{host}]" if ":" in host else host})


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False

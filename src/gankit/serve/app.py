"""The serve page's web side: a small ASGI app (Starlette) with one static page and four JSON/PNG routes.

    GET /                      the page
    GET /api/info              the run's name, epoch, classes, latest scores and the request limits
    GET /api/samples           ?seed=S&n=N[&class=K]: a PNG grid
    GET /api/walk              ?from=A&to=B&steps=T[&class=K]: {"frames": [PNG data URIs]}
    GET /api/generator.onnx    the generator as ONNX

A bad request gets status 400 and {"error": "one line"}, a failure 500 and its one line (the
traceback goes to the server's log only), a request beyond the number worked on at once 503. Requests must name this machine (Host header) unless
the server listens beyond it, so a web page elsewhere cannot reach it through DNS rebinding.
"""

from __future__ import annotations

import base64
import logging
import re
from collections.abc import Callable
from importlib import resources

from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from gankit.errors import GankitError
from gankit.serve.playground import Playground

log = logging.getLogger("gankit")


def create_app(playground: Playground, allowed_hosts: list[str], max_requests: int) -> Starlette:
    page = (resources.files("gankit.serve") / "page.html").read_text()

    def index(request: Request) -> Response:
        return HTMLResponse(page)

    def info(request: Request) -> Response:
        return JSONResponse(playground.info())

    def samples(request: Request) -> Response:
        q = request.query_params
        return Response(
            playground.samples(q.get("seed", "0"), q.get("n", "64"), q.get("class")), media_type="image/png"
        )

    def walk(request: Request) -> Response:
        q = request.query_params
        frames = playground.walk(q.get("from", "0"), q.get("to", "1"), q.get("steps", "16"), q.get("class"))
        return JSONResponse({"frames": [f"data:image/png;base64,{base64.b64encode(f).decode()}" for f in frames]})

    def onnx(request: Request) -> Response:
        name = re.sub(r"[^A-Za-z0-9._-]", "_", f"{playground.run.path.name}-{playground.G.checkpoint.stem}.onnx")
        return Response(
            playground.onnx(),
            media_type="application/octet-stream",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )

    routes = [
        Route("/", index),
        *(
            Route(f"/api/{path}", _answer(handler))
            for path, handler in (("info", info), ("samples", samples), ("walk", walk), ("generator.onnx", onnx))
        ),
    ]
    return Starlette(
        routes=routes,
        middleware=[Middleware(RequestLimit, limit=max_requests), Middleware(HostCheck, allowed_hosts=allowed_hosts)],
    )


class RequestLimit:
    """Answers 503 and one JSON line at once while `limit` requests are being worked on, rather than queueing work."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit, self.active = app, limit, 0  # one event loop: no lock needed around the count

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.active >= self.limit:
            busy = JSONResponse(
                {"error": f"busy: {self.limit} requests are being answered; try again"}, status_code=503
            )
            await busy(scope, receive, send)
            return
        self.active += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.active -= 1


class HostCheck:
    """Answers a request whose Host header names none of `allowed_hosts` ("*": any) with a 400 and one JSON line."""

    def __init__(self, app: ASGIApp, allowed_hosts: list[str]):
        self.app, self.allowed = app, set(allowed_hosts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and "*" not in self.allowed:
            host = Headers(scope=scope).get("host", "")
            name = host.split("]")[0] + "]" if host.startswith("[") else host.split(":")[0]  # without the port
            if name not in self.allowed:
                refusal = JSONResponse(
                    {"error": f"this page answers to {', '.join(sorted(self.allowed))}, not to the host {name[:80]!r}"},
                    status_code=400,
                )
                await refusal(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _answer(handler: Callable[[Request], Response]) -> Callable[[Request], Response]:
    """A user error as a 400 with its one line, anything else as a 500 with one line: never a stack trace."""

    def endpoint(request: Request) -> Response:
        try:
            return handler(request)
        except GankitError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        except Exception as exc:  # noqa: BLE001 - a bug or an unforeseen failure: one line out, the details in the log
            log.exception("gankit serve: %s failed", request.url.path)
            return JSONResponse(
                {"error": f"internal error: {type(exc).__name__} (details in the server's log)"}, status_code=500
            )

    return endpoint

"""uvicorn's HTTP/1.1 protocol with a deadline for each request's head, against clients that hold connections idle."""

from __future__ import annotations

import asyncio

from uvicorn.protocols.http.h11_impl import H11Protocol


class RequestHeadDeadline(H11Protocol):
    """Closes a connection that has not sent a whole request line and headers `timeout` seconds after it opened or
    after its last answer. uvicorn's keep-alive timeout starts only after an answer and restarts on every byte, so
    without this a client that connects and sends nothing, or a byte now and then, holds its connection for ever."""

    timeout = 10.0

    @classmethod
    def with_timeout(cls, seconds: float) -> type[RequestHeadDeadline]:
        return type(cls.__name__, (cls,), {"timeout": seconds})

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._deadline: asyncio.TimerHandle | None = None
        self._arm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        super().connection_lost(exc)

    def _arm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        self._deadline = self.loop.call_later(self.timeout, self._expire)

    def _expire(self) -> None:
        waiting_for_a_request = self.cycle is None or self.cycle.response_complete
        if waiting_for_a_request and not self.transport.is_closing():
            self.transport.close()

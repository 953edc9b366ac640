"""uvicorn's httptools protocol, with what a public server needs against slow and oversized requests.

- **Read timeout.** From a request's first byte, its headers and body must arrive within
  `body_timeout_seconds`, else the client gets a 408 and the connection closes. The timer is armed
  only when a request is still incomplete after the data at hand was parsed, so a request that
  arrives in one piece (nearly every /predict) costs no timer.
- **Silence.** A connection that sends nothing is closed after the keep-alive timeout, as an idle
  keep-alive one is (uvicorn times out only connections that have been answered), so silent
  connections cannot hold the connection cap.
- **Header size.** A request whose headers pass MAX_HEADER_BYTES gets a 431 and its connection
  closes, before the rest is read: a header is otherwise held whole, however large.
- **Lingering close.** When the answer closes the connection while the request is still arriving
  (a 413 refuses a body before it is read), closing at once would make the kernel reset the
  connection, and a client that writes its whole body before it reads (Python's urllib...) would
  see the reset instead of the 413. So, as nginx does, the write side is shut after the answer,
  and what the client still sends is read and thrown away, for at most LINGER_SECONDS in all,
  LINGER_IDLE_SECONDS without data, or LINGER_MAX_BYTES, before the connection closes.
- **Not HTTP.** A request the parser refuses (no request line, a Content-Length that is not a
  number...) gets a JSON 400 like every other error, not uvicorn's plain text, and its
  connection closes after a lingering read.
- **Shutdown.** A request still arriving when the server shuts down gets a 503 and its connection
  closes at once: a drain waits for requests that are being served, never for a body that may
  never come (`serving` tells them apart).
- **Overload.** A connection opened while `max_connections` others are open has its requests
  answered by `at_capacity` (set by `guarded_protocol`: a counted 503 that names the setting, and
  the connection closes). The ones opened before it are still served: uvicorn's own
  `limit_concurrency` would refuse every request on every connection while too many are open, so
  a few idle keep-alive connections past the cap would turn all clients away.

The application learns that its request was cut (its `receive` says disconnect) from the status
stored under CUT_STATUS in its scope, so that metrics and the access log count a 408 or a 503.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from uvicorn._types import ASGI3Application
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol, RequestResponseCycle

from ml_inference.errors import error_body
from ml_inference.middleware import CUT_STATUS, REQUEST_ID

#: A request's headers, all of them: nginx allows 4 x 8 KiB, Node.js 16 KiB; cookies fit well.
MAX_HEADER_BYTES = 64 * 1024
LINGER_SECONDS = 5.0
LINGER_IDLE_SECONDS = 1.0
LINGER_MAX_BYTES = 32 * 1024 * 1024
SHUTTING_DOWN = "The server shut down before the request arrived whole; send it again."
NOT_HTTP = "The request is not valid HTTP/1.1: its request line, headers or framing could not be parsed."


class GuardedHttpProtocol(HttpToolsProtocol):
    """One connection. `read_timeout`, `max_connections` and `at_capacity` are set by `guarded_protocol`."""

    read_timeout: float = 10.0
    max_connections: int | None = None
    at_capacity: ASGI3Application

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: Between a request's first byte and its last: more of it is still to be read.
        self.in_request = False
        #: Bytes received while the current request's headers are not complete yet.
        self._header_bytes = 0
        self._read_timer: asyncio.TimerHandle | None = None
        self._socket: asyncio.Transport | None = None
        self._lingering = False
        self._linger_bytes = 0
        self._linger_started = self._last_data = 0.0
        self._linger_timer: asyncio.TimerHandle | None = None
        #: Until the first byte arrives: a connection that sends nothing is closed like an idle one.
        self._silence_timer: asyncio.TimerHandle | None = None
        #: Opened while `max_connections` others were open: every request on it gets `at_capacity`.
        self.beyond_cap = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)  # adds this connection to self.connections
        self.beyond_cap = self.max_connections is not None and len(self.connections) > self.max_connections
        self._socket = transport
        # Every close, the request cycles' included, goes through close_connection.
        self.transport = _LingeringTransport(self, transport)  # type: ignore[assignment]
        self._silence_timer = self.loop.call_later(self.timeout_keep_alive, self._close_now)

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timers()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._silence_timer is not None:
            self._silence_timer.cancel()
            self._silence_timer = None
        if self._lingering:
            self._discard(data)
            return
        super().data_received(data)
        if self._lingering:  # refused as not HTTP (send_400_response)
            return
        # A request completes only here, so this test keeps `in_request` exact. No parser callback
        # is overridden: each would cost every request a Python call.
        cycle = self.cycle
        if cycle is not None and cycle.scope is self.scope and not cycle.more_body:
            if self.in_request:
                self.in_request = False
                self._header_bytes = 0
                if self._read_timer is not None:
                    self._read_timer.cancel()
                    self._read_timer = None
        else:  # headers (self.scope is a newer request's) or body still to come
            self.in_request = True
            if cycle is None or cycle.scope is not self.scope:  # the headers are not complete
                self._header_bytes += len(data)
                if self._header_bytes > MAX_HEADER_BYTES and not self._lingering:
                    message = f"The request's headers are larger than {MAX_HEADER_BYTES} bytes."
                    self._cut(431, message, linger=True)
                    return
            else:
                self._header_bytes = 0
            if self._read_timer is None and not self.transport.is_closing():
                self._read_timer = self.loop.call_later(self.read_timeout, self._read_timed_out)

    def send_400_response(self, msg: str) -> None:
        cycle = self.cycle
        if cycle is not None and cycle.scope is self.scope and cycle.response_started:
            self.transport.close()  # the application is answering this request: no second answer
            return
        self._cut(400, NOT_HTTP, linger=True)

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: ASGI3Application) -> None:
        if self.beyond_cap:
            app = self.at_capacity
        super()._start_asgi_task(cycle, app)

    @property
    def serving(self) -> bool:
        """A whole request is being answered (as opposed to idle, or a request still arriving)."""
        cycle = self.cycle
        return cycle is not None and not cycle.more_body and not cycle.response_complete

    def shutdown(self) -> None:
        if self._lingering:
            self._close_now()
        elif self.in_request and not self.serving:
            self._cut(503, SHUTTING_DOWN, linger=False)
        else:
            super().shutdown()

    def close_connection(self) -> None:
        """Close; but linger first if the request is still arriving, so the client reads the answer."""
        if self.in_request and not self._lingering and not self._socket.is_closing():  # type: ignore[union-attr]
            self._linger()
        else:
            self._close_now()

    def _read_timed_out(self) -> None:
        self._read_timer = None
        if self.in_request and not self._lingering and not self.transport.is_closing():
            message = (
                f"The request did not arrive whole within {self.read_timeout:g} s "
                "(ML_INFERENCE_BODY_TIMEOUT_SECONDS)."
            )
            self._cut(408, message, linger=True)

    def _cut(self, status: int, message: str, *, linger: bool) -> None:
        """Answer `status` in place of the application, for a request that has not arrived whole."""
        cycle = self.cycle
        # uvicorn's own: Date (and Server, were it on), as on every other answer.
        headers = [*self.server_state.default_headers]
        if cycle is not None and cycle.scope is self.scope:
            # The application already has this request and waits for its body.
            if cycle.response_started:
                return  # it has answered (a 413, say), and its close lingers
            cycle.scope[CUT_STATUS] = status  # type: ignore[literal-required]
            cycle.disconnected = True
            cycle.message_event.set()
            if REQUEST_ID in cycle.scope:
                headers.append((b"x-request-id", cycle.scope[REQUEST_ID]))  # type: ignore[literal-required]
        body = error_body(message, None)
        self._socket.write(  # type: ignore[union-attr]
            STATUS_LINE[status]
            + b"".join(name + b": " + value + b"\r\n" for name, value in headers)
            + b"content-type: application/json\r\nconnection: close\r\n"
            + b"content-length: %d\r\n\r\n" % len(body)
            + body
        )
        if linger:
            self._linger()
        else:
            self._close_now()

    def _linger(self) -> None:
        socket_transport = self._socket
        assert socket_transport is not None
        self._lingering = True
        if self._read_timer is not None:
            self._read_timer.cancel()
            self._read_timer = None
        try:
            socket_transport.write_eof()  # the answer is flushed first, then FIN
        except (NotImplementedError, OSError, RuntimeError):
            self._close_now()
            return
        self.flow.resume_reading()
        self._linger_started = self._last_data = time.monotonic()
        self._linger_timer = self.loop.call_later(LINGER_IDLE_SECONDS, self._linger_check)

    def _discard(self, data: bytes) -> None:
        self._linger_bytes += len(data)
        self._last_data = time.monotonic()
        if self._linger_bytes > LINGER_MAX_BYTES:
            self._close_now()

    def _linger_check(self) -> None:
        now = time.monotonic()
        ends = min(self._linger_started + LINGER_SECONDS, self._last_data + LINGER_IDLE_SECONDS)
        if now >= ends:
            self._close_now()
        else:
            self._linger_timer = self.loop.call_later(ends - now, self._linger_check)

    def _close_now(self) -> None:
        self._cancel_timers()
        self._socket.close()  # type: ignore[union-attr]

    def _cancel_timers(self) -> None:
        for timer in (self._read_timer, self._linger_timer, self._silence_timer):
            if timer is not None:
                timer.cancel()
        self._read_timer = self._linger_timer = self._silence_timer = None


class _LingeringTransport:
    """The connection's transport as uvicorn's code sees it; only `close` differs.

    The other methods are the transport's own bound methods, so writes cost nothing extra.
    """

    def __init__(self, protocol: GuardedHttpProtocol, transport: asyncio.Transport) -> None:
        self.write = transport.write
        self.is_closing = transport.is_closing
        self.get_extra_info = transport.get_extra_info
        self.set_protocol = transport.set_protocol
        self.close = protocol.close_connection


def guarded_protocol(
    read_timeout: float, max_connections: int, at_capacity: ASGI3Application
) -> type[GuardedHttpProtocol]:
    """The protocol class for uvicorn.Config(http=...), with this read timeout, cap and overload answer."""
    # Static, so that a plain function is not bound to the connection when looked up on it.
    fields = {
        "read_timeout": read_timeout,
        "max_connections": max_connections,
        "at_capacity": staticmethod(at_capacity),
    }
    return type("GuardedHttpProtocol", (GuardedHttpProtocol,), fields)

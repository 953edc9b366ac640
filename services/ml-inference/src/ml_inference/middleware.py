"""What every request gets, whichever path serves it: an id, a size limit, metrics, a log line.

`RequestRecorder` holds the per-request bookkeeping that the hot path (fast_path.py) and the
`RequestObserver` middleware (every other request, through FastAPI) share. Pure ASGI (no
BaseHTTPMiddleware) because it runs on every request of a ~100 µs service. The body limit is
enforced twice: from Content-Length before anything is read, and while chunks arrive, so an
oversized body is refused with 413 without ever being held in memory whole.
"""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Sequence
from time import perf_counter
from typing import Any

from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ml_inference.errors import error_body
from ml_inference.logs import AccessLog
from ml_inference.metrics import Metrics
from ml_inference.state import ServiceState

REQUEST_ID_HEADER = b"x-request-id"
_VALID_REQUEST_ID = re.compile(rb"[A-Za-z0-9._:\-]{1,128}")
UNMATCHED_ROUTE = "unmatched"
#: The rest of a refused body is never read, so its connection cannot carry another request.
CONNECTION_CLOSE = (b"connection", b"close")
#: Scope key: the status the server answered in the application's place when it cut a request that
#: was still arriving (408 read timeout, 503 shutdown; see protocol.py). Recorded instead of 499.
CUT_STATUS = "ml_inference.cut_status"
#: Scope key: the request's id (bytes) as answered, for an answer the server writes itself (a 408).
REQUEST_ID = "ml_inference.request_id"


class BodyTooLarge(Exception):
    pass


class RequestRecorder:
    def __init__(self, *, service: ServiceState, metrics: Metrics, max_body_bytes: int) -> None:
        self.service = service
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes
        self.too_large_body = error_body(
            f"The request body is larger than {max_body_bytes} bytes (ML_INFERENCE_MAX_BODY_BYTES).", "$"
        )
        self.access_log = AccessLog(dropped=metrics.access_log_dropped)
        # Children of labelled metrics, looked up once: `.labels()` costs more than the increment.
        self._durations: dict[str, Any] = {}
        self._counts: dict[tuple[str, str, int], Any] = {}
        # Made ids are unique and cheap: a random prefix per process start, then a counter.
        self._id_prefix = os.urandom(6).hex()
        self._id_counter = itertools.count(1)

    def request_id(self, supplied: bytes | None) -> bytes:
        """The client's X-Request-ID when it is sane, else a new one."""
        if supplied is not None and _VALID_REQUEST_ID.fullmatch(supplied):
            return supplied
        return f"{self._id_prefix}-{next(self._id_counter)}".encode()

    def record(self, scope: Scope, route: str, status: int, duration: float, request_id: bytes) -> None:
        method = scope["method"]
        histogram = self._durations.get(route)
        if histogram is None:
            histogram = self._durations[route] = self.metrics.request_duration.labels(route)
        histogram.observe(duration)
        counter = self._counts.get((route, method, status))
        if counter is None:
            counter = self._counts[route, method, status] = self.metrics.requests.labels(
                route, method, str(status)
            )
        counter.inc()
        if self.access_log.enabled:
            self.access_log.record(
                request_id, method, scope["path"], route, status, duration, scope.get("client")
            )


class RequestObserver:
    """The recorder around FastAPI's own handling of a request (every path but the hot ones)."""

    def __init__(self, app: ASGIApp, *, recorder: RequestRecorder, routes: Sequence[BaseRoute]) -> None:
        self.app = app
        self.recorder = recorder
        #: The API's routes, to name the route of a request answered before routing.
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = perf_counter()
        recorder, service = self.recorder, self.recorder.service
        supplied_id, content_length = _read_headers(scope["headers"])
        request_id = scope[REQUEST_ID] = recorder.request_id(supplied_id)
        scope.setdefault("state", {})["request_id"] = request_id.decode()
        status = 500
        response_started = False
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > recorder.max_body_bytes:
                raise BodyTooLarge
            return message

        async def observed_send(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status = message["status"]
                response_started = True
                headers = [*message.get("headers", ()), (REQUEST_ID_HEADER, request_id)]
                if service.draining:
                    # Keep-alive clients reconnect, and so move to a replica that is not leaving.
                    headers.append(CONNECTION_CLOSE)
                message = {**message, "headers": headers}
            await send(message)

        # HEAD is routed as GET (FastAPI's routes list GET only); uvicorn, which still sees HEAD,
        # sends the headers without the body.
        routed = {**scope, "method": "GET"} if scope["method"] == "HEAD" else scope
        service.in_flight += 1
        try:
            if content_length is not None and content_length > recorder.max_body_bytes:
                await self._refuse_body(observed_send)
            else:
                await self.app(routed, limited_receive, observed_send)
        except BodyTooLarge:
            if response_started:
                raise
            await self._refuse_body(observed_send)
        finally:
            service.in_flight -= 1
            status = scope.get(CUT_STATUS, status)
            route = getattr(routed.get("route"), "path", None) or self._route_template(routed)
            recorder.record(scope, route, status, perf_counter() - started, request_id)

    def _route_template(self, scope: Scope) -> str:
        """The route of a request answered before routing (a body too large by its Content-Length)."""
        match = next((route for route in self.routes if route.matches(scope)[0] is Match.FULL), None)
        return getattr(match, "path", UNMATCHED_ROUTE)

    async def _refuse_body(self, send: Send) -> None:
        body = self.recorder.too_large_body
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    CONNECTION_CLOSE,
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


#: Kubernetes' probes: answered even at the connection cap, so a busy replica is neither restarted
#: nor taken out of the Service for being busy.
PROBE_PATHS = frozenset({"/health", "/ready", "/v2/health/live", "/v2/health/ready"})


def at_capacity(
    app: ASGIApp, *, recorder: RequestRecorder, routes: Sequence[BaseRoute], max_connections: int
) -> ASGIApp:
    """The answer to a request beyond `max_connections`, which uvicorn refuses before the application.

    A probe goes on to `app`; any other request gets a 503 through a RequestObserver, so that it is
    counted and logged like any other answer.
    """
    body = error_body(
        f"The server is serving its limit of {max_connections} open connections "
        "(ML_INFERENCE_MAX_CONNECTIONS); send the request again shortly.",
        None,
    )
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"retry-after", b"1"),
        CONNECTION_CLOSE,
    ]

    async def refuse(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 503, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    refusal = RequestObserver(refuse, recorder=recorder, routes=routes)

    async def answer(scope: Scope, receive: Receive, send: Send) -> None:
        await (app if scope["path"] in PROBE_PATHS else refusal)(scope, receive, send)

    return answer


def _read_headers(headers: list[tuple[bytes, bytes]]) -> tuple[bytes | None, int | None]:
    """(X-Request-ID as sent or None; Content-Length or None)."""
    request_id = None
    content_length = None
    for name, value in headers:
        if name == REQUEST_ID_HEADER:
            request_id = value
        elif name == b"content-length" and value.isdigit():
            content_length = int(value)
    return request_id, content_length

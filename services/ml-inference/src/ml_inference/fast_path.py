"""The hot routes (POST /predict, /predict/batch) answered by one ASGI callable in front of FastAPI.

Through FastAPI, a request passes Starlette's middleware stack, a Request and a Response object
and a wrapper around receive and send per layer: more than the model and the JSON work
themselves. Here a hot request is read, checked, answered, counted and logged in one function.
Every other request, including any other method on these paths, goes to FastAPI unchanged; the
same handlers stay registered there, so /openapi.json and /docs document them.

The checks are the very functions the FastAPI handlers use (guards.py, payloads.py), in the same
order: body size from Content-Length, readiness, content type, body size while it is read, then
the body itself. The in-process handler tests and the bad-input table run through this path.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from time import perf_counter
from typing import Any

import msgspec
from fastapi import FastAPI
from starlette.types import Receive, Scope, Send

from ml_inference.errors import CLIENT_CLOSED, INTERNAL_ERROR, error_body
from ml_inference.guards import ready_predictor, require_json
from ml_inference.middleware import (
    CONNECTION_CLOSE,
    CUT_STATUS,
    REQUEST_ID,
    REQUEST_ID_HEADER,
    BodyTooLarge,
    RequestRecorder,
)
from ml_inference.payloads import ApiError
from ml_inference.routers.predict import Answer

logger = logging.getLogger(__name__)
JSON_CONTENT_TYPE = (b"content-type", b"application/json")
_INTERNAL_ERROR_BODY = error_body(INTERNAL_ERROR, None)


class ClientDisconnected(Exception):
    pass


class ServiceApp(FastAPI):
    """FastAPI, with the hot routes served by `hot_path` before Starlette's stack is entered."""

    hot_path: HotPath | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        hot = self.hot_path
        if hot is not None and scope["type"] == "http" and scope["method"] == "POST":
            answer = hot.routes.get(scope["path"])
            if answer is not None:
                await hot.serve(scope["path"], answer, scope, receive, send)
                return
        await super().__call__(scope, receive, send)


class HotPath:
    def __init__(self, routes: dict[str, Answer], *, recorder: RequestRecorder, max_batch: int) -> None:
        self.routes = routes
        self.recorder = recorder
        self.max_batch = max_batch

    async def serve(self, route: str, answer: Answer, scope: Scope, receive: Receive, send: Send) -> None:
        started = perf_counter()
        recorder, service = self.recorder, self.recorder.service
        supplied_id = content_length = None
        declared = encoding = b""
        for name, value in scope["headers"]:
            if name == b"content-type":
                declared = declared or value  # the first, as FastAPI's handlers read it
            elif name == b"content-length":
                content_length = value
            elif name == REQUEST_ID_HEADER:
                supplied_id = value
            elif name == b"content-encoding":
                encoding = encoding or value
        request_id = scope[REQUEST_ID] = recorder.request_id(supplied_id)
        status = CLIENT_CLOSED
        service.in_flight += 1
        try:
            status, body, extra_headers = await self._respond(
                answer, receive, content_length, (declared, encoding), request_id
            )
            headers = [
                JSON_CONTENT_TYPE,
                (b"content-length", b"%d" % len(body)),
                (REQUEST_ID_HEADER, request_id),
                *extra_headers,
            ]
            if service.draining and CONNECTION_CLOSE not in extra_headers:
                # Keep-alive clients reconnect, and so move to a replica that is not leaving.
                headers.append(CONNECTION_CLOSE)
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": body})
        except ClientDisconnected:
            status = scope.get(CUT_STATUS, CLIENT_CLOSED)
        finally:
            service.in_flight -= 1
            recorder.record(scope, route, status, perf_counter() - started, request_id)

    async def _respond(
        self,
        answer: Answer,
        receive: Receive,
        content_length: bytes | None,
        body_headers: tuple[bytes, bytes],
        request_id: bytes,
    ) -> tuple[int, bytes, Sequence[tuple[bytes, bytes]]]:
        """(status, body, headers beyond the usual three) for one hot request."""
        limit = self.recorder.max_body_bytes
        try:
            if content_length is not None and content_length.isdigit() and int(content_length) > limit:
                raise BodyTooLarge
            predictor = ready_predictor(self.recorder.service)
            require_json(*body_headers)
            content = answer(predictor, await _read_body(receive, limit), self.max_batch)
            return 200, msgspec.json.encode(content), ()
        except ApiError as error:
            headers = [(name.lower().encode(), value.encode()) for name, value in error.headers.items()]
            return error.status, error_body(error.message, error.field), headers
        except BodyTooLarge:
            return 413, self.recorder.too_large_body, (CONNECTION_CLOSE,)
        except ClientDisconnected:
            raise
        except Exception:  # as FastAPI's handler does: logged with the id, answered without a traceback
            logger.exception("unhandled error", extra={"request_id": request_id.decode()})
            return 500, _INTERNAL_ERROR_BODY, ()


async def _read_body(receive: Receive, limit: int) -> bytes:
    """The whole body, refused with BodyTooLarge as soon as it passes `limit` bytes."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message: dict[str, Any] = await receive()  # type: ignore[assignment]
        if message["type"] == "http.disconnect":
            raise ClientDisconnected
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        if not message.get("more_body", False):
            return chunk if not chunks else b"".join([*chunks, chunk])
        chunks.append(chunk)

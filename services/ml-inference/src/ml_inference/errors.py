"""Every error leaves as {"error": "<sentence>", "field": "<json path>"|null}, never a traceback."""

from __future__ import annotations

import logging
from collections.abc import Mapping

import msgspec
from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from ml_inference.payloads import ApiError

logger = logging.getLogger(__name__)
#: Recorded when the client went away before its body arrived (nginx's "client closed request").
CLIENT_CLOSED = 499
INTERNAL_ERROR = "Internal error; the request id in X-Request-ID finds it in the logs."


def error_body(message: str, field: str | None) -> bytes:
    return msgspec.json.encode({"error": message, "field": field})


def error_response(
    status: int, message: str, field: str | None, headers: Mapping[str, str] | None = None
) -> Response:
    return Response(
        error_body(message, field), status_code=status, media_type="application/json", headers=headers
    )


def install_error_handlers(app: FastAPI) -> None:
    # The decorator form: Starlette types add_exception_handler's handler as taking any Exception,
    # which a handler of one exception class is not.
    app.exception_handler(ApiError)(_input_error)
    app.exception_handler(RequestValidationError)(_validation_error)
    app.exception_handler(HTTPException)(_http_error)
    app.exception_handler(ClientDisconnect)(_client_gone)
    app.exception_handler(Exception)(_unexpected_error)


async def _input_error(request: Request, error: ApiError) -> Response:
    return error_response(error.status, error.message, error.field, headers=error.headers)


async def _validation_error(request: Request, error: RequestValidationError) -> Response:
    first = error.errors()[0]
    field = "$" + "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in first["loc"][1:])
    return error_response(422, f"{field} is invalid: {first['msg']}.", field)


async def _http_error(request: Request, error: HTTPException) -> Response:
    if error.status_code == 404:
        message = f"No endpoint at {request.url.path}; GET / lists the endpoints."
    elif error.status_code == 405:
        message = f"{request.method} is not allowed on {request.url.path}."
    else:
        message = str(error.detail)
    headers = error.headers
    allowed = {method.strip() for method in (headers or {}).get("Allow", "").split(",")}
    if headers and "GET" in allowed and "HEAD" not in allowed:  # GET routes answer HEAD (middleware.py)
        headers = {**headers, "Allow": headers["Allow"] + ", HEAD"}
    return error_response(error.status_code, message, None, headers=headers)


async def _client_gone(request: Request, error: ClientDisconnect) -> Response:
    # Nobody reads this answer: the status is what the metrics and the access line record.
    return Response(status_code=CLIENT_CLOSED)


async def _unexpected_error(request: Request, error: Exception) -> Response:
    logger.exception("unhandled error", extra={"request_id": request.state.request_id})
    # Starlette answers this outside the middleware that adds the header: the body points at it.
    return error_response(500, INTERNAL_ERROR, None, headers={"X-Request-ID": request.state.request_id})

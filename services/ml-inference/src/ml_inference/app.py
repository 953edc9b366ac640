"""The application factory: settings in, a FastAPI app out; the model loads in the lifespan."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from pydantic.json_schema import models_json_schema
from starlette.routing import Route

from ml_inference import __version__
from ml_inference.errors import install_error_handlers
from ml_inference.fast_path import HotPath, ServiceApp
from ml_inference.inference import Predictor
from ml_inference.logs import flush_periodically
from ml_inference.metrics import Metrics
from ml_inference.middleware import RequestObserver, RequestRecorder, at_capacity
from ml_inference.model import IrisModel
from ml_inference.routers import info, metrics, oip, predict
from ml_inference.schemas import RAW_REQUEST_BODIES
from ml_inference.settings import Settings
from ml_inference.state import ServiceState

logger = logging.getLogger(__name__)


def create_app(settings: Settings) -> ServiceApp:
    service = ServiceState()
    app_metrics = Metrics()
    # Read when scraped, so requests pay nothing for these two.
    app_metrics.model_ready.set_function(lambda: float(service.ready))
    app_metrics.in_flight.set_function(lambda: float(service.in_flight))
    recorder = RequestRecorder(service=service, metrics=app_metrics, max_body_bytes=settings.max_body_bytes)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Loading runs beside the server, so /health answers (and /ready says 503) meanwhile.
        loading = asyncio.create_task(_load_model(service, app_metrics, settings))
        flushing = asyncio.create_task(flush_periodically(recorder.access_log))
        yield
        loading.cancel()
        flushing.cancel()
        await asyncio.gather(loading, flushing, return_exceptions=True)

    app = ServiceApp(
        title="ml-inference",
        version=__version__,
        summary="Iris classifier (scikit-learn, served from ONNX): REST API and Open Inference Protocol v2.",
        lifespan=lifespan,
        # Prometheus metrics and JSON logs are this service's telemetry; FastAPI's OpenTelemetry
        # hooks would only add a provider lookup to every request.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    app.state.service = service
    app.state.metrics = app_metrics
    routers = (info.router, predict.router, oip.router, metrics.router)
    for router in routers:
        app.include_router(router)
    install_error_handlers(app)
    api_routes = [route for router in routers for route in router.routes if isinstance(route, APIRoute)]
    app_metrics.declare_routes(api_routes)
    # The documentation's routes too (Starlette routes FastAPI adds itself; app.routes nests the
    # routers), so that every documented request is counted under its own route.
    documentation = [route for route in app.routes if type(route) is Route]
    named_routes = [*api_routes, *documentation]
    app.add_middleware(RequestObserver, recorder=recorder, routes=named_routes)
    #: uvicorn answers a request beyond the connection cap itself; server.py hands it this instead.
    app.state.at_capacity = at_capacity(
        app, recorder=recorder, routes=named_routes, max_connections=settings.max_connections
    )
    app.hot_path = HotPath(predict.HOT_ROUTES, recorder=recorder, max_batch=settings.max_batch)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


async def _load_model(service: ServiceState, app_metrics: Metrics, settings: Settings) -> None:
    try:
        model = await asyncio.to_thread(IrisModel, settings.model_dir)
    except Exception as error:  # whatever it is, /ready must say it rather than "loading" forever
        service.load_error = str(error)
        logger.error(
            "model failed to load", extra={"model_dir": str(settings.model_dir), "error": str(error)}
        )
        return
    service.predictor = Predictor(model, app_metrics)
    app_metrics.model_info.labels(model.name, model.version).set(1)
    logger.info("model loaded", extra={"model_name": model.name, "model_version": model.version})


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's schema plus the request bodies that the fast handlers decode themselves."""
    if app.openapi_schema is None:
        schema = get_openapi(title=app.title, version=app.version, summary=app.summary, routes=app.routes)
        _, definitions = models_json_schema(
            [(model, "validation") for model in RAW_REQUEST_BODIES],
            ref_template="#/components/schemas/{model}",
        )
        schema.setdefault("components", {}).setdefault("schemas", {}).update(definitions["$defs"])
        app.openapi_schema = schema
    return app.openapi_schema

"""The FastAPI application: `uvicorn qa_api.main:create_app --factory --port 8008`."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from qa_api.api import health, legacy, models, qa, stream
from qa_api.api.docs import install_docs
from qa_api.config import Settings, get_settings, unknown_variables
from qa_api.errors import ApiError, error_response, install_error_handlers
from qa_api.metrics import Metrics
from qa_api.service import AnswerService

logger = logging.getLogger("qa_api")

# A client's X-Request-ID is logged and echoed: only short ids of safe characters are kept (no
# spaces or line breaks to forge log fields or lines); any other value is replaced by our own.
REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")

DESCRIPTION = """Extractive question answering over Spanish texts (BETO fine-tuned on SQuAD2-es).

Send a context and a question; get the answer span with its character offsets, its score and
the probability that the text holds no answer."""


def configure_logging(level: str) -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("qa_api").setLevel(level)
    # uvicorn's access log prints query strings, which may hold a user's text (/qas/?context=...).
    logging.getLogger("uvicorn.access").disabled = True
    # bm25s sets its own logger to DEBUG at import: a line per question whatever our level
    logging.getLogger("bm25s").setLevel(logging.WARNING)


def create_app(settings: Settings | None = None) -> FastAPI:
    """The app; without `settings`, from the environment (QA_*), warning of unknown variables."""
    from_environment = settings is None
    settings = settings or get_settings()
    configure_logging(settings.log_level)
    if from_environment:
        for problem in unknown_variables(os.environ):
            logger.warning(problem)
    metrics = Metrics()
    registry = settings.model_registry(observer=metrics)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        registry.start_loading()
        yield
        # Uvicorn has stopped accepting requests; let the queued ones finish.
        await asyncio.to_thread(registry.close, settings.request_timeout_s)

    app = FastAPI(
        title="Spanish QA API",
        description=DESCRIPTION,
        version="1.0.0",
        lifespan=lifespan,
        docs_url=None,  # install_docs serves both pages with local assets
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.models = registry
    app.state.metrics = metrics
    app.state.service = AnswerService(settings, registry, metrics)

    install_error_handlers(app)
    _install_middleware(app, settings, metrics)
    for router in (qa.router, stream.router, models.router, legacy.router, health.router):
        app.include_router(router)
    install_docs(app)
    return app


def _install_middleware(app: FastAPI, settings: Settings, metrics: Metrics) -> None:
    # Added first = innermost: inside RequestContextMiddleware, so its answers carry the request id.
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(RequestContextMiddleware, metrics=metrics)

    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Content-Type", "X-API-Key", "X-Request-ID"],
        )


class RequestContextMiddleware:
    """Request id, one log line and metrics per request (never the text).

    A plain ASGI middleware, not `@app.middleware("http")`: Starlette's BaseHTTPMiddleware runs the
    rest of the app in a task group of its own and pipes the response through a memory stream, a
    cost per request on the event loop that shares two cores with the inference threads.
    """

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        headers = Headers(scope=scope)
        request_id = client_request_id(headers) or uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id  # request.state.request_id
        status = 500  # if the app raises before it answers, the server error handler says 500
        finished = False

        async def send_with_context(message: Message) -> None:
            nonlocal status, finished
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message)["X-Request-ID"] = request_id
                # latency = time to the response's headers (a stream goes on after them)
                self.metrics.latency.labels(_route(scope)).observe(time.perf_counter() - started)
            elif message["type"] == "http.response.body" and not message.get("more_body"):
                finished = True
            await send(message)

        try:
            await self.app(scope, receive, send_with_context)
        finally:
            # A response cut short, a stream whose reader left, is logged as nginx does: 499.
            self._record(scope, request_id, status if finished else 499, started, headers)

    def _record(
        self, scope: Scope, request_id: str, status: int, started: float, headers: Headers
    ) -> None:
        route = _route(scope)
        self.metrics.requests.labels(scope["method"], route, str(status)).inc()
        if not route.startswith(("/health", "/metrics")):
            logger.info(
                "request_id=%s %s %s status=%d bytes_in=%d ms=%.1f",
                request_id, scope["method"], route, status, _content_length(headers) or 0,
                (time.perf_counter() - started) * 1000,
            )  # fmt: skip


def _route(scope: Scope) -> str:
    return getattr(scope.get("route"), "path", "unmatched")


def client_request_id(headers: Headers) -> str | None:
    """The client's X-Request-ID if it is a short id of safe characters, else None."""
    value = headers.get("x-request-id", "")
    return value if REQUEST_ID.fullmatch(value) else None


def _content_length(headers: Headers) -> int | None:
    value = headers.get("content-length", "")
    return int(value) if value.isdigit() else None


class BodyLimitMiddleware:
    """The one home of the request size limit (QA_MAX_BODY_BYTES) and of its 413 answers.

    Texts travel in the body (JSON, urlencoded or multipart form) or in the query string (/qas/);
    each is held to the limit: the query string and a declared Content-Length before the route
    runs, and the body again while it streams in (a chunked upload declares no length).
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def body_too_large(self) -> ApiError:
        return ApiError(
            413,
            "payload_too_large",
            f"The body is over {self.max_bytes} bytes, the limit (QA_MAX_BODY_BYTES). "
            "Send a shorter text.",
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        query_bytes = len(scope.get("query_string", b""))
        refused: ApiError | None = None
        if query_bytes > self.max_bytes:
            refused = ApiError(
                413,
                "payload_too_large",
                f"The query string has {query_bytes} bytes; the limit is {self.max_bytes} "
                "(QA_MAX_BODY_BYTES). Send long texts in the body instead.",
            )
        elif (_content_length(Headers(scope=scope)) or 0) > self.max_bytes:
            refused = self.body_too_large()
        if refused is not None:
            request = Request(scope)
            response = error_response(request, refused.status, refused.code, refused.message)
            await response(scope, receive, send)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise self.body_too_large()
            return message

        await self.app(scope, limited_receive, send)

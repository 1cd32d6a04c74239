"""What keeps the per-request cost on the event loop low (bench/overhead.py measures it)."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.dependencies.models import Dependant
from fastapi.dependencies.utils import get_dependant
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from starlette.middleware.base import BaseHTTPMiddleware

from qa_api.api import health, legacy, models, qa, stream
from tests.unit.test_api import CONTEXT, QUESTION, ready_client


@pytest.fixture(scope="module")
def client(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    with ready_client(tiny_model_dir, tmp_path_factory.mktemp("onnx")) as client:
        yield client


def _sync_calls(dependant: Dependant) -> Iterator[str]:
    """The plain `def` callables of a dependant (an endpoint or a dependency) and of its own."""
    call = dependant.call
    if call is not None and not inspect.iscoroutinefunction(call):
        yield getattr(call, "__qualname__", repr(call))
    for dependency in dependant.dependencies:
        yield from _sync_calls(dependency)


def test_api_routes_hop_to_no_thread() -> None:
    """A plain `def` endpoint or dependency runs in FastAPI's thread pool: one hand-off each."""
    hops: dict[str, list[str]] = {}
    for router in (qa.router, stream.router, models.router, legacy.router, health.router):
        shared = [get_dependant(path="", call=d.dependency) for d in router.dependencies]
        for route in router.routes:
            assert isinstance(route, APIRoute)
            found = [*_sync_calls(route.dependant)]
            for dependant in shared:
                found += _sync_calls(dependant)
            hops[route.path] = found
    assert {"/v1/qa", "/v1/qa/batch", "/v1/qa/stream", "/qas/", "/health/live"} <= set(hops)
    assert {path: calls for path, calls in hops.items() if calls} == {}


def test_no_base_http_middleware(client: TestClient) -> None:
    """BaseHTTPMiddleware runs each request in a task group of its own, through a memory stream."""
    classes = [m.cls for m in client.app.user_middleware]  # type: ignore[attr-defined]
    assert not [c for c in classes if isinstance(c, type) and issubclass(c, BaseHTTPMiddleware)]


def test_stream_carries_the_request_id_and_is_counted(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    """The request context sees a streamed answer as it sees the others: id, log line, metric."""
    body = {"context": CONTEXT, "question": QUESTION}
    with caplog.at_level("INFO", logger="qa_api"):
        response = client.post("/v1/qa/stream", json=body, headers={"X-Request-ID": "s-1"})
    assert response.status_code == 200
    assert response.headers["x-request-id"] == "s-1"
    assert response.text.startswith("event: progress\n")
    assert "event: result\n" in response.text
    (line,) = [r.getMessage() for r in caplog.records if "request_id=s-1 " in r.getMessage()]
    assert line.startswith("request_id=s-1 POST /v1/qa/stream status=200 bytes_in=")
    metric = 'qa_http_requests_total{method="POST",route="/v1/qa/stream",status="200"} 1.0'
    assert metric in client.get("/metrics").text

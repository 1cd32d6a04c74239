"""Optional API key (off by default) and CORS (closed by default) on a real backend."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.processes import ServiceProcess, start_backend

KEY = "s3cret-key-for-tests"
ALLOWED_ORIGIN = "https://qa.example.org"
FOREIGN_ORIGIN = "https://evil.example.com"
QA = {"context": "Cervantes nació en Alcalá de Henares.", "question": "¿Dónde nació?"}
# Every call the key protects, with a body that would otherwise succeed.
PROTECTED: list[tuple[str, str, dict[str, Any]]] = [
    ("POST", "/v1/qa", {"json": QA}),
    ("POST", "/v1/qa/batch", {"json": {"requests": [QA]}}),
    ("POST", "/v1/models/tiny:predict", {"json": {"instances": [QA]}}),
    ("GET", "/v1/models", {}),
    ("GET", "/v1/models/tiny", {}),
    ("POST", "/qas/", {"params": QA}),
]
OPEN = ["/health/live", "/health/ready", "/metrics", "/docs", "/openapi.json"]


@pytest.fixture(scope="module")
def locked_backend(
    tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceProcess]:
    """One backend for the module with a key and one allowed CORS origin."""
    env = {"QA_API_KEY": KEY, "QA_CORS_ORIGINS": json.dumps([ALLOWED_ORIGIN])}
    backend = start_backend(tiny_model_dir, tmp_path_factory.mktemp("locked"), env)
    backend.wait_for("/health/ready")
    yield backend
    backend.stop()


@pytest.fixture
def locked(locked_backend: ServiceProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=locked_backend.url, timeout=20) as client:
        yield client


@pytest.fixture
def default(backend_server: ServiceProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=backend_server.url, timeout=20) as client:
        yield client


def test_api_key_is_off_by_default(default: httpx.Client) -> None:
    for method, path, kwargs in PROTECTED:
        response = default.request(method, path, **kwargs)
        assert response.status_code == 200, (path, response.text)


def test_api_key_guards_every_api_call(locked: httpx.Client) -> None:
    for method, path, kwargs in PROTECTED:
        for headers in ({}, {"X-API-Key": "wrong"}, {"X-API-Key": KEY.upper()}):
            response = locked.request(method, path, headers=headers, **kwargs)
            assert response.status_code == 401, (path, headers, response.text)
            body = response.json()
            assert body["code"] == "unauthorized"
            assert "X-API-Key" in body["error"]
            assert KEY not in response.text
        response = locked.request(method, path, headers={"X-API-Key": KEY}, **kwargs)
        assert response.status_code == 200, (path, response.text)


def test_health_metrics_and_docs_stay_open_with_a_key(locked: httpx.Client) -> None:
    for path in OPEN:
        assert locked.get(path).status_code == 200, path


def test_cors_is_closed_by_default(default: httpx.Client) -> None:
    simple = default.post("/v1/qa", json=QA, headers={"Origin": FOREIGN_ORIGIN})
    assert simple.status_code == 200
    assert "access-control-allow-origin" not in simple.headers
    preflight = default.options(
        "/v1/qa",
        headers={
            "Origin": FOREIGN_ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert "access-control-allow-origin" not in preflight.headers
    assert preflight.status_code >= 400


def test_cors_allows_only_the_configured_origins(locked: httpx.Client) -> None:
    preflight_headers = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type,x-api-key",
    }
    allowed = locked.options("/v1/qa", headers={"Origin": ALLOWED_ORIGIN, **preflight_headers})
    assert allowed.status_code == 200, allowed.text
    assert allowed.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    assert "x-api-key" in allowed.headers["access-control-allow-headers"].lower()
    answered = locked.post("/v1/qa", json=QA, headers={"Origin": ALLOWED_ORIGIN, "X-API-Key": KEY})
    assert answered.status_code == 200
    assert answered.headers["access-control-allow-origin"] == ALLOWED_ORIGIN

    foreign = locked.options("/v1/qa", headers={"Origin": FOREIGN_ORIGIN, **preflight_headers})
    assert "access-control-allow-origin" not in foreign.headers
    simple = locked.post("/v1/qa", json=QA, headers={"Origin": FOREIGN_ORIGIN, "X-API-Key": KEY})
    assert "access-control-allow-origin" not in simple.headers

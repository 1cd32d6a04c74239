"""QAClient against simple HTTP servers on loopback: replicas, retries, errors, settings."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from requests_toolbelt.multipart.decoder import MultipartDecoder

from qa_ui.client import (
    Answer,
    BackendError,
    BackendState,
    BackendTimeout,
    BackendUnreachable,
    QAClient,
    QARequest,
    ReplicaPool,
    curl_command,
    resolve_all,
)
from qa_ui.config import SettingsError, UISettings
from qa_ui.testing import SERVED_LIMITS

pytestmark = pytest.mark.unit

CONTEXT = "Miguel de Cervantes escribió el Quijote."


@dataclass
class Replica:
    """One fake backend replica: answers per docs/api.md and records what it received."""

    address: str
    port: int
    name: str
    mode: str = "ok"  # ok | overloaded | slow | invalid | forbidden (a proxy's 403 on GETs)
    seen: list[dict[str, Any]] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    def kill(self) -> None:
        assert self.server is not None
        self.server.shutdown()
        self.server.server_close()


def _handler(replica: Replica) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _reply(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("X-Request-ID", self.headers.get("X-Request-ID", "none"))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

        def _record(self, body: bytes = b"") -> None:
            replica.seen.append(
                {"path": self.path, "headers": dict(self.headers.items()), "body": body}
            )

        def do_GET(self) -> None:
            self._record()
            if replica.mode == "forbidden" and self.path != "/health/ready":
                self.send_response(403)
                self.send_header("Content-Length", "9")
                self.end_headers()
                self.wfile.write(b"Forbidden")
            elif self.path == "/health/ready":
                self._reply(200, {"status": "ready", "models": {"beto": "ready"}})
            elif self.path == "/v1/models":
                self._reply(
                    200,
                    {
                        "default": "beto",
                        "models": [
                            {
                                "name": "beto",
                                "status": "ready",
                                "ready": True,
                                "limits": {
                                    **asdict(SERVED_LIMITS),
                                    "max_top_k": 5,
                                    "max_context_chars": 1000,
                                },
                            }
                        ],
                    },
                )
            else:
                self._reply(404, {"error": "no such route", "code": "not_found"})

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            self._record(body)
            if replica.mode == "overloaded":
                self._reply(
                    503, {"error": "busy", "code": "overloaded"}, headers={"Retry-After": "1"}
                )
                return
            if replica.mode == "slow":
                time.sleep(1.0)
            if replica.mode == "invalid":
                self._reply(
                    422,
                    {
                        "error": "question: must not be empty",
                        "code": "validation_error",
                        "request_id": "r1",
                        "details": [{"loc": ["body", "question"], "msg": "empty"}],
                    },
                )
                return
            if self.path == "/qas/":
                parts = MultipartDecoder(body, self.headers["Content-Type"]).parts
                fields = {
                    p.headers[b"Content-Disposition"].decode().split('name="')[1].split('"')[0]: (
                        p.text
                    )
                    for p in parts
                }
                self._reply(200, fields["context"][: len("Miguel de Cervantes")])
                return
            request = json.loads(body)
            start = request["context"].index("Miguel")
            self._reply(
                200,
                {
                    "model": replica.name,
                    "answers": [
                        {"answer": "Miguel de Cervantes", "score": 0.9, "start": start, "end": 19}
                    ],
                    "no_answer": False,
                    "no_answer_probability": 0.01,
                    "num_windows": 1,
                    "timings": {"inference_ms": 5.0, "total_ms": 6.0},
                },
            )

    return Handler


def _start(replica: Replica) -> Replica:
    server = ThreadingHTTPServer((replica.address, replica.port), _handler(replica))
    server.daemon_threads = True
    # A client that timed out closes its socket; the late reply's broken pipe is expected.
    server.handle_error = lambda request, client_address: None  # type: ignore[method-assign]
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    replica.server = server
    return replica


def _port_free_on(addresses: list[str]) -> int:
    for _ in range(20):
        with socket.socket() as probe:
            probe.bind((addresses[0], 0))
            port = probe.getsockname()[1]
        try:
            for address in addresses:
                with socket.socket() as other:
                    other.bind((address, port))
        except OSError:
            continue
        return port
    raise RuntimeError("no port free on every loopback address")


@pytest.fixture
def replicas() -> Iterator[list[Replica]]:
    """Two replicas of the service `fastapi` on 127.0.0.1 and 127.0.0.2, same port."""
    addresses = ["127.0.0.1", "127.0.0.2"]
    port = _port_free_on(addresses)
    started = [_start(Replica(a, port, f"replica-{i}")) for i, a in enumerate(addresses, 1)]
    yield started
    for replica in started:
        if replica.server is not None:
            replica.server.shutdown()
            replica.server.server_close()


def _client(
    replicas: list[Replica],
    resolver: Callable[[str, int], list[str]] | None = None,
    **settings: Any,
) -> QAClient:
    port = replicas[0].port
    addresses = [r.address for r in replicas]

    def dns(host: str, asked_port: int) -> list[str]:
        assert (host, asked_port) == ("fastapi", port)
        return addresses

    return QAClient(
        UISettings(backend_url=f"http://fastapi:{port}", **settings), resolver=resolver or dns
    )


def _ask(client: QAClient) -> str:
    return client.ask(QARequest(context=CONTEXT, question="¿Quién?")).model


def test_requests_round_robin_over_replicas_keeping_the_service_host(
    replicas: list[Replica],
) -> None:
    client = _client(replicas)

    served = [_ask(client) for _ in range(4)]

    assert sorted(served) == ["replica-1", "replica-1", "replica-2", "replica-2"]
    port = replicas[0].port
    for replica in replicas:
        assert {s["headers"]["Host"] for s in replica.seen} == {f"fastapi:{port}"}


def test_a_dead_replica_is_invisible_to_the_user(replicas: list[Replica]) -> None:
    client = _client(replicas)
    assert {_ask(client) for _ in range(2)} == {"replica-1", "replica-2"}

    replicas[0].kill()

    assert [_ask(client) for _ in range(4)] == ["replica-2"] * 4
    assert client.health().state is BackendState.READY


def test_an_overloaded_replica_hands_the_request_to_another(replicas: list[Replica]) -> None:
    replicas[0].mode = "overloaded"
    client = _client(replicas)

    assert [_ask(client) for _ in range(3)] == ["replica-2"] * 3
    assert len(replicas[0].seen) >= 1


def test_every_replica_overloaded_is_a_503_error(replicas: list[Replica]) -> None:
    for replica in replicas:
        replica.mode = "overloaded"
    client = _client(replicas)

    with pytest.raises(BackendError) as caught:
        _ask(client)
    assert (caught.value.code, caught.value.status, caught.value.retry_after) == (
        "overloaded",
        503,
        1.0,
    )


def test_all_replicas_down_is_unreachable_not_a_crash(replicas: list[Replica]) -> None:
    client = _client(replicas)
    for replica in replicas:
        replica.kill()

    with pytest.raises(BackendUnreachable) as caught:
        _ask(client)
    assert caught.value.code == "unreachable"
    assert caught.value.request_id
    health = client.health()
    assert health.state is BackendState.UNREACHABLE
    assert health.reason == f"cannot reach the backend at http://fastapi:{replicas[0].port}"


def test_host_is_re_resolved_and_new_replicas_join(replicas: list[Replica]) -> None:
    answers = [[replicas[0].address], [r.address for r in replicas]]
    calls: list[str] = []

    def dns(host: str, port: int) -> list[str]:
        calls.append(host)
        return answers[min(len(calls), 2) - 1]

    client = _client(replicas, resolver=dns, resolve_interval_s=0.0)
    assert _ask(client) == "replica-1"
    assert {_ask(client) for _ in range(4)} == {"replica-1", "replica-2"}
    assert len(calls) == 5


def test_dns_failure_keeps_the_last_known_replicas(replicas: list[Replica]) -> None:
    failing = {"now": False}

    def dns(host: str, port: int) -> list[str]:
        if failing["now"]:
            raise socket.gaierror(-2, "Name or service not known")
        return [replicas[0].address]

    client = _client(replicas, resolver=dns, resolve_interval_s=0.0)
    assert _ask(client) == "replica-1"
    failing["now"] = True
    assert _ask(client) == "replica-1"

    fresh = _client(replicas, resolver=dns)
    with pytest.raises(BackendUnreachable, match="cannot resolve 'fastapi'"):
        _ask(fresh)


def test_error_shape_is_parsed(replicas: list[Replica]) -> None:
    replicas[0].mode = "invalid"
    client = _client(replicas[:1])

    with pytest.raises(BackendError) as caught:
        _ask(client)
    error = caught.value
    assert (error.code, error.status, error.message) == (
        "validation_error",
        422,
        "question: must not be empty",
    )
    assert error.request_id == replicas[0].seen[-1]["headers"]["X-Request-ID"]


def test_a_proxys_403_without_our_body_is_an_unauthorized_error(replicas: list[Replica]) -> None:
    replicas[0].mode = "forbidden"
    client = _client(replicas[:1])

    with pytest.raises(BackendError) as caught:
        client.models()
    assert (caught.value.code, caught.value.status) == ("unauthorized", 403)


def test_api_key_and_request_id_are_sent(replicas: list[Replica]) -> None:
    client = _client(replicas[:1], api_key="s3cret")

    result = client.ask(QARequest(context=CONTEXT, question="¿Quién?", top_k=2))

    headers = replicas[0].seen[-1]["headers"]
    assert headers["X-API-Key"] == "s3cret"
    assert result.request_id == headers["X-Request-ID"]
    assert json.loads(replicas[0].seen[-1]["body"]) == {
        "context": CONTEXT,
        "question": "¿Quién?",
        "top_k": 2,
        "handle_impossible_answer": True,
    }
    assert result.answers == (Answer("Miguel de Cervantes", 0.9, 0, 19),)
    assert result.timings.total_ms == 6.0
    assert result.round_trip_ms > 0


def test_slow_backend_is_a_timeout_in_seconds(replicas: list[Replica]) -> None:
    replicas[0].mode = "slow"
    client = _client(replicas[:1], timeout_s=0.2)

    started = time.monotonic()
    with pytest.raises(BackendTimeout, match=r"within 0.2 s"):
        _ask(client)
    assert time.monotonic() - started < 0.9
    assert len(replicas[0].seen) == 1  # a timed-out request is not sent twice


def test_models_and_qas_form(replicas: list[Replica]) -> None:
    client = _client(replicas[:1])

    models = client.models()
    assert models.default == "beto"
    assert models.get(None) is models.models[0]
    assert (models.models[0].limits.max_top_k, models.models[0].limits.max_context_chars) == (
        5,
        1000,
    )
    assert client.ask_form(CONTEXT, "¿Quién?") == "Miguel de Cervantes"
    assert replicas[0].seen[-1]["headers"]["Content-Type"].startswith("multipart/form-data")


def test_resolve_all_uses_the_system_resolver() -> None:
    assert "127.0.0.1" in resolve_all("localhost", 80)
    assert resolve_all("127.0.0.2", 80) == ["127.0.0.2"]


def test_https_and_ip_urls_are_used_as_they_are() -> None:
    def no_dns(host: str, port: int) -> list[str]:
        raise AssertionError("must not resolve")

    for url in ("https://qa.example.org", "http://127.0.0.1:8008", "http://[::1]:8008"):
        pool = ReplicaPool(url, resolver=no_dns)
        assert pool.targets() == [url]
    pool = ReplicaPool("http://fastapi:8008", resolver=lambda h, p: ["10.0.0.2", "fd00::3"])
    assert pool.targets() == ["http://10.0.0.2:8008", "http://[fd00::3]:8008"]
    assert pool.targets() == ["http://[fd00::3]:8008", "http://10.0.0.2:8008"]


def test_settings_from_env() -> None:
    assert UISettings.from_env({}) == UISettings()
    assert UISettings().backend_url == "http://fastapi:8008"
    settings = UISettings.from_env(
        {
            "QA_UI_BACKEND_URL": "http://localhost:9000/",
            "QA_UI_PUBLIC_API_URL": "https://qa.example.org",
            "QA_UI_TIMEOUT_S": "12.5",
            "QA_UI_API_KEY": "k",
            "QA_UI_RESOLVE_INTERVAL_S": "",
        }
    )
    assert (settings.backend_url, settings.public_api_url) == (
        "http://localhost:9000",
        "https://qa.example.org",
    )
    assert (settings.timeout_s, settings.api_key, settings.resolve_interval_s) == (12.5, "k", 5.0)
    with pytest.raises(SettingsError, match="QA_UI_TIMEOUT_S must be a number"):
        UISettings.from_env({"QA_UI_TIMEOUT_S": "soon"})
    with pytest.raises(SettingsError, match="QA_UI_BACKEND_URL must be an http"):
        UISettings.from_env({"QA_UI_BACKEND_URL": "fastapi:8008"})
    with pytest.raises(SettingsError, match="QA_UI_TIMEOUT_S must be > 0"):
        UISettings.from_env({"QA_UI_TIMEOUT_S": "0"})
    assert UISettings.from_env({"QA_UI_TOP_K": "5"}).top_k == 5
    with pytest.raises(SettingsError, match="QA_UI_TOP_K must be a number"):
        UISettings.from_env({"QA_UI_TOP_K": "2.5"})
    with pytest.raises(SettingsError, match="QA_UI_TOP_K must be >= 1"):
        UISettings.from_env({"QA_UI_TOP_K": "0"})


def test_curl_command_repeats_the_request(replicas: list[Replica], tmp_path: Path) -> None:
    """The command, run by bash and the real curl, sends the request's body byte for byte, even a
    text far past the 128 KiB a single command-line argument may hold."""
    context = "Miguel dijo 'hola' y $HOME `date` \\ \"\nJSON\n" + "palabra ñ " * 30_000
    request = QARequest(context=context, question="¿Qué dijo?", model="beto")
    server = f"http://127.0.0.1:{replicas[0].port}/"

    script = tmp_path / "pasted.sh"  # as pasted into a terminal: bash reads it, not argv
    script.write_text(curl_command(server, request, with_api_key=True), encoding="utf-8")
    done = subprocess.run(
        ["bash", str(script)],
        env={"PATH": os.environ["PATH"], "QA_API_KEY": "k-1"},
        capture_output=True,
        text=True,
        timeout=30,
    )

    assert done.returncode == 0, done.stderr
    (seen,) = replicas[0].seen
    assert seen["path"] == "/v1/qa"
    assert seen["headers"]["X-API-Key"] == "k-1"
    assert seen["headers"]["Content-Type"] == "application/json"
    assert json.loads(seen["body"]) == request.payload()

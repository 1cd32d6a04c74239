"""The UI's QAClient against real backend processes (tiny random-weight model) on loopback."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from qa_ui import actions
from qa_ui.client import (
    BackendError,
    BackendState,
    BackendUnreachable,
    QAClient,
    QARequest,
    QAResult,
)
from qa_ui.config import UISettings
from qa_ui.examples import EXAMPLES, EXAMPLES_BY_KEY
from tests.conftest import StartBackend
from tests.processes import BACKEND_DIR, ServiceProcess, free_port, http_status, start_backend

pytestmark = pytest.mark.integration

QUIJOTE = EXAMPLES_BY_KEY["quijote"]


def _client(url: str, **settings: object) -> QAClient:
    return QAClient(UISettings(backend_url=url, **settings))  # type: ignore[arg-type]


def _check_offsets(context: str, result: QAResult, top_k: int) -> None:
    assert 1 <= len(result.answers) <= top_k
    for answer in result.answers:
        assert context[answer.start : answer.end] == answer.answer
        assert 0.0 <= answer.score <= 1.0
    scores = [a.score for a in result.answers]
    assert scores == sorted(scores, reverse=True)


def test_health_models_and_answers(backend_server: ServiceProcess) -> None:
    client = _client(backend_server.url)

    health = client.health()
    assert (health.state, health.models) == (BackendState.READY, {"tiny": "ready"})
    models = client.models()
    assert models.default == "tiny"
    assert [(m.name, m.ready, m.status) for m in models.models] == [("tiny", True, "ready")]
    assert models.models[0].limits.max_context_chars == 50_000

    for example in EXAMPLES:
        result = client.ask(QARequest(example.context, example.question, top_k=3))
        assert result.model == "tiny"
        _check_offsets(example.context, result, 3)
        assert result.no_answer_probability is not None
        assert result.timings.total_ms > 0
        assert result.round_trip_ms >= result.timings.total_ms
        assert result.request_id


def test_qas_form_matches_the_best_answer(backend_server: ServiceProcess) -> None:
    client = _client(backend_server.url)

    best = client.ask(QARequest(QUIJOTE.context, QUIJOTE.question))
    expected = "" if best.no_answer or best.best is None else best.best.answer

    assert client.ask_form(QUIJOTE.context, QUIJOTE.question) == expected


def test_backend_errors_arrive_typed(backend_server: ServiceProcess) -> None:
    client = _client(backend_server.url)

    with pytest.raises(BackendError) as empty:
        client.ask(QARequest(QUIJOTE.context, ""))
    assert (empty.value.code, empty.value.status) == ("validation_error", 422)
    with pytest.raises(BackendError) as too_many:
        client.ask(QARequest(QUIJOTE.context, QUIJOTE.question, top_k=1000))
    assert (too_many.value.code, too_many.value.status) == ("validation_error", 422)
    with pytest.raises(BackendError) as unknown:
        client.ask(QARequest(QUIJOTE.context, QUIJOTE.question, model="no-such-model"))
    assert (unknown.value.code, unknown.value.status) == ("model_not_found", 404)
    assert unknown.value.request_id


def test_compare_and_api_key(start_backend_process: StartBackend, tiny_model_dir: Path) -> None:
    backend = start_backend_process(
        env={
            "QA_MODELS": f'{{"tiny": "{tiny_model_dir}", "tiny-b": "{tiny_model_dir}"}}',
            "QA_API_KEY": "s3cret",
        }
    )

    with pytest.raises(BackendError) as denied:
        _client(backend.url).ask(QARequest(QUIJOTE.context, QUIJOTE.question))
    assert (denied.value.code, denied.value.status) == ("unauthorized", 401)

    client = _client(backend.url, api_key="s3cret")
    assert client.health().state is BackendState.READY
    names = [m.name for m in client.models().models]
    assert names == ["tiny", "tiny-b"]
    compared = actions.compare(client, QARequest(QUIJOTE.context, QUIJOTE.question, top_k=2), names)
    assert [a.model for a in compared.answers] == names
    for answer in compared.answers:
        assert isinstance(answer.outcome, QAResult)
        assert answer.outcome.model == answer.model
        _check_offsets(QUIJOTE.context, answer.outcome, 2)


@pytest.fixture
def two_replicas(tiny_model_dir: Path, tmp_path: Path) -> Iterator[list[ServiceProcess]]:
    """Two backend processes on 127.0.0.1 and 127.0.0.2 sharing one port, like compose replicas."""
    first = start_backend(tiny_model_dir, tmp_path)
    port = int(first.url.rsplit(":", 1)[1])
    log_path = tmp_path / "backend-replica-2.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "qa_api.main:create_app", "--factory",
         "--host", "127.0.0.2", "--port", str(port)],
        cwd=BACKEND_DIR,
        env={**os.environ, **first.env},
        stdout=log_path.open("wb"),
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    second = ServiceProcess(f"http://127.0.0.2:{port}", proc, log_path, first.env)
    replicas = [first, second]
    try:
        for replica in replicas:
            replica.wait_for("/health/ready")
        yield replicas
    finally:
        for replica in replicas:
            replica.stop()


def test_losing_a_replica_is_invisible(two_replicas: list[ServiceProcess]) -> None:
    port = int(two_replicas[0].url.rsplit(":", 1)[1])
    client = QAClient(
        UISettings(backend_url=f"http://fastapi:{port}"),
        resolver=lambda host, _port: ["127.0.0.1", "127.0.0.2"],
    )
    request = QARequest(QUIJOTE.context, QUIJOTE.question)
    first = client.ask(request)

    two_replicas[0].stop(signal.SIGKILL)
    assert http_status(two_replicas[0].url + "/health/live") is None

    for _ in range(4):
        again = client.ask(request)
        assert (again.answers, again.no_answer) == (first.answers, first.no_answer)
    assert client.health().state is BackendState.READY

    two_replicas[1].stop(signal.SIGKILL)
    with pytest.raises(BackendUnreachable):
        client.ask(request)
    assert client.health().state is BackendState.UNREACHABLE


def test_nothing_listening_is_unreachable_quickly() -> None:
    client = _client(f"http://127.0.0.1:{free_port()}")

    assert client.health().state is BackendState.UNREACHABLE
    with pytest.raises(BackendUnreachable):
        client.ask(QARequest(QUIJOTE.context, QUIJOTE.question))

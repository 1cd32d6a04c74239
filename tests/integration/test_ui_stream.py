"""The UI client's progress stream against a real backend process (tiny model, short windows)."""

from __future__ import annotations

import time

import httpx
import pytest

from qa_ui.client import BackendError, Progress, QAClient, QARequest, QAResult
from qa_ui.config import UISettings
from tests.conftest import StartBackend

pytestmark = pytest.mark.integration

# Windows of 48 tokens, one per forward pass: a 42,000-character text makes hundreds.
SHORT_WINDOWS = {
    "QA_MAX_SEQ_LEN": "48",
    "QA_MAX_QUESTION_LEN": "16",
    "QA_DOC_STRIDE": "8",
    "QA_MAX_BATCH_SIZE": "1",
    # A loaded machine measures slow windows: a generous timeout keeps the deadline check from
    # refusing the long text this test streams.
    "QA_REQUEST_TIMEOUT_S": "900",
}
CONTEXT = " ".join(
    f"Miguel de Cervantes escribió la obra número {i} en Alcalá de Henares." for i in range(600)
)


def _cancelled_windows(url: str) -> float:
    text = httpx.get(f"{url}/metrics", timeout=10).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("qa_cancelled_windows_total")
    )


def test_stream_gives_progress_then_the_answer_and_closing_it_cancels(
    start_backend_process: StartBackend,
) -> None:
    backend = start_backend_process(env=SHORT_WINDOWS)
    client = QAClient(UISettings(backend_url=backend.url))

    short = QARequest("El río Ebro nace en Fontibre.", "¿Dónde nace?", top_k=2)
    *progress, result = list(client.ask_stream(short))
    assert all(isinstance(p, Progress) for p in progress)
    assert isinstance(result, QAResult)
    assert result.request_id
    for answer in result.answers:
        assert short.context[answer.start : answer.end] == answer.answer

    stream = client.ask_stream(QARequest(CONTEXT, "¿Dónde?"))
    first = next(stream)
    assert isinstance(first, Progress)
    assert first.windows_total > 300
    assert first.windows_done < first.windows_total  # the first events come before the end
    stream.close()  # what a stop button or a closed page does: the connection goes
    deadline = time.monotonic() + 30
    while _cancelled_windows(backend.url) == 0:
        assert time.monotonic() < deadline, "closing the stream did not cancel the work"
        time.sleep(0.1)
    assert _cancelled_windows(backend.url) > 100


def test_stream_refusal_is_a_backend_error_with_the_servers_message(
    start_backend_process: StartBackend,
) -> None:
    backend = start_backend_process(env={"QA_MAX_CONTEXT_CHARS": "1000"})
    client = QAClient(UISettings(backend_url=backend.url))
    with pytest.raises(BackendError) as refused:
        next(client.ask_stream(QARequest("texto " * 500, "¿Qué?")))
    assert refused.value.status == 413
    assert refused.value.code == "payload_too_large"
    assert "QA_MAX_CONTEXT_CHARS" in refused.value.message

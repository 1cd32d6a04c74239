"""Long texts over real HTTP: progress events, early refusal, and work dropped when callers leave.

The app runs under uvicorn in this process, so a test can slow the model down on purpose (each
forward pass sleeps) and count its passes; everything else is the product's own path.
"""

from __future__ import annotations

import gc
import json
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import uvicorn

from qa_api.config import Settings
from qa_api.inference.backends import Logits, ModelBackend
from qa_api.inference.runtime import QARuntime
from qa_api.main import create_app
from tests.processes import free_port

SENTENCE = "Miguel de Cervantes escribió la obra número {i} en Alcalá de Henares. "
WINDOWS_64 = {"max_seq_len": 64, "doc_stride": 16}


def document(sentences: int, question: str = "¿Dónde escribió Cervantes?") -> dict[str, Any]:
    context = "".join(SENTENCE.format(i=i) for i in range(sentences))
    return {"context": context, "question": question, **WINDOWS_64}


class SlowBackend:
    """The served backend, each forward pass slowed down (or held at a gate) and counted."""

    def __init__(self, inner: ModelBackend, delay_s: float) -> None:
        self.inner, self.delay_s = inner, delay_s
        self.name, self.device, self.dtype = inner.name, inner.device, inner.dtype
        self.passes = 0
        self.gate = threading.Event()
        self.gate.set()

    def forward(
        self, input_ids: np.ndarray, attention_mask: np.ndarray, token_type_ids: np.ndarray
    ) -> Logits:
        self.passes += 1
        self.gate.wait(30)
        time.sleep(self.delay_s)
        return self.inner.forward(input_ids, attention_mask, token_type_ids)


class Served:
    def __init__(self, url: str, runtime: QARuntime) -> None:
        self.url, self.runtime = url, runtime

    def slow_down(self, delay_s: float, measure: bool = False) -> SlowBackend:
        """Slow the model's passes; `measure` re-runs warm-up so the server knows the new speed."""
        pipeline = self.runtime.pipeline
        inner = getattr(pipeline.backend, "inner", pipeline.backend)
        slow = SlowBackend(inner, delay_s)
        pipeline.backend = slow
        if measure:
            self.runtime.warm_up_shapes(64)
        return slow

    def metric(self, name: str) -> float:
        text = httpx.get(f"{self.url}/metrics", timeout=10).text
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith(name) and not line.startswith("#")
        )


@pytest.fixture
def serve(tiny_model_dir: Path, tmp_path: Path) -> Iterator[Callable[..., Served]]:
    """Factory: the app with the tiny model under uvicorn on a free port, stopped after the test."""
    servers: list[tuple[uvicorn.Server, threading.Thread]] = []

    def start(**overrides: Any) -> Served:
        settings = Settings(
            **{
                "models": {"tiny": str(tiny_model_dir)},
                "backend": "torch-fp32",
                "onnx_cache_dir": tmp_path / "onnx",
                "max_seq_len": 64,
                "max_question_len": 16,
                "doc_stride": 16,
                **overrides,
            }
        )
        app = create_app(settings)
        port = free_port()
        server = uvicorn.Server(uvicorn.Config(app, port=port, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        servers.append((server, thread))
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/health/ready", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the app never became ready"
            time.sleep(0.05)
        _, runtime = app.state.models.runtime("tiny")
        return Served(url, runtime)

    yield start
    for server, thread in servers:
        server.should_exit = True
        thread.join(30)


def events(response: httpx.Response) -> Iterator[tuple[str, dict[str, Any]]]:
    """(event name, JSON data) of each Server-Sent Event as it arrives."""
    name, data = "", ""
    for line in response.iter_lines():
        if line.startswith("event: "):
            name = line.removeprefix("event: ")
        elif line.startswith("data: "):
            data = line.removeprefix("data: ")
        elif not line and name:
            yield name, json.loads(data)
            name, data = "", ""


def test_stream_sends_progress_then_the_same_result_as_the_json_endpoint(serve: Any) -> None:
    served = serve()
    served.slow_down(0.02)
    body = document(40)
    with httpx.stream("POST", f"{served.url}/v1/qa/stream", json=body, timeout=60) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        received = list(events(response))
    names = [name for name, _ in received]
    assert names[-1] == "result", names
    assert set(names[:-1]) == {"progress"}, names
    progress = [data for name, data in received if name == "progress"]
    total = progress[0]["windows_total"]
    assert progress[0]["windows_done"] == 0
    assert total > 4
    assert [p["windows_done"] for p in progress] == sorted(p["windows_done"] for p in progress)
    assert all(p["windows_total"] == total for p in progress)
    assert len(progress) > 2  # one after each batch, not only at the start
    assert all(p["elapsed_s"] >= 0 and p["remaining_s"] is not None for p in progress)
    result = received[-1][1]
    plain = httpx.post(f"{served.url}/v1/qa", json=body, timeout=60).json()
    assert result["num_windows"] == plain["num_windows"] == total
    assert result["answers"] == plain["answers"]
    assert result.keys() == plain.keys()


def test_stream_sends_progress_while_one_long_batch_runs(serve: Any) -> None:
    """A client that can stop only between events (the UI) gets one every 0.5 s."""
    served = serve()
    slow = served.slow_down(0.0)
    slow.gate.clear()  # the first batch takes as long as the test holds it
    with httpx.stream("POST", f"{served.url}/v1/qa/stream", json=document(5), timeout=60) as r:
        received = events(r)
        held = [next(received) for _ in range(4)]  # admitted + 3 while the batch is held
        slow.gate.set()
        names = [name for name, _ in received]
    assert [name for name, _ in held] == ["progress"] * 4
    assert [data["windows_done"] for _, data in held] == [0, 0, 0, 0]
    elapsed = [data["elapsed_s"] for _, data in held]
    assert elapsed == sorted(elapsed)
    assert elapsed[-1] - elapsed[0] >= 1.0  # paced, not a burst
    assert names[-1] == "result"


def test_work_that_cannot_finish_in_time_is_refused_at_once_with_the_estimate(
    serve: Any,
) -> None:
    served = serve(request_timeout_s=20)
    slow = served.slow_down(0.05, measure=True)  # at most ~1,000 tokens per second now
    passes = slow.passes
    body = document(700)  # ~700 windows of 64 tokens: about a minute at that speed
    for path in ("/v1/qa", "/v1/qa/stream"):
        started = time.monotonic()
        response = httpx.post(f"{served.url}{path}", json=body, timeout=60)
        assert response.status_code == 413, response.text
        assert time.monotonic() - started < 10  # refused before computing, not after 20 s
        error = response.json()
        assert error["code"] == "payload_too_large"
        for hint in ("windows", "20 s timeout", "shorter text", "passages"):
            assert hint in error["error"], error["error"]
    assert slow.passes == passes  # nothing of it ran
    small = httpx.post(f"{served.url}/v1/qa", json=document(2), timeout=60)
    assert small.status_code == 200, small.text


def test_stream_ends_with_an_error_event_when_the_timeout_passes(serve: Any) -> None:
    served = serve(request_timeout_s=1.5)
    slow = served.slow_down(0.0)
    slow.gate.clear()  # admitted at the measured speed, then the model stalls past the timeout
    try:
        with httpx.stream(
            "POST", f"{served.url}/v1/qa/stream", json=document(5), timeout=60
        ) as response:
            assert response.status_code == 200
            received = list(events(response))
    finally:
        slow.gate.set()
    name, error = received[-1]
    assert name == "error", received
    assert error["code"] == "timeout"
    assert "QA_REQUEST_TIMEOUT_S" in error["error"]
    assert error["request_id"] == response.headers["x-request-id"]


def _passes_settle(slow: SlowBackend, quiet_s: float = 1.0, limit_s: float = 30) -> int:
    """The pass count once it stopped moving for `quiet_s`."""
    deadline = time.monotonic() + limit_s
    last, since = slow.passes, time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.05)
        if slow.passes != last:
            last, since = slow.passes, time.monotonic()
        elif time.monotonic() - since > quiet_s:
            return last
    raise AssertionError("the model never went idle")


def _leave_early(url: str, path: str, request: dict[str, Any]) -> None:
    """Send the request, then go: a JSON caller times out, a stream reader stops reading."""
    with httpx.Client(timeout=httpx.Timeout(60, read=1.0)) as client:
        try:
            with client.stream("POST", f"{url}{path}", **request) as response:
                for name, data in events(response):
                    if name == "progress" and data["windows_done"] > 0:
                        return  # closes the connection
        except httpx.ReadTimeout:
            return
    raise AssertionError("the request ended before the client left")


def _sent_as(path: str, body: dict[str, Any]) -> dict[str, Any]:
    """`body` as each endpoint takes it (the server's own windows are 64 tokens too)."""
    text = {"context": body["context"], "question": body["question"]}
    if path == "/qas/":
        return {"data": text}
    if path.endswith(":predict"):
        return {"json": {"instances": [text]}}
    return {"json": body}


@pytest.mark.parametrize("path", ["/v1/qa", "/v1/qa/stream", "/qas/", "/v1/models/tiny:predict"])
def test_client_disconnect_drops_the_remaining_windows(
    serve: Any, path: str, caplog: pytest.LogCaptureFixture
) -> None:
    served = serve()
    slow = served.slow_down(0.1)
    _leave_early(
        served.url, path, _sent_as(path, document(300))
    )  # ~250 windows: ~60 passes of 4, ~6 s slowed
    passes_at_close = slow.passes
    assert passes_at_close > 0
    settled = _passes_settle(slow)
    # the pass running at the disconnect, and one more while the server notices: never the rest
    assert settled <= passes_at_close + 2, (passes_at_close, settled)
    assert served.metric("qa_cancelled_windows_total") > 150
    # logged and counted as a request the client left (a stream's headers said 200)
    route = path.replace("tiny", "{name}")
    logged = [r.getMessage() for r in caplog.records if f"POST {route} status=" in r.getMessage()]
    assert len(logged) == 1, logged
    assert f"POST {route} status=499 " in logged[0]
    assert served.metric(f'qa_http_requests_total{{method="POST",route="{route}",status="499"}}')
    # the replica is free for the next caller at once
    response = httpx.post(f"{served.url}/v1/qa", json=document(1), timeout=30)
    assert response.status_code == 200
    gc.collect()  # a future whose outcome nobody read logs an ERROR when it is collected
    assert not [r for r in caplog.records if "never retrieved" in r.getMessage()]


def test_openvino_steps_by_layer_and_answers_as_torch_does(serve: Any) -> None:
    """The default path on CPUs (OpenVINO) runs documents layer by layer: a document and a short
    question in flight together both get torch fp32's answers."""
    served = serve(backend="openvino-fp32")
    assert served.runtime.pipeline.steps_by_layer
    reference = serve()
    long_body, short_body = document(120), document(1, "¿Qué obra escribió Cervantes?")
    with ThreadPoolExecutor(2) as pool:
        long = pool.submit(httpx.post, f"{served.url}/v1/qa", json=long_body, timeout=120)
        short = httpx.post(f"{served.url}/v1/qa", json=short_body, timeout=60)
        got = [long.result(), short]
    for response, body in zip(got, (long_body, short_body), strict=True):
        assert response.status_code == 200, response.text
        expected = httpx.post(f"{reference.url}/v1/qa", json=body, timeout=120).json()
        assert response.json()["answers"][0]["answer"] == expected["answers"][0]["answer"]
        assert response.json()["num_windows"] == expected["num_windows"]

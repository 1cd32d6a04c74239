"""SIGTERM (what Kubernetes and docker send on stop) drains in-flight requests before exit."""

from __future__ import annotations

import signal
import threading
import time

import httpx

from tests.conftest import StartBackend
from tests.processes import SLOW_REQUEST

# 24 slow questions, about 2 s of work on 2 cores: SIGTERM lands while the model is busy with
# them, with seconds to spare after the 0.3 s check below (8 took 0.7 s, too close to it).
SLOW_BATCH = {"requests": [SLOW_REQUEST] * 24}


def test_sigterm_finishes_the_request_in_flight_then_exits(
    start_backend_process: StartBackend,
) -> None:
    # A busy shared machine may be 10x slower: the batch must not hit the request timeout.
    backend = start_backend_process(env={"QA_REQUEST_TIMEOUT_S": "150"})
    responses: list[httpx.Response] = []

    def slow_call() -> None:
        responses.append(httpx.post(f"{backend.url}/v1/qa/batch", json=SLOW_BATCH, timeout=180))

    baseline = _forward_passes(backend.url)
    caller = threading.Thread(target=slow_call)
    started = time.monotonic()
    caller.start()
    # Wait until the model is working on the request, then ask the server to stop.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and _forward_passes(backend.url) <= baseline:
        time.sleep(0.02)
    assert caller.is_alive(), "the request ended before SIGTERM could be sent"
    assert _forward_passes(backend.url) > baseline, "the request never reached the model"
    backend.proc.send_signal(signal.SIGTERM)
    signalled = time.monotonic()

    # While it drains, it takes no new work: the listening socket is closed (or it says 503).
    time.sleep(0.3)
    assert caller.is_alive(), "the request in flight ended right after SIGTERM"
    try:
        late = httpx.post(f"{backend.url}/v1/qa", json=SLOW_REQUEST, timeout=5)
        assert late.status_code == 503, late.text
    except httpx.ConnectError:
        pass

    exit_code = backend.proc.wait(timeout=180)
    caller.join(timeout=10)
    # uvicorn re-raises the signal after its graceful shutdown, so the status says "SIGTERM"
    # (143 in a shell, as Kubernetes reports it); a kill mid-drain would skip the lifespan end.
    assert exit_code in (0, -signal.SIGTERM), backend.log()
    assert "Application shutdown complete" in backend.log()
    (response,) = responses
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert len(results) == len(SLOW_BATCH["requests"])
    for result in results:
        assert result["num_windows"] > 50
        assert result["answers"], result
    # The answers were really still being computed when SIGTERM arrived.
    assert signalled - started < max(r["timings"]["total_ms"] for r in results) / 1000


def _forward_passes(url: str) -> float:
    """Forward passes run so far (qa_inference_seconds_count in /metrics)."""
    text = httpx.get(f"{url}/metrics", timeout=5).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("qa_inference_seconds_count")
    )

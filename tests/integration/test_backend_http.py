"""The backend as a real process over real HTTP: concurrency, liveness under load, overload."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import requests

from tests.conftest import StartBackend
from tests.processes import ServiceProcess

CONTEXT = " ".join(
    ["Miguel de Cervantes nació en Alcalá de Henares en 1547 y escribió Don Quijote."] * 30
)


def ask(url: str, timeout: float = 60) -> requests.Response:
    return requests.post(
        f"{url}/v1/qa", json={"context": CONTEXT, "question": "¿Dónde nació?"}, timeout=timeout
    )


def test_parallel_requests_all_answer_while_liveness_stays_fast(
    backend_server: ServiceProcess,
) -> None:
    url = backend_server.url
    with ThreadPoolExecutor(16) as pool:
        futures = [pool.submit(ask, url) for _ in range(64)]
        health_ms = []
        while not all(f.done() for f in futures):
            t0 = time.perf_counter()
            assert requests.get(f"{url}/health/live", timeout=5).status_code == 200
            health_ms.append((time.perf_counter() - t0) * 1000)
            time.sleep(0.02)
        responses = [f.result() for f in futures]
    assert [r.status_code for r in responses] == [200] * 64
    answers = {r.json()["answers"][0]["answer"] for r in responses}
    assert len(answers) == 1  # same input, same answer: no cross-talk between requests
    assert health_ms, "the load finished before liveness could be probed"
    # a blocked event loop would stall every probe; one slow probe is a busy machine (CI runs
    # tests in parallel on 2 cores), so the median is held tight and the worst only loosely
    assert sorted(health_ms)[len(health_ms) // 2] < 500, health_ms
    assert max(health_ms) < 2500, health_ms


def test_overload_gets_fast_503_with_retry_after_then_recovers(
    start_backend_process: StartBackend,
) -> None:
    backend = start_backend_process(env={"QA_QUEUE_SIZE": "2", "QA_MAX_BATCH_SIZE": "1"})
    with ThreadPoolExecutor(32) as pool:
        responses = list(pool.map(lambda _: ask(backend.url), range(64)))
    codes = [r.status_code for r in responses]
    refused = [r for r in responses if r.status_code == 503]
    assert set(codes) == {200, 503}, codes
    for response in refused:
        assert response.headers["retry-after"] == "1"
        assert response.json()["code"] == "overloaded"
    # Refused at once, not after queueing: faster than the requests that were served, and fast
    # in absolute terms (the median: 32 client threads share 2 cores with the server).
    refusal_s = sorted(r.elapsed.total_seconds() for r in refused)
    served_s = [r.elapsed.total_seconds() for r in responses if r.status_code == 200]
    assert refusal_s[len(refusal_s) // 2] < min(1.0, max(served_s)), (refusal_s, served_s)
    assert ask(backend.url).status_code == 200


def test_request_timeout_gives_504(start_backend_process: StartBackend) -> None:
    backend = start_backend_process(env={"QA_REQUEST_TIMEOUT_S": "0.001"})
    response = ask(backend.url)
    assert response.status_code == 504
    assert "QA_REQUEST_TIMEOUT_S" in response.json()["error"]
    assert requests.get(f"{backend.url}/health/live", timeout=5).status_code == 200

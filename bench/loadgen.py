"""Closed-loop async load generator: N clients send requests back to back for a bounded time.

While the clients run, a probe times the server's health endpoint every PROBE_INTERVAL_S on its
own connection, which shows whether the event loop stays responsive while the model is busy.
"""

from __future__ import annotations

import asyncio
import itertools
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import httpx
from workload import Pair

PROBE_INTERVAL_S = 0.05
REQUEST_TIMEOUT_S = 300.0

# Builds one HTTP request (method, path, kwargs for httpx) for a pair.
RequestBuilder = Callable[[Pair], tuple[str, str, dict[str, object]]]


@dataclass
class PhaseResult:
    concurrency: int
    duration_s: float
    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    health_ms: list[float] = field(default_factory=list)
    health_errors: int = 0
    # Server-reported stage timings (our backend's `timings`), per stage name.
    stages_ms: dict[str, list[float]] = field(default_factory=dict)

    @property
    def ok(self) -> int:
        return len(self.latencies_ms)

    @property
    def rps(self) -> float:
        return self.ok / self.duration_s if self.duration_s else 0.0

    def latency(self, q: float) -> float:
        return percentile(self.latencies_ms, q)

    def health(self, q: float) -> float:
        return percentile(self.health_ms, q)

    def merge(self, other: PhaseResult) -> PhaseResult:
        """Two rounds of the same phase as one (req/s over their summed durations)."""
        return PhaseResult(
            self.concurrency,
            self.duration_s + other.duration_s,
            self.latencies_ms + other.latencies_ms,
            self.errors + other.errors,
            sorted(set(self.error_samples + other.error_samples))[:5],
            self.health_ms + other.health_ms,
            self.health_errors + other.health_errors,
            {
                key: self.stages_ms.get(key, []) + other.stages_ms.get(key, [])
                for key in self.stages_ms.keys() | other.stages_ms.keys()
            },
        )


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (q in 0..100); NaN for no values."""
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=1000, method="inclusive")[round(q * 10) - 1]


async def _probe(
    client: httpx.AsyncClient, path: str, stop: asyncio.Event, result: PhaseResult
) -> None:
    while not stop.is_set():
        start = time.perf_counter()
        try:
            response = await client.get(path)
            if response.status_code == 200:
                result.health_ms.append((time.perf_counter() - start) * 1000)
            else:
                result.health_errors += 1
        except httpx.HTTPError:
            result.health_errors += 1
        await asyncio.sleep(PROBE_INTERVAL_S)


async def run_phase(
    base_url: str,
    build: RequestBuilder,
    pairs: Sequence[Pair],
    concurrency: int,
    duration_s: float,
    max_requests: int,
    health_path: str | None = None,
    warmup_requests: int = 0,
) -> PhaseResult:
    """Run `concurrency` closed-loop clients until duration_s or max_requests, whichever first."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    timeout = httpx.Timeout(REQUEST_TIMEOUT_S)
    async with (
        httpx.AsyncClient(base_url=base_url, limits=limits, timeout=timeout) as client,
        httpx.AsyncClient(base_url=base_url, timeout=timeout) as probe_client,
    ):
        for pair in pairs[:warmup_requests]:
            method, path, kwargs = build(pair)
            (await client.request(method, path, **kwargs)).raise_for_status()  # type: ignore[arg-type]

        result = PhaseResult(concurrency, 0.0)
        order = itertools.cycle(range(len(pairs)))
        sent = itertools.count()
        start = time.perf_counter()
        deadline = start + duration_s

        async def client_loop() -> None:
            while next(sent) < max_requests and time.perf_counter() < deadline:
                method, path, kwargs = build(pairs[next(order)])
                t0 = time.perf_counter()
                try:
                    response = await client.request(method, path, **kwargs)  # type: ignore[arg-type]
                except httpx.HTTPError as exc:
                    result.errors += 1
                    result.error_samples.append(type(exc).__name__)
                    continue
                if response.status_code == 200:
                    result.latencies_ms.append((time.perf_counter() - t0) * 1000)
                    body = response.json()
                    if isinstance(body, dict) and isinstance(body.get("timings"), dict):
                        for stage, ms in body["timings"].items():
                            result.stages_ms.setdefault(stage, []).append(float(ms))
                else:
                    result.errors += 1
                    result.error_samples.append(f"{response.status_code} {response.text[:120]}")

        stop = asyncio.Event()
        probe = (
            asyncio.create_task(_probe(probe_client, health_path, stop, result))
            if health_path
            else None
        )
        await asyncio.gather(*(client_loop() for _ in range(concurrency)))
        result.duration_s = time.perf_counter() - start
        stop.set()
        if probe:
            await probe
    result.error_samples = sorted(set(result.error_samples))[:5]
    return result

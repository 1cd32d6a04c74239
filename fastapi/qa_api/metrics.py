"""Prometheus metrics, one registry per app (so tests can build many apps)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from qa_api.inference.registry import ModelRegistry

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
WINDOW_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class Metrics:
    """Request, inference, queue and model metrics; also the scheduler's observer."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "qa_http_requests", "HTTP requests", ["method", "route", "status"], registry=r
        )
        buckets = LATENCY_BUCKETS
        self.latency = Histogram(
            "qa_http_request_seconds", "HTTP latency", ["route"], buckets=buckets, registry=r
        )
        self.inference = Histogram(
            "qa_inference_seconds", "Forward pass time", ["model"], buckets=buckets, registry=r
        )
        self.batch_size = Histogram(
            "qa_batch_windows", "Windows per forward pass", ["model"],
            buckets=(1, 2, 4, 8, 16, 32, 64), registry=r,
        )  # fmt: skip
        self.compute = Counter(
            "qa_compute_seconds", "Inference thread busy computing (per layer step)", ["model"],
            registry=r,
        )  # fmt: skip
        self.windows = Counter(
            "qa_windows", "Windows computed (rate() = windows per second)", ["model"], registry=r
        )
        self.throughput = Gauge(
            "qa_throughput_tokens_per_second", "Measured speed the deadline check uses (EWMA)",
            ["model"], registry=r,
        )  # fmt: skip
        self.request_windows = Histogram(
            "qa_request_windows", "Windows per admitted request", ["model"],
            buckets=WINDOW_BUCKETS, registry=r,
        )  # fmt: skip
        self.queue_wait = Histogram(
            "qa_queue_wait_seconds", "Admission to first computed step", ["model"],
            buckets=buckets, registry=r,
        )  # fmt: skip
        self.cancelled_windows = Counter(
            "qa_cancelled_windows", "Windows dropped before computing: caller gone or deadline",
            ["model", "reason"], registry=r,
        )  # fmt: skip
        self.answers = Counter("qa_answers", "Answered questions", ["model", "outcome"], registry=r)
        self.queue_depth = Gauge(
            "qa_queue_depth", "Requests tokenizing, queued or running", ["model"], registry=r
        )
        self.model_ready = Gauge("qa_model_ready", "1 when ready", ["model"], registry=r)
        self.load_time = Gauge("qa_model_load_seconds", "Load + warm-up", ["model"], registry=r)
        self.context_cache = Counter(
            "qa_context_cache_lookups", "Tokenized-context cache lookups (bm25 mode)", ["result"],
            registry=r,
        )  # fmt: skip
        self.context_cache_bytes = Gauge(
            "qa_context_cache_bytes", "Memory held by tokenized contexts", registry=r
        )
        self._cache_counted = {"hit": 0, "miss": 0}

    def on_step(self, model: str, seconds: float) -> None:
        self.compute.labels(model).inc(seconds)

    def on_batch(self, model: str, windows: int, seconds: float) -> None:
        self.inference.labels(model).observe(seconds)
        self.batch_size.labels(model).observe(windows)
        self.windows.labels(model).inc(windows)

    def on_admitted(self, model: str, windows: int) -> None:
        self.request_windows.labels(model).observe(windows)

    def on_started(self, model: str, queue_wait_s: float) -> None:
        self.queue_wait.labels(model).observe(queue_wait_s)

    def on_dropped(self, model: str, windows: int, reason: str) -> None:
        self.cancelled_windows.labels(model, reason).inc(windows)

    def on_answer(self, model: str, no_answer: bool) -> None:
        self.answers.labels(model, "no_answer" if no_answer else "answer").inc()

    def render(self, models: ModelRegistry) -> bytes:
        """Refresh the gauges read from the registry, then render the text format."""
        for model in models.models.values():
            self.model_ready.labels(model.name).set(model.status == "ready")
            depth = model.runtime.queue_depth if model.runtime else 0
            self.queue_depth.labels(model.name).set(depth)
            speed = model.runtime.tokens_per_s if model.runtime else None
            if speed is not None:
                self.throughput.labels(model.name).set(speed)
            if model.load_time_s is not None:
                self.load_time.labels(model.name).set(model.load_time_s)
        if models.contexts is not None:
            cache = models.contexts
            for result, total in (("hit", cache.hits), ("miss", cache.misses)):
                self.context_cache.labels(result).inc(total - self._cache_counted[result])
                self._cache_counted[result] = total
            self.context_cache_bytes.set(cache.nbytes)
        return generate_latest(self.registry)

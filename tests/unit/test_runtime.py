"""The runtime's queue: batching, bounded capacity, cancelled jobs, draining on close."""

from __future__ import annotations

import threading
from concurrent.futures import CancelledError
from pathlib import Path

import numpy as np
import pytest
from transformers import AutoTokenizer

from qa_api.inference.backends import TorchBackend
from qa_api.inference.errors import InvalidInputError, OverloadedError
from qa_api.inference.runtime import BatchingConfig, InferenceWorker, QARuntime
from qa_api.inference.types import QAOptions, QAQuery

QUERY = QAQuery("¿Dónde nace el Ebro?", "El río Ebro nace en Fontibre, en Cantabria.")


class ThreadRecordingBackend:
    """The real tiny model, noting which thread runs each forward pass."""

    def __init__(self, inner: TorchBackend) -> None:
        self.inner = inner
        self.name, self.device, self.dtype = inner.name, inner.device, inner.dtype
        self.threads: set[int] = set()

    def forward(
        self, input_ids: np.ndarray, attention_mask: np.ndarray, token_type_ids: np.ndarray
    ):  # type: ignore[no-untyped-def]
        self.threads.add(threading.get_ident())
        return self.inner.forward(input_ids, attention_mask, token_type_ids)


class GatedBackend:
    """The real tiny model behind a gate, so a test decides when forward passes may run."""

    def __init__(self, inner: TorchBackend) -> None:
        self.inner = inner
        self.name, self.device, self.dtype = inner.name, inner.device, inner.dtype
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.batches: list[tuple[int, int]] = []

    def forward(
        self, input_ids: np.ndarray, attention_mask: np.ndarray, token_type_ids: np.ndarray
    ):  # type: ignore[no-untyped-def]
        self.entered.set()
        self.gate.wait(10)
        self.batches.append(input_ids.shape)
        return self.inner.forward(input_ids, attention_mask, token_type_ids)


@pytest.fixture
def gated(tiny_model_dir: Path):  # type: ignore[no-untyped-def]
    backend = GatedBackend(TorchBackend.load(tiny_model_dir, "torch-fp32", "cpu"))
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    runtimes: list[QARuntime] = []

    def make(**batching: int) -> QARuntime:
        runtime = QARuntime("tiny", tokenizer, backend, 64, BatchingConfig(**batching))
        runtimes.append(runtime)
        return runtime

    yield backend, make
    backend.gate.set()
    for runtime in runtimes:
        runtime.close(5)


def test_queued_requests_are_batched_by_similar_length(gated) -> None:  # type: ignore[no-untyped-def]
    backend, make = gated
    runtime = make(max_batch_size=8, queue_size=16)
    first = runtime.submit([QUERY])  # occupies the worker at the gate
    assert backend.entered.wait(5)
    short = [QAQuery("¿Qué?", "Hola.") for _ in range(3)]
    long_context = "El río Ebro nace en Fontibre. " * 20
    long = [QAQuery("¿Dónde?", long_context) for _ in range(3)]
    futures = runtime.submit(short + long)
    backend.gate.set()
    results = [f.result(10) for f in first + futures]
    assert all(r.num_windows == 1 for r in results)
    # after the first request: one batch of the 3 long windows and one of the 3 short ones,
    # each padded only to its own length
    assert backend.batches[1:] == [(3, backend.batches[1][1]), (3, backend.batches[2][1])]
    assert backend.batches[1][1] > 3 * backend.batches[2][1]


def test_full_queue_refuses_at_once(gated) -> None:  # type: ignore[no-untyped-def]
    backend, make = gated
    runtime = make(queue_size=2, max_batch_size=1)
    runtime.submit([QUERY])
    assert backend.entered.wait(5)
    runtime.submit([QUERY, QUERY])  # fills the queue
    with pytest.raises(OverloadedError, match="capacity"):
        runtime.submit([QUERY])
    assert runtime.queue_depth == 2


def test_cancelled_jobs_are_skipped(gated) -> None:  # type: ignore[no-untyped-def]
    backend, make = gated
    runtime = make(max_batch_size=1)
    runtime.submit([QUERY])
    assert backend.entered.wait(5)
    (abandoned,) = runtime.submit([QUERY])
    assert abandoned.cancel()
    (kept,) = runtime.submit([QUERY])
    backend.gate.set()
    assert kept.result(10).answers
    with pytest.raises(CancelledError):
        abandoned.result(0)
    assert len(backend.batches) == 2


def test_close_drains_queued_requests_then_refuses(gated) -> None:  # type: ignore[no-untyped-def]
    backend, make = gated
    runtime = make(max_batch_size=1)
    futures = runtime.submit([QUERY, QUERY, QUERY])
    assert backend.entered.wait(5)
    closer = threading.Thread(target=runtime.close, args=(10,))
    closer.start()
    backend.gate.set()
    closer.join(10)
    assert all(f.result(0).answers for f in futures)
    with pytest.raises(OverloadedError, match="shutting down"):
        runtime.submit([QUERY])


def test_bad_query_fails_alone(gated) -> None:  # type: ignore[no-untyped-def]
    backend, make = gated
    backend.gate.set()
    runtime = make()
    bad = QAQuery("¿Qué?", "Hola.", QAOptions(max_seq_len=32, doc_stride=40))
    good, failing = runtime.submit([QUERY, bad])
    assert good.result(10).answers
    with pytest.raises(InvalidInputError):
        failing.result(10)


def test_padding_to_a_multiple_does_not_change_answers(tiny_model_dir: Path) -> None:
    backend = TorchBackend.load(tiny_model_dir, "torch-fp32", "cpu")
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    results = []
    for multiple in (1, 16, 64):
        runtime = QARuntime(
            "tiny", tokenizer, backend, 64, BatchingConfig(pad_to_multiple_of=multiple)
        )
        runtime.warm_up_shapes(128)
        results.append(runtime.answer(QAQuery(QUERY.question, QUERY.context, QAOptions(top_k=3))))
        runtime.close(5)
    exact, *padded = results
    for result in padded:
        assert [(a.start, a.end) for a in result.answers] == [
            (a.start, a.end) for a in exact.answers
        ]
        for a, b in zip(result.answers, exact.answers, strict=True):
            assert a.score == pytest.approx(b.score, rel=1e-4)


def test_models_sharing_a_worker_run_on_one_thread(tiny_model_dir: Path) -> None:
    """Warm-up and requests of every model run on the worker thread, never on the caller's."""
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    backends = [
        ThreadRecordingBackend(TorchBackend.load(tiny_model_dir, "torch-fp32", "cpu"))
        for _ in range(2)
    ]
    worker = InferenceWorker()
    runtimes = [
        QARuntime(f"m{i}", tokenizer, backend, 64, BatchingConfig(), worker=worker)
        for i, backend in enumerate(backends)
    ]
    for runtime in runtimes:
        runtime.warm_up_shapes(64)
    futures = [f for runtime in runtimes for f in runtime.submit([QUERY, QUERY])]
    assert all(f.result(10).answers for f in futures)
    worker.close(5)
    (first,), (second,) = (backend.threads for backend in backends)
    assert first == second != threading.get_ident()
    with pytest.raises(OverloadedError, match="shutting down"):
        runtimes[1].submit([QUERY])
    with pytest.raises(OverloadedError, match="shutting down"):
        runtimes[0].warm_up_shapes(64)  # refused, never left waiting on a stopped thread


def test_a_failing_warm_up_reaches_the_caller(tiny_model_dir: Path) -> None:
    class BrokenBackend(ThreadRecordingBackend):
        def forward(self, *arrays: np.ndarray):  # type: ignore[no-untyped-def,override]
            raise RuntimeError("out of memory")

    backend = BrokenBackend(TorchBackend.load(tiny_model_dir, "torch-fp32", "cpu"))
    runtime = QARuntime(
        "tiny", AutoTokenizer.from_pretrained(tiny_model_dir), backend, 64, BatchingConfig()
    )
    with pytest.raises(RuntimeError, match="out of memory"):
        runtime.warm_up_shapes(64)
    runtime.close(5)

"""The scheduler around the pipeline: window batches, fairness, cancellation, deadlines, draining.

The real tiny model runs every forward pass; test backends wrap it to gate, slow down or record
the passes. Assertions are on order and counts, never on durations.
"""

from __future__ import annotations

import dataclasses
import itertools
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import CancelledError
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from transformers import AutoTokenizer

from qa_api.config import Settings
from qa_api.inference.backends import Logits, TorchBackend, run_steps
from qa_api.inference.errors import (
    InferenceTimeoutError,
    InputTooLargeError,
    InvalidInputError,
    OverloadedError,
)
from qa_api.inference.pipeline import Pipeline
from qa_api.inference.runtime import QARuntime
from qa_api.inference.scheduler import Policy, Scheduler, SchedulerConfig
from qa_api.inference.types import QAQuery
from tests.served import served_options

DEFAULTS = served_options()
QUERY = QAQuery("¿Dónde nace el Ebro?", "El río Ebro nace en Fontibre, en Cantabria.", DEFAULTS)
WINDOWED = served_options(max_seq_len=48, doc_stride=8)  # short windows: many of them per text
SENTENCE = "Miguel de Cervantes escribió la obra número {i} en Alcalá de Henares. "


def long_query(sentences: int) -> QAQuery:
    context = "".join(SENTENCE.format(i=i) for i in range(sentences))
    return QAQuery("¿Dónde escribió Cervantes?", context, WINDOWED)


def short_query() -> QAQuery:
    return QAQuery("¿Dónde nace?", "El río Ebro nace en Fontibre.", WINDOWED)


SETTINGS = Settings()


def config(policy: Policy = "shortest_first", **overrides: Any) -> SchedulerConfig:
    """The served scheduler settings, with `overrides`."""
    return dataclasses.replace(SETTINGS.scheduler_config(), policy=policy, **overrides)


class RecordingBackend:
    """The real tiny model; each pass may wait at a gate and sleep, and is recorded with a tag."""

    def __init__(self, inner: TorchBackend, delay_s: float = 0.0) -> None:
        self.inner = inner
        self.name, self.device, self.dtype = inner.name, inner.device, inner.dtype
        self.delay_s = delay_s
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()
        self.shapes: list[tuple[int, ...]] = []
        self.rows: list[list[int]] = []  # the question's tokens set each row's texts apart
        self.threads: set[int] = set()

    def forward(
        self, input_ids: np.ndarray, attention_mask: np.ndarray, token_type_ids: np.ndarray
    ) -> Logits:
        self.entered.set()
        self.gate.wait(10)
        self.threads.add(threading.get_ident())
        self.shapes.append(input_ids.shape)
        self.rows.append([hash(tuple(row[1:4].tolist())) for row in input_ids])
        time.sleep(self.delay_s)
        return self.inner.forward(input_ids, attention_mask, token_type_ids)


@pytest.fixture
def tokenizer(tiny_model_dir: Path) -> Any:
    return AutoTokenizer.from_pretrained(tiny_model_dir)


@pytest.fixture
def make(tiny_model_dir: Path, tokenizer: Any) -> Iterator[Callable[..., tuple[QARuntime, Any]]]:
    """Factory: a runtime with its own scheduler over a RecordingBackend; closed after the test."""
    made: list[tuple[QARuntime, RecordingBackend]] = []

    def build(delay_s: float = 0.0, **overrides: Any) -> tuple[QARuntime, RecordingBackend]:
        backend = RecordingBackend(TorchBackend.load(tiny_model_dir, "torch-fp32", "cpu"), delay_s)
        pipeline = Pipeline(
            "tiny", tokenizer, backend, SETTINGS.max_question_len, SETTINGS.pad_to_multiple_of
        )
        runtime = QARuntime.alone(pipeline, config(**overrides))
        made.append((runtime, backend))
        return runtime, backend

    yield build
    for runtime, backend in made:
        backend.gate.set()
        runtime.close(5)


def test_windows_of_queued_requests_are_batched_by_similar_length(make: Any) -> None:
    runtime, backend = make(max_batch_size=8, max_step_tokens=4096)
    backend.gate.clear()
    first = runtime.submit([QUERY], 60)  # occupies the inference thread at the gate
    assert backend.entered.wait(5)
    short = [QAQuery("¿Qué?", "Hola.", DEFAULTS) for _ in range(3)]
    long = [QAQuery("¿Dónde?", "El río Ebro nace en Fontibre. " * 20, DEFAULTS) for _ in range(3)]
    later = runtime.submit(short + long, 60)
    time.sleep(0.2)  # let the tokenizer thread admit them before the gate opens
    backend.gate.set()
    results = [f.result(10) for f in first.results + later.results]
    assert all(r.num_windows == 1 for r in results)
    # after the first request: the 3 short windows together (fewest windows left, oldest first),
    # then the 3 long ones, each batch padded only to its own length
    assert [shape[0] for shape in backend.shapes[1:]] == [3, 3]
    assert backend.shapes[2][1] > 3 * backend.shapes[1][1]


def test_timings_count_tokenizing_apart_from_waiting(make: Any) -> None:
    runtime, _ = make()
    encode = runtime.pipeline.encode

    def slow_encode(query: QAQuery) -> Any:
        time.sleep(0.3)
        return encode(query)

    runtime.pipeline.encode = slow_encode  # type: ignore[method-assign]
    timings = runtime.answer(QUERY, timeout=30).timings
    assert timings.tokenize_ms >= 300
    assert timings.queue_ms < 150  # an idle scheduler: nothing to wait for
    parts = timings.queue_ms + timings.tokenize_ms + timings.inference_ms + timings.decode_ms
    assert parts <= timings.total_ms + 1


def test_a_short_request_overtakes_a_long_one_between_its_batches(make: Any) -> None:
    """Shortest first: the short question is answered while most of the document is left."""
    runtime, backend = make(delay_s=0.05, max_batch_size=2)
    long = runtime.submit([long_query(60)], 120)
    total = long.accepted.result(10)
    assert total > 20
    while len(backend.shapes) < 2:  # the document is running
        time.sleep(0.01)
    short = runtime.submit([short_query()], 120)
    result = short.results[0].result(30)
    done_when_short_answered = long.progress().done
    assert result.num_windows == 1
    assert done_when_short_answered < total / 2, (done_when_short_answered, total)
    assert long.results[0].result(60).num_windows == total


def test_a_one_step_backend_holds_a_token_budget_so_a_newcomer_waits_one_step(
    make: Any,
) -> None:
    """A backend that cannot pause between layers: each batch of the document stays within
    QA_MAX_STEP_TOKENS, and a short question arriving mid-batch is the very next batch."""
    runtime, backend = make(delay_s=0.02, max_batch_size=4, max_step_tokens=100)
    assert not runtime.pipeline.steps_by_layer  # RecordingBackend runs a batch in one step
    backend.gate.clear()
    long = runtime.submit([long_query(60)], 120)
    total = long.accepted.result(10)
    assert backend.entered.wait(5)  # the document's first batch is in the model
    short = runtime.submit([short_query(), short_query()], 120)
    short.accepted.result(10)
    backend.gate.set()
    assert all(f.result(30).num_windows == 1 for f in short.results)
    assert long.results[0].result(60).num_windows == total
    # 48-token windows: two fit 100 tokens, not max_batch_size's four; the two short windows
    # (padded to 16 or 32 tokens) share the second batch
    document = [shape for i, shape in enumerate(backend.shapes) if i != 1]
    assert max(rows for rows, _ in document) == 2
    assert len(document) <= total // 2 + 1, (document, total)  # the last, shorter window alone
    assert all(rows * width <= 100 for rows, width in backend.shapes)
    assert backend.shapes[1][0] == 2
    assert backend.shapes[1][1] < 48
    assert len(set(backend.rows[1])) == 1  # both rows are the short question's
    assert backend.rows[1][0] not in backend.rows[0]


def test_round_robin_alternates_between_requests(make: Any) -> None:
    runtime, backend = make(policy="round_robin", delay_s=0.02, max_batch_size=1)
    first, second = long_query(20), long_query(20)
    second = QAQuery("¿Quién escribió?", second.context, WINDOWED)  # another question
    backend.gate.clear()
    a = runtime.submit([first], 120)
    b = runtime.submit([second], 120)
    a.accepted.result(10), b.accepted.result(10)
    backend.gate.set()
    a.results[0].result(60), b.results[0].result(60)
    tags = [rows[0] for rows in backend.rows]
    switches = sum(x != y for x, y in itertools.pairwise(tags))
    assert switches > len(tags) / 2, tags  # taking turns, not one after the other


def test_cancelled_request_windows_are_dropped_before_the_next_batch(make: Any) -> None:
    runtime, backend = make(delay_s=0.02, max_batch_size=2)
    backend.gate.clear()
    doomed = runtime.submit([long_query(60)], 120)
    total = doomed.accepted.result(10)
    assert backend.entered.wait(5)
    doomed.cancel()  # the caller is gone while the first batch is at the gate
    backend.gate.set()
    kept = runtime.submit([QUERY], 60)
    assert kept.results[0].result(10).answers
    with pytest.raises(CancelledError):
        doomed.results[0].result(0)
    # the batch already in the model, then the next request: nothing else of the document
    assert len(backend.shapes) == 2, (len(backend.shapes), total)


def test_deadline_passed_drops_the_rest_and_says_timeout(make: Any) -> None:
    runtime, backend = make(delay_s=0.3, max_batch_size=1)
    submission = runtime.submit([long_query(40)], 0.5)  # no speed measured: not refused
    with pytest.raises(InferenceTimeoutError, match="QA_REQUEST_TIMEOUT_S"):
        submission.results[0].result(30)
    passes = len(backend.shapes)
    time.sleep(1.0)
    assert len(backend.shapes) <= passes + 1  # at most the pass that was running
    assert passes < submission.accepted.result(0)


def test_work_longer_than_the_timeout_is_refused_before_any_compute(make: Any) -> None:
    runtime, backend = make(delay_s=0.05, max_batch_size=1)
    runtime.warm_up_shapes(48)  # measures the slowed speed: ~20 windows per second at most
    warm_passes = len(backend.shapes)
    submission = runtime.submit([long_query(200)], 2.0)
    with pytest.raises(InputTooLargeError) as refused:
        submission.accepted.result(10)
    message = refused.value.message
    assert "windows" in message
    assert "QA_REQUEST_TIMEOUT_S" in message
    assert "shorter text" in message
    assert "passages" in message
    with pytest.raises(InputTooLargeError):
        submission.results[0].result(0)
    assert len(backend.shapes) == warm_passes  # nothing ran for it
    # a batch is told about its texts, not about one text
    batch = runtime.submit([long_query(100), long_query(100)], 2.0)
    with pytest.raises(InputTooLargeError) as refused:
        batch.accepted.result(10)
    assert refused.value.message.startswith("The 2 texts make ")
    assert "fewer or shorter texts" in refused.value.message
    # what fits is still answered
    assert runtime.answer(short_query(), timeout=30).num_windows == 1


def test_full_queue_refuses_at_once(make: Any) -> None:
    runtime, backend = make(queue_size=2, max_batch_size=1)
    backend.gate.clear()
    runtime.submit([QUERY], 60)
    assert backend.entered.wait(5)
    runtime.submit([QUERY], 60)  # fills the queue
    with pytest.raises(OverloadedError, match="capacity"):
        runtime.submit([QUERY], 60)
    assert runtime.queue_depth == 2


def test_close_drains_admitted_requests_then_refuses(make: Any) -> None:
    runtime, backend = make(max_batch_size=1)
    backend.gate.clear()
    submission = runtime.submit([QUERY, QUERY, QUERY], 60)
    assert backend.entered.wait(5)
    closer = threading.Thread(target=runtime.close, args=(10,))
    closer.start()
    backend.gate.set()
    closer.join(10)
    assert all(f.result(0).answers for f in submission.results)
    with pytest.raises(OverloadedError, match="shutting down"):
        runtime.submit([QUERY], 60)


def test_close_past_its_deadline_drops_the_rest(make: Any) -> None:
    runtime, backend = make(delay_s=0.1, max_batch_size=1)
    submission = runtime.submit([long_query(60)], 120)
    total = submission.accepted.result(10)
    runtime.close(0.3)
    with pytest.raises(OverloadedError, match="shut down"):
        submission.results[0].result(5)
    assert len(backend.shapes) < total


def test_bad_query_fails_alone(make: Any) -> None:
    runtime, _ = make()
    bad = QAQuery("¿Qué?", "Hola.", served_options(max_seq_len=32, doc_stride=40))
    submission = runtime.submit([QUERY, bad], 60)
    good, failing = submission.results
    assert good.result(10).answers
    with pytest.raises(InvalidInputError):
        failing.result(10)


def test_progress_counts_windows_and_estimates_what_is_left(make: Any) -> None:
    runtime, _ = make(delay_s=0.01, max_batch_size=2)
    runtime.warm_up_shapes(48)
    seen: list[Any] = []
    submission = runtime.submit([long_query(10)], 60, seen.append)
    result = submission.results[0].result(30)
    assert [p.done for p in seen] == sorted(p.done for p in seen)
    assert seen[-1].done == seen[-1].total == result.num_windows
    assert all(p.remaining_s is not None for p in seen)
    assert seen[0].remaining_s > seen[-1].remaining_s == 0  # type: ignore[operator]


class PassKinds(TorchBackend):
    """The real tiny model, recording how each batch ran: whole (`forward`) or by layer."""

    def __init__(self, inner: TorchBackend) -> None:
        super().__init__(inner.model, inner.name, inner.device, inner.dtype)
        self.kinds: list[tuple[str, int]] = []  # ("whole" | "layers", windows)

    def forward(self, *arrays: np.ndarray) -> Logits:
        self.kinds.append(("whole", len(arrays[0])))
        return super().forward(*arrays)

    def forward_steps(self, *arrays: np.ndarray) -> Any:
        self.kinds.append(("layers", len(arrays[0])))
        return super().forward_steps(*arrays)


@pytest.mark.parametrize(
    ("policy", "short_kind"), [("shortest_first", "whole"), ("round_robin", "layers")]
)
def test_only_batches_a_newcomer_could_overtake_run_layer_by_layer(
    tiny_model_dir: Path, tokenizer: Any, policy: Policy, short_kind: str
) -> None:
    """Shortest first: a batch of requests' last windows cannot be overtaken (a newcomer has at
    least one window, ties go to the oldest), so it runs whole, the faster pass; a document's
    batches run layer by layer."""
    backend = PassKinds(TorchBackend.load(tiny_model_dir, "torch-fp32", "cpu"))
    pipeline = Pipeline("tiny", tokenizer, backend, 64, 16)
    runtime = QARuntime.alone(pipeline, config(policy, max_batch_size=2))
    try:
        runtime.submit([short_query()], 60).results[0].result(30)
        runtime.submit([long_query(10)], 60).results[0].result(30)
    finally:
        runtime.close(5)
    assert backend.kinds[0] == (short_kind, 1)
    assert backend.kinds[1] == ("layers", 2)  # the document's first batch, more windows to come


def test_stepped_forward_equals_the_plain_forward(tiny_model_dir: Path, tokenizer: Any) -> None:
    """The layer-by-layer pass the scheduler can pause gives the model's own logits."""
    backend = TorchBackend.load(tiny_model_dir, "torch-fp32", "cpu")
    pipeline = Pipeline("tiny", tokenizer, backend, 64, 16)
    encoded = pipeline.encode(long_query(5))
    windows = encoded.windows[:3]
    steps = 0
    forward = pipeline.forward(windows)
    while True:
        try:
            next(forward)
            steps += 1
        except StopIteration as stop:
            stepped = stop.value
            break
    assert steps == 2  # the tiny model's two layers
    for window, (start, end) in zip(windows, stepped, strict=True):
        ids = window.input_ids[None, :]
        plain_start, plain_end = backend.forward(
            ids, np.ones_like(ids), window.token_type_ids[None]
        )
        np.testing.assert_allclose(start, plain_start[0], atol=1e-5)
        np.testing.assert_allclose(end, plain_end[0], atol=1e-5)


def test_padding_to_a_multiple_does_not_change_answers(
    tiny_model_dir: Path, tokenizer: Any
) -> None:
    backend = TorchBackend.load(tiny_model_dir, "torch-fp32", "cpu")
    query = QAQuery(QUERY.question, QUERY.context, served_options(top_k=3))
    results = []
    for multiple in (1, 16, 64):
        pipeline = Pipeline("tiny", tokenizer, backend, 64, multiple)
        encoded = pipeline.encode(query)
        logits = run_steps(pipeline.forward(encoded.windows))
        results.append(pipeline.decode(query, encoded, logits))
    exact, *padded = results
    for result in padded:
        assert [(a.start, a.end) for a in result.answers] == [
            (a.start, a.end) for a in exact.answers
        ]
        for a, b in zip(result.answers, exact.answers, strict=True):
            assert a.score == pytest.approx(b.score, rel=1e-4)


def test_models_sharing_a_scheduler_run_on_one_thread(tiny_model_dir: Path, tokenizer: Any) -> None:
    """Warm-up and requests of every model run on the inference thread, never on the caller's."""
    backends = [
        RecordingBackend(TorchBackend.load(tiny_model_dir, "torch-fp32", "cpu")) for _ in range(2)
    ]
    scheduler = Scheduler(config())
    runtimes = [
        QARuntime(
            Pipeline(
                f"m{i}", tokenizer, backend, SETTINGS.max_question_len, SETTINGS.pad_to_multiple_of
            ),
            scheduler,
        )
        for i, backend in enumerate(backends)
    ]
    for runtime in runtimes:
        runtime.warm_up_shapes(64)
    submissions = [runtime.submit([QUERY, QUERY], 60) for runtime in runtimes]
    assert all(f.result(10).answers for s in submissions for f in s.results)
    scheduler.close(5)
    (first,), (second,) = (backend.threads for backend in backends)
    assert first == second != threading.get_ident()
    with pytest.raises(OverloadedError, match="shutting down"):
        runtimes[1].submit([QUERY], 60)
    with pytest.raises(OverloadedError, match="shutting down"):
        runtimes[0].warm_up_shapes(64)  # refused, never left waiting on a stopped thread


def test_a_failing_warm_up_reaches_the_caller(make: Any) -> None:
    runtime, backend = make()

    def broken(*arrays: np.ndarray) -> Logits:
        raise RuntimeError("out of memory")

    backend.forward = broken
    with pytest.raises(RuntimeError, match="out of memory"):
        runtime.warm_up_shapes(64)

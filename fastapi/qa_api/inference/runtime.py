"""The runtime: a model's queue, batching and decoding, run by the process's inference worker.

One thread, the `InferenceWorker`, runs every model of the process: tokenizing, forward passes,
decoding and warm-up. Fast tokenizers and models must not be entered from two threads at once,
and torch's OpenMP pool belongs to the thread that calls into it: a second thread running a model
brings a second pool onto the same cores, libgomp then sleeps at its barriers instead of spinning,
and every forward pass gets about 1.5x slower, even with the other model idle (measured on 2 cores).
The models share the device anyway, so the worker runs them one batch at a time, oldest first.

Each model's `QARuntime` has a bounded queue. The worker drains what is queued (up to
`max_batch_size` windows, waiting at most `max_batch_wait_ms` for more), sorts windows by length
and runs them in batches of similar lengths, so a window is padded only to its batch-mates, never
to max_seq_len. Batch lengths are rounded up to a multiple of `pad_to_multiple_of` (16 by
default): CPU kernels cache their setup per input shape (about 10 ms for a new shape in bf16), and
a few known shapes, all warmed up at start, cost less than a few padding tokens.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol

import numpy as np

from qa_api.inference import decoding, features
from qa_api.inference.backends import ModelBackend
from qa_api.inference.errors import OverloadedError, QAError
from qa_api.inference.types import QAQuery, QAResult, Timings

logger = logging.getLogger(__name__)

# A batch-mate may be this much shorter than the longest window of its batch (padding waste cap).
MIN_LENGTH_RATIO = 0.8
MAX_POSITIONS = 512  # padding never goes past BERT's position table


class RuntimeObserver(Protocol):
    """Receives runtime events (the HTTP layer turns them into metrics)."""

    def on_batch(self, model: str, windows: int, seconds: float) -> None: ...


@dataclass(frozen=True, slots=True)
class BatchingConfig:
    max_batch_size: int = 8  # windows per forward pass
    max_batch_wait_ms: float = 0.0
    queue_size: int = 64  # queued requests before new ones are refused
    pad_to_multiple_of: int = 16  # 1 = exact lengths


@dataclass(eq=False)
class _Job:
    query: QAQuery
    future: Future[QAResult]
    submitted: float = field(default_factory=time.perf_counter)
    encoded: features.EncodedQuery | None = None
    timings: Timings = field(default_factory=Timings)


@dataclass(eq=False)
class _Call:
    """Work for the inference thread other than a query (warm-up)."""

    fn: Callable[[], None]
    future: Future[None] = field(default_factory=Future)
    submitted: float = field(default_factory=time.perf_counter)

    def run(self) -> None:
        if self.future.set_running_or_notify_cancel():
            try:
                self.fn()
                self.future.set_result(None)
            except Exception as exc:
                self.future.set_exception(exc)


class InferenceWorker:
    """The one thread that runs every model attached to it (see the module docstring)."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.closed = False
        self._runtimes: list[QARuntime] = []
        self._thread = threading.Thread(target=self._run, name="qa-inference", daemon=True)
        self._thread.start()

    def attach(self, runtime: QARuntime) -> None:
        with self.cond:
            self._runtimes.append(runtime)

    def close(self, timeout: float | None = None) -> None:
        """Refuse new work, finish what every runtime has queued, stop the thread."""
        with self.cond:
            self.closed = True
            self.cond.notify_all()
        self._thread.join(timeout)

    def _run(self) -> None:
        while (work := self._next_work()) is not None:
            runtime, items = work
            runtime.execute(items)

    def _next_work(self) -> tuple[QARuntime, list[_Job] | _Call] | None:
        """Block for work: the runtime with the oldest queued item, and what it runs next.

        None means closed and drained: the thread stops.
        """
        with self.cond:
            while not (busy := [runtime for runtime in self._runtimes if runtime.pending]):
                if self.closed:
                    return None
                self.cond.wait()
            runtime = min(busy, key=lambda runtime: runtime.pending[0].submitted)
            return runtime, runtime.take_work()


class QARuntime:
    """Answers QAQuery objects with one model, on an inference worker thread.

    Without a `worker`, the runtime starts its own; models served together share one.
    """

    def __init__(
        self,
        name: str,
        tokenizer: Any,
        backend: ModelBackend,
        max_question_len: int,
        batching: BatchingConfig,
        observer: RuntimeObserver | None = None,
        worker: InferenceWorker | None = None,
    ) -> None:
        self.name = name
        self.tokenizer = tokenizer
        self.backend = backend
        self.max_question_len = max_question_len
        self.batching = batching
        self.observer = observer
        self.pending: deque[_Job | _Call] = deque()
        self._worker = worker or InferenceWorker()
        self._worker.attach(self)

    @property
    def queue_depth(self) -> int:
        return len(self.pending)

    def submit(self, queries: Sequence[QAQuery]) -> list[Future[QAResult]]:
        """Queue the queries together, or raise OverloadedError if they do not all fit."""
        jobs = [_Job(query, Future()) for query in queries]
        self._enqueue(jobs)
        return [job.future for job in jobs]

    def answer(self, query: QAQuery, timeout: float | None = None) -> QAResult:
        """Blocking convenience for in-process callers (CLI, warm-up)."""
        return self.submit([query])[0].result(timeout)

    def warm_up_shapes(self, max_seq_len: int) -> None:
        """Run one forward pass at every padded length a request can have (before serving)."""
        call = _Call(partial(self._forward_every_length, max_seq_len))
        self._enqueue([call])
        call.future.result()

    def close(self, timeout: float | None = None) -> None:
        """Stop the worker after the queued work: every runtime sharing it stops too."""
        self._worker.close(timeout)

    def _enqueue(self, items: Sequence[_Job | _Call]) -> None:
        with self._worker.cond:
            if self._worker.closed:
                raise OverloadedError("The server is shutting down. Retry on another replica.")
            if len(self.pending) + len(items) > self.batching.queue_size:
                raise OverloadedError(
                    f"The server is at capacity ({self.batching.queue_size} queued requests). "
                    "Retry shortly."
                )
            self.pending.extend(items)
            self._worker.cond.notify()

    # -- on the worker thread ---------------------------------------------------------------

    def take_work(self) -> list[_Job] | _Call:
        """Take queued jobs up to the batch size, waiting briefly for more (worker lock held)."""
        head = self.pending.popleft()
        if isinstance(head, _Call):
            return head
        jobs = [head]
        deadline = time.perf_counter() + self.batching.max_batch_wait_ms / 1000
        while len(jobs) < self.batching.max_batch_size:
            if self.pending:
                if isinstance(self.pending[0], _Call):
                    break
                jobs.append(self.pending.popleft())  # type: ignore[arg-type]
                continue
            remaining = deadline - time.perf_counter()
            if remaining <= 0 or self._worker.closed:
                break
            self._worker.cond.wait(remaining)
        # Jobs whose caller gave up (timeout) are skipped; the others are marked running.
        return [job for job in jobs if job.future.set_running_or_notify_cancel()]

    def execute(self, work: list[_Job] | _Call) -> None:
        if isinstance(work, _Call):
            work.run()
            return
        try:
            self._process(work)
        except Exception as exc:  # never let one bad batch kill the worker
            logger.exception("inference failed for a batch of %d requests", len(work))
            for job in work:
                if not job.future.done():
                    job.future.set_exception(exc)

    def _forward_every_length(self, max_seq_len: int) -> None:
        for length in sorted({self._padded_length(n) for n in range(1, max_seq_len + 1)}):
            ids = np.ones((1, length), dtype=np.int64)
            self.backend.forward(ids, ids, np.zeros_like(ids))

    def _padded_length(self, longest: int) -> int:
        """A batch's length: its longest window rounded up to the multiple, within BERT's table."""
        step = self.batching.pad_to_multiple_of
        return max(longest, min(-(-longest // step) * step, MAX_POSITIONS))

    def _process(self, jobs: list[_Job]) -> None:
        if not jobs:
            return
        started = time.perf_counter()
        ready: list[_Job] = []
        for job in jobs:
            job.timings.queue_ms = (started - job.submitted) * 1000
            t0 = time.perf_counter()
            try:
                job.encoded = features.encode(
                    self.tokenizer,
                    job.query.question,
                    job.query.context,
                    job.query.options,
                    self.max_question_len,
                )
            except QAError as exc:
                job.future.set_exception(exc)
                continue
            job.timings.tokenize_ms = (time.perf_counter() - t0) * 1000
            ready.append(job)
        if not ready:
            return
        logits = self._forward_all(ready)
        for job in ready:
            t0 = time.perf_counter()
            assert job.encoded is not None
            starts, ends = zip(*logits[job], strict=True)
            options = job.query.options
            answers, null_score = decoding.decode(
                job.encoded, job.query.context, list(starts), list(ends), options
            )
            best = answers[0].score if answers else 0.0
            job.timings.decode_ms = (time.perf_counter() - t0) * 1000
            job.timings.total_ms = (time.perf_counter() - job.submitted) * 1000
            job.future.set_result(
                QAResult(
                    answers=answers,
                    no_answer=options.handle_impossible_answer and null_score > best,
                    no_answer_probability=null_score,
                    num_windows=len(job.encoded.windows),
                    timings=job.timings,
                )
            )

    def _forward_all(self, jobs: list[_Job]) -> dict[_Job, list[tuple[np.ndarray, np.ndarray]]]:
        """Run every window of every job; batches group windows of similar length."""
        items = [(job, i, w) for job in jobs for i, w in enumerate(job.encoded.windows)]  # type: ignore[union-attr]
        items.sort(key=lambda item: len(item[2]), reverse=True)
        results: dict[_Job, list[Any]] = {job: [None] * len(job.encoded.windows) for job in jobs}  # type: ignore[union-attr]
        batch: list[tuple[_Job, int, features.Window]] = []
        for item in items:
            if batch and (
                len(batch) == self.batching.max_batch_size
                or len(item[2]) < MIN_LENGTH_RATIO * len(batch[0][2])
            ):
                self._forward_batch(batch, results)
                batch = []
            batch.append(item)
        self._forward_batch(batch, results)
        return results

    def _forward_batch(
        self, batch: list[tuple[_Job, int, features.Window]], results: dict[_Job, list[Any]]
    ) -> None:
        input_ids = np.zeros((len(batch), self._padded_length(len(batch[0][2]))), dtype=np.int64)
        token_type_ids = np.zeros_like(input_ids)
        attention_mask = np.zeros_like(input_ids)
        for row, (_, _, window) in enumerate(batch):
            n = len(window)
            input_ids[row, :n] = window.input_ids
            token_type_ids[row, :n] = window.token_type_ids
            attention_mask[row, :n] = 1
        t0 = time.perf_counter()
        start_logits, end_logits = self.backend.forward(input_ids, attention_mask, token_type_ids)
        seconds = time.perf_counter() - t0
        if self.observer is not None:
            self.observer.on_batch(self.name, len(batch), seconds)
        for row, (job, index, window) in enumerate(batch):
            n = len(window)
            results[job][index] = (start_logits[row, :n], end_logits[row, :n])
        for job in {job for job, _, _ in batch}:
            job.timings.inference_ms += seconds * 1000

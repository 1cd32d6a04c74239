"""The scheduler: queues, fairness, deadlines, cancellation and futures around the model pipelines.

Threads. One inference thread (`qa-inference`) runs every model of the process: forward passes,
decoding and warm-up. Torch's OpenMP pool belongs to the thread that calls into it: a second
thread running a model brings a second pool onto the same cores, libgomp then sleeps at its
barriers instead of spinning, and every forward pass gets about 1.5x slower, even with the other
model idle (measured on 2 cores). One tokenizer thread (`qa-tokenize`) encodes every request:
fast tokenizers must not be entered from two threads at once, the event loop must not block on a
50,000-character text, and a request's window count is known (for the deadline check below)
before it reaches the inference thread.

Windows, not requests, are the unit of work. Each forward batch is built from the pending windows
of all requests of one model (windows of similar length, pipeline.fits), and a batch runs one
encoder layer per step (`forward_steps` of the torch and OpenVINO backends, for BERT-family
models; ONNX Runtime and other architectures run a batch in one step). Under shortest_first a
batch of requests' last windows cannot be overtaken, so it runs in one step, the faster pass
(OpenVINO's whole model is about 5% faster than its parts).
Before every step the scheduler drops the windows of requests whose caller is gone (future
cancelled: timeout, client disconnect, shutdown) or whose deadline passed, drops a batch whose
requests are all gone, and picks which request's batch advances:

- `shortest_first` (default): the request with the fewest windows left, the oldest on a tie; its
  batch preempts a longer one between layers. A short question that arrives while a document is
  running waits for one layer of the document's batch, then runs alone.
- `round_robin`: requests take turns step by step (processor sharing): a short question arriving
  next to a document runs at half speed, so it takes about twice its idle time plus a layer.

bench/long_context.py measured both on 2 cores (bench/RESULTS.md): a short question next to a
document had a p50 1.65x its idle p50 with shortest_first (torch-bf16; 1.70x with OpenVINO), and
10.4x with round_robin. Hence shortest_first; the document loses only the short questions'
compute. Backends that cannot pause
between layers (ONNX Runtime; models whose layers are not found) switch requests between batches
only, so there a batch also holds at most `max_step_tokens` padded tokens (always at least one
window): a short question waits for about one full-length window of the document, not for
`max_batch_size` of them, while short windows still share a batch. The cap holds even for a
request alone, since the newcomer it is for cannot be foreseen when a batch starts. So that no
request starves under a stream of short ones, a request whose deadline is about to become
unreachable at the measured speed goes first (earliest deadline).

Deadlines that fit the work: throughput is measured per model as an EWMA of tokens per second
of compute over real batches; warm-up gives the first figure, conservative: full-length windows
alone (median of 3), the slowest tokens per second there are. A submission whose windows would take
longer than its time left, even with the device to itself (with a 25% margin: ESTIMATE_MARGIN),
is refused with InputTooLargeError before any compute.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, InvalidStateError, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TypeVar

from qa_api.inference.backends import Logits
from qa_api.inference.errors import (
    InferenceTimeoutError,
    InputTooLargeError,
    OverloadedError,
    QAError,
)
from qa_api.inference.features import EncodedQuery
from qa_api.inference.pipeline import Forward, Pipeline, WarmUp, fits
from qa_api.inference.types import QAQuery, QAResult, Timings

logger = logging.getLogger(__name__)

Policy = Literal["shortest_first", "round_robin"]
T = TypeVar("T")

EWMA_WEIGHT = 0.2  # weight of the newest batch in the throughput estimate
# A request goes first once its slack (time left minus estimated work) is under this share of
# its estimated work: it would otherwise miss its deadline behind shorter requests.
URGENT_SLACK = 0.25
# The measured speed is an average that lags a machine getting busier: a text estimated to need
# more than 1 / ESTIMATE_MARGIN of its time left is refused, not computed into a 504.
ESTIMATE_MARGIN = 1.25


@dataclass(frozen=True, slots=True)
class SchedulerConfig:
    max_batch_size: int  # windows per forward pass
    max_step_tokens: int  # padded tokens per batch of a backend that runs it in one step
    max_batch_wait_ms: float  # how long a batch that is not full waits for more windows
    queue_size: int  # requests per model (tokenizing, queued or running) before refusing
    policy: Policy


@dataclass(frozen=True, slots=True)
class Progress:
    """Where a submission stands: windows computed of all, seconds so far, seconds to go."""

    done: int
    total: int
    elapsed_s: float
    remaining_s: float | None  # None until the model's speed is known


class SchedulerObserver(Protocol):
    """Receives scheduler events (the HTTP layer turns them into metrics)."""

    def on_step(self, model: str, seconds: float) -> None: ...
    def on_batch(self, model: str, windows: int, seconds: float) -> None: ...
    def on_admitted(self, model: str, windows: int) -> None: ...
    def on_started(self, model: str, queue_wait_s: float) -> None: ...
    def on_dropped(self, model: str, windows: int, reason: str) -> None: ...


@dataclass(slots=True)
class Throughput:
    """A model's measured speed: tokens (padded) per second of compute, as an EWMA."""

    tokens_per_s: float | None = None

    def update(self, tokens: int, seconds: float, weight: float = EWMA_WEIGHT) -> None:
        if seconds <= 0:
            return
        rate = tokens / seconds
        previous = self.tokens_per_s
        self.tokens_per_s = rate if previous is None else weight * rate + (1 - weight) * previous

    def seconds_for(self, tokens: int) -> float | None:
        return None if self.tokens_per_s is None else tokens / self.tokens_per_s


@dataclass(eq=False)
class _Job:
    """One query's windows on their way through the inference thread."""

    pipeline: Pipeline
    query: QAQuery
    encoded: EncodedQuery
    future: Future[QAResult]
    submission: Submission
    timings: Timings
    waiting: list[int]  # windows not in any batch yet
    logits: list[Logits | None]
    done: int = 0
    started: float | None = None
    tokens_pending: int = 0  # padded tokens of the windows not computed yet (kept, not summed)

    def __post_init__(self) -> None:
        self.tokens_pending = sum(self.window_tokens(i) for i in range(self.total))

    @property
    def total(self) -> int:
        return len(self.encoded.windows)

    @property
    def remaining(self) -> int:
        return self.total - self.done

    def window_tokens(self, index: int) -> int:
        return self.pipeline.padded_length(len(self.encoded.windows[index]))

    def tokens_left(self) -> int:
        return self.tokens_pending


@dataclass(eq=False)
class _Batch:
    pipeline: Pipeline
    rows: list[tuple[_Job, int]]
    forward: Forward
    width: int
    seconds: float = 0.0

    @property
    def jobs(self) -> set[_Job]:
        return {job for job, _ in self.rows}


@dataclass(eq=False)
class _Call:
    """Work for the inference thread other than a query (warm-up)."""

    fn: Callable[[], Any]
    future: Future[Any] = field(default_factory=Future)

    def run(self) -> None:
        if self.future.set_running_or_notify_cancel():
            try:
                self.future.set_result(self.fn())
            except Exception as exc:
                self.future.set_exception(exc)


class Submission:
    """Queries submitted together: one deadline, their results, their progress, and cancel()."""

    def __init__(
        self,
        scheduler: Scheduler,
        pipeline: Pipeline,
        queries: Sequence[QAQuery],
        timeout_s: float,
        on_progress: Callable[[Progress], None] | None,
    ) -> None:
        self.submitted = time.perf_counter()
        self.deadline = self.submitted + timeout_s
        self.timeout_s = timeout_s
        self.queries = list(queries)
        self.results: list[Future[QAResult]] = [Future() for _ in queries]
        # Resolves with the submission's window count once tokenized and admitted.
        self.accepted: Future[int] = Future()
        self.jobs: list[_Job] = []
        self._scheduler = scheduler
        self._pipeline = pipeline
        self._on_progress = on_progress

    def cancel(self) -> None:
        """The caller is gone: drop whatever has not been computed yet."""
        self.accepted.cancel()
        for future in self.results:
            future.cancel()
        self._scheduler.wake()

    def progress(self) -> Progress:
        done = sum(job.done for job in self.jobs)
        total = sum(job.total for job in self.jobs)
        tokens_left = sum(job.tokens_left() for job in self.jobs)
        remaining = self._scheduler.seconds_for(self._pipeline, tokens_left)
        return Progress(done, total, time.perf_counter() - self.submitted, remaining)

    def notify(self) -> None:
        if self._on_progress is not None:
            self._on_progress(self.progress())


def deadline_passed(timeout_s: float) -> InferenceTimeoutError:
    """The error of a request whose deadline passed (scheduler and service alike)."""
    return InferenceTimeoutError(
        f"No answer within {timeout_s:g} s (QA_REQUEST_TIMEOUT_S). Send a shorter context or "
        "retry when the server is less busy."
    )


def _settle(future: Future[T], result: T | None = None, exc: BaseException | None = None) -> None:
    """Set a future's outcome unless its caller cancelled it meanwhile."""
    try:
        if exc is not None:
            future.set_exception(exc)
        else:
            future.set_result(result)  # type: ignore[arg-type]
    except InvalidStateError:
        pass


class Scheduler:
    """The process's inference and tokenizer threads, shared by every model (module docstring)."""

    def __init__(self, config: SchedulerConfig, observer: SchedulerObserver | None = None) -> None:
        self.config = config
        self.observer = observer
        self._cond = threading.Condition()
        self._closed = False
        self._jobs: list[_Job] = []  # admitted, unfinished; in admission order
        self._batches: list[_Batch] = []  # started, unfinished
        self._calls: list[_Call] = []
        self._in_system: dict[str, int] = {}  # per model: submitted queries not finished yet
        self._throughput: dict[str, Throughput] = {}
        self._turn = 0
        self._tokenizer = ThreadPoolExecutor(1, thread_name_prefix="qa-tokenize")
        self._thread = threading.Thread(target=self._run, name="qa-inference", daemon=True)
        self._thread.start()

    # -- any thread ------------------------------------------------------------------------

    def submit(
        self,
        pipeline: Pipeline,
        queries: Sequence[QAQuery],
        timeout_s: float,
        on_progress: Callable[[Progress], None] | None = None,
    ) -> Submission:
        """Queue queries together (one deadline); OverloadedError if they do not all fit."""
        submission = Submission(self, pipeline, queries, timeout_s, on_progress)
        name = pipeline.name
        with self._cond:
            self._check_open()
            held = self._in_system.get(name, 0)
            if held + len(queries) > self.config.queue_size:
                raise OverloadedError(
                    f"The server is at capacity ({self.config.queue_size} queued requests). "
                    "Retry shortly."
                )
            self._in_system[name] = held + len(queries)
        for future in submission.results:
            future.add_done_callback(lambda _: self._release(name))
        self._tokenizer.submit(self._prepare, submission, pipeline)
        return submission

    def call(self, fn: Callable[[], T]) -> Future[T]:
        """Run fn on the inference thread, before any queued query (warm-up)."""
        call = _Call(fn)
        with self._cond:
            self._check_open()
            self._calls.append(call)
            self._cond.notify()
        return call.future

    def record(self, name: str, warm_up: WarmUp) -> None:
        """Warm-up's measurement: the model's first throughput figure."""
        with self._cond:
            self._throughput.setdefault(name, Throughput()).update(
                warm_up.tokens, warm_up.seconds, weight=1.0
            )

    def tokens_per_s(self, name: str) -> float | None:
        with self._cond:
            return self._throughput.get(name, Throughput()).tokens_per_s

    def seconds_for(self, pipeline: Pipeline, tokens: int) -> float | None:
        with self._cond:
            return self._throughput.get(pipeline.name, Throughput()).seconds_for(tokens)

    def queue_depth(self, name: str) -> int:
        with self._cond:
            return self._in_system.get(name, 0)

    def wake(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def close(self, timeout: float | None = None) -> None:
        """Refuse new work; finish the admitted work for up to `timeout` s, then drop the rest."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._tokenizer.shutdown(wait=True)  # what is queued there fails fast: closed
        self._thread.join(timeout)
        if self._thread.is_alive():
            with self._cond:
                message = "The server shut down before the answer was ready. Retry."
                for job in list(self._jobs):
                    self._drop(job, len(job.waiting), "shutdown")
                    _settle(job.future, exc=OverloadedError(message))
                self._cond.notify_all()
            self._thread.join(timeout)

    def _check_open(self) -> None:
        if self._closed:
            raise OverloadedError("The server is shutting down. Retry on another replica.")

    def _release(self, name: str) -> None:
        with self._cond:
            self._in_system[name] -= 1

    # -- tokenizer thread ------------------------------------------------------------------

    def _prepare(self, submission: Submission, pipeline: Pipeline) -> None:
        """Encode the queries, check the work fits the deadline, admit it (or fail it)."""
        try:
            with self._cond:
                self._check_open()
            jobs = self._encode(submission, pipeline)
            failed = [f.exception() for f in submission.results if f.done() and not f.cancelled()]
            if not jobs and failed:
                raise failed[0]  # type: ignore[misc]
            tokens = sum(job.tokens_left() for job in jobs)
            windows = sum(job.total for job in jobs)
            with self._cond:
                self._check_open()
                self._check_fits(submission, pipeline, jobs, tokens, windows)
                submission.jobs = jobs
                self._jobs.extend(jobs)
                self._cond.notify()
        except Exception as exc:
            _settle(submission.accepted, exc=exc)
            for future in submission.results:
                _settle(future, exc=exc)
            return
        if self.observer is not None:
            for job in jobs:
                self.observer.on_admitted(pipeline.name, job.total)
        _settle(submission.accepted, windows)

    def _encode(self, submission: Submission, pipeline: Pipeline) -> list[_Job]:
        jobs = []
        for query, future in zip(submission.queries, submission.results, strict=True):
            if future.done():  # cancelled before it was tokenized
                continue
            started = time.perf_counter()
            try:
                encoded = pipeline.encode(query)
            except QAError as exc:  # this query alone fails
                _settle(future, exc=exc)
                continue
            timings = Timings(tokenize_ms=(time.perf_counter() - started) * 1000)
            n = len(encoded.windows)
            jobs.append(
                _Job(pipeline, query, encoded, future, submission, timings, [*range(n)], [None] * n)
            )
        return jobs

    def _check_fits(
        self,
        submission: Submission,
        pipeline: Pipeline,
        jobs: list[_Job],
        tokens: int,
        windows: int,
    ) -> None:
        """InputTooLargeError when the windows cannot finish in time at the measured speed."""
        needed = self._throughput.get(pipeline.name, Throughput()).seconds_for(tokens)
        if needed is not None:
            needed *= ESTIMATE_MARGIN
        left = submission.deadline - time.perf_counter()
        if left <= 0:  # the deadline passed in the tokenizer's queue: a timeout, not a size
            raise deadline_passed(submission.timeout_s)
        if needed is None or needed <= left:
            return
        chars = sum(len(job.query.context) for job in jobs)
        fitting = int(chars * max(left, 0) / needed)
        if len(jobs) > 1:  # a batch: its texts share the one deadline
            texts = f"The {len(jobs)} texts make"
            send = (
                f"fewer or shorter texts (about {fitting:,} characters in all fit; each request "
                "has its own timeout)"
            )
        else:
            texts, send = "The text makes", f"a shorter text (about {fitting:,} characters fit)"
        raise InputTooLargeError(
            f"{texts} {windows} windows of up to {jobs[0].query.options.max_seq_len} "
            f"tokens: about {needed:.0f} s of computing at this server's measured speed, more "
            f"than the {submission.timeout_s:g} s timeout (QA_REQUEST_TIMEOUT_S). Send {send}, "
            'or "passages": {"mode": "bm25"} to read only the passages most similar to the '
            "question, or raise the timeout."
        )

    # -- inference thread ------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            try:
                work = self._next()
            except Exception:  # a bug here must not leave every caller waiting for its timeout
                logger.exception("the scheduler failed to pick work; dropping what is admitted")
                self._fail_all(RuntimeError("the scheduler failed; retry"))
                continue
            if work is None:
                return
            if isinstance(work, _Call):
                work.run()
            else:
                self._step(work)

    def _fail_all(self, exc: Exception) -> None:
        with self._cond:
            for job in list(self._jobs):
                self._drop(job, len(job.waiting), "failed")
                _settle(job.future, exc=exc)
            self._batches.clear()

    def _next(self) -> _Batch | _Call | None:
        """Block for work: a call, or the batch to advance by one step. None: closed and idle."""
        with self._cond:
            while True:
                if self._calls:
                    return self._calls.pop(0)
                self._drop_gone()
                if self._jobs and not self._hold_for_batch():
                    break
                if self._closed and not self._jobs:
                    return None
                self._cond.wait(self._batch_wait_left() if self._jobs else None)
            job = self._choose()
            batch = next((b for b in self._batches if job in b.jobs), None)
            if batch is None:
                batch = self._new_batch(job)
                self._batches.append(batch)
            return batch

    def _drop_gone(self) -> None:
        """Forget the jobs whose caller is gone or whose deadline passed, and their batches."""
        now = time.perf_counter()
        for job in list(self._jobs):
            if not job.future.done() and now >= job.submission.deadline:
                _settle(job.future, exc=deadline_passed(job.submission.timeout_s))
                self._drop(job, len(job.waiting), "deadline")
            elif job.future.done():
                self._drop(job, len(job.waiting), "cancelled")
        for batch in list(self._batches):
            if all(job.future.done() for job in batch.jobs):
                self._batches.remove(batch)
                self._report_dropped(batch.pipeline.name, len(batch.rows), "cancelled")

    def _drop(self, job: _Job, windows: int, reason: str) -> None:
        if job in self._jobs:
            self._jobs.remove(job)
        job.waiting.clear()
        self._report_dropped(job.pipeline.name, windows, reason)

    def _report_dropped(self, model: str, windows: int, reason: str) -> None:
        if windows and self.observer is not None:
            self.observer.on_dropped(model, windows, reason)

    def _hold_for_batch(self) -> bool:
        """Whether to wait a little for more windows before starting a batch (max_batch_wait)."""
        if self.config.max_batch_wait_ms <= 0 or self._batches or self._closed:
            return False
        waiting = sum(len(job.waiting) for job in self._jobs)
        return waiting < self.config.max_batch_size and self._batch_wait_left() > 0

    def _batch_wait_left(self) -> float:
        oldest = min(job.submission.submitted for job in self._jobs)
        return oldest + self.config.max_batch_wait_ms / 1000 - time.perf_counter()

    def _choose(self) -> _Job:
        """The job whose work advances next (module docstring: policies, urgency)."""
        now = time.perf_counter()
        urgent = []
        for job in self._jobs:
            needed = self._throughput.get(job.pipeline.name, Throughput()).seconds_for(
                job.tokens_left()
            )
            if needed is not None and 0 <= job.submission.deadline - now - needed < (
                URGENT_SLACK * needed
            ):
                urgent.append(job)
        if urgent:
            return min(urgent, key=lambda job: job.submission.deadline)
        if self.config.policy == "round_robin":
            self._turn += 1
            return self._jobs[self._turn % len(self._jobs)]
        return min(self._jobs, key=lambda job: job.remaining)  # min keeps the oldest on a tie

    def _new_batch(self, lead: _Job) -> _Batch:
        """A batch led by `lead`'s next window, filled with similar-length windows of its model."""
        if self.config.policy == "round_robin":
            start = self._jobs.index(lead)
            order = self._jobs[start:] + self._jobs[:start]
        else:
            order = sorted(self._jobs, key=lambda job: (job is not lead, job.remaining))
        rows: list[tuple[_Job, int]] = []
        lengths: list[int] = []
        pipeline = lead.pipeline
        budget = None if pipeline.steps_by_layer else self.config.max_step_tokens

        def joins(length: int) -> bool:
            if len(rows) == self.config.max_batch_size:
                return False
            if not lengths:
                return True
            width = pipeline.padded_length(max(length, *lengths))
            within = budget is None or (len(rows) + 1) * width <= budget
            return within and fits(lengths, length)

        for job in order:
            if len(rows) == self.config.max_batch_size:
                break
            if job.pipeline is not lead.pipeline:
                continue
            left = []
            for index in job.waiting:
                length = len(job.encoded.windows[index])
                if joins(length):
                    rows.append((job, index))
                    lengths.append(length)
                else:
                    left.append(index)
            job.waiting = left
        windows = [job.encoded.windows[index] for job, index in rows]
        # Under shortest_first nothing can overtake a batch of last windows (a newcomer has at
        # least one window, and ties go to the oldest), so it runs in one step, the faster way.
        pausable = self.config.policy == "round_robin" or any(job.remaining > 1 for job, _ in rows)
        return _Batch(
            pipeline,
            rows,
            pipeline.forward(windows, pausable),
            pipeline.padded_length(max(lengths)),
        )

    def _step(self, batch: _Batch) -> None:
        name = batch.pipeline.name
        started = time.perf_counter()
        if batch.seconds == 0:
            self._start(batch, started)
        try:
            next(batch.forward)
            logits = None
        except StopIteration as stop:
            logits = stop.value
        except Exception as exc:  # never let one bad batch kill the thread
            logger.exception("inference failed for a batch of %d windows", len(batch.rows))
            with self._cond:
                self._batches.remove(batch)
                for job in batch.jobs:
                    _settle(job.future, exc=exc)
            return
        seconds = time.perf_counter() - started
        batch.seconds += seconds
        if self.observer is not None:
            self.observer.on_step(name, seconds)
        if logits is not None:
            self._finish(batch, logits)

    def _start(self, batch: _Batch, now: float) -> None:
        for job in batch.jobs:
            if job.started is None:
                job.started = now
                # waiting only: for the tokenizer thread, then for the first compute step
                waited_ms = (now - job.submission.submitted) * 1000
                job.timings.queue_ms = max(0.0, waited_ms - job.timings.tokenize_ms)
                if self.observer is not None:
                    self.observer.on_started(job.pipeline.name, now - job.submission.submitted)

    def _finish(self, batch: _Batch, logits: list[Logits]) -> None:
        name = batch.pipeline.name
        with self._cond:
            self._batches.remove(batch)
            tokens = len(batch.rows) * batch.width
            self._throughput.setdefault(name, Throughput()).update(tokens, batch.seconds)
        if self.observer is not None:
            self.observer.on_batch(name, len(batch.rows), batch.seconds)
        for (job, index), window_logits in zip(batch.rows, logits, strict=True):
            job.logits[index] = window_logits
            job.done += 1
            job.tokens_pending -= job.window_tokens(index)
        for job in batch.jobs:
            job.timings.inference_ms += batch.seconds * 1000
            if job.remaining == 0:
                self._complete(job)
        for submission in {job.submission for job in batch.jobs}:
            submission.notify()

    def _complete(self, job: _Job) -> None:
        with self._cond:
            if job in self._jobs:
                self._jobs.remove(job)
        if job.future.done():
            return
        started = time.perf_counter()
        try:
            decoded = job.pipeline.decode(job.query, job.encoded, job.logits)  # type: ignore[arg-type]
        except Exception as exc:
            logger.exception("decoding failed")
            _settle(job.future, exc=exc)
            return
        job.timings.decode_ms = (time.perf_counter() - started) * 1000
        job.timings.total_ms = (time.perf_counter() - job.submission.submitted) * 1000
        selection = job.encoded.selection
        _settle(
            job.future,
            QAResult(
                answers=decoded.answers,
                no_answer=decoded.no_answer,
                no_answer_probability=decoded.no_answer_probability,
                num_windows=selection.num_windows if selection else job.total,
                timings=job.timings,
                passages=selection,
            ),
        )

"""Answering requests: checks limits, resolves options, awaits the scheduler within the deadline.

This is the async bridge between the routes and the thread-based scheduler; it knows no HTTP.
Whatever ends the wait early (the timeout, the caller gone, an error) cancels the submission,
so the windows not computed yet are dropped before the next batch step.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from dataclasses import asdict
from typing import Any, TypeVar

from qa_api.config import Settings
from qa_api.inference.errors import (
    ClientGoneError,
    InputTooLargeError,
    InvalidInputError,
    QAError,
)
from qa_api.inference.registry import ModelRegistry, ServedModel
from qa_api.inference.scheduler import Progress, Submission, deadline_passed
from qa_api.inference.types import QAOptions, QAQuery, QAResult, resolve_doc_stride
from qa_api.metrics import Metrics
from qa_api.schemas import (
    AnswerOut,
    PassagesOut,
    QARequest,
    QAResponse,
    ReadWindowOut,
    TimingsOut,
)

logger = logging.getLogger(__name__)

# A stream sends progress at least this often, even while one long batch runs: a client that
# can stop only between events (a Streamlit script run) stops within this much.
PROGRESS_EVERY_S = 0.5
# Resolves when the caller has gone (the route's view of a client disconnect).
Gone = Callable[[], Awaitable[object]]
T = TypeVar("T")


class AnswerService:
    def __init__(self, settings: Settings, models: ModelRegistry, metrics: Metrics) -> None:
        self.settings = settings
        self.models = models
        self.metrics = metrics

    async def answer(
        self, requests: Sequence[QARequest], gone: Gone | None = None
    ) -> list[QAResponse]:
        """Answer all requests (in order); they are queued together so they batch together.

        The routes hold a batch to QA_MAX_BATCH_ITEMS before its items are validated (deps.py).
        """
        s = self.settings
        deadline = time.perf_counter() + s.request_timeout_s
        resolved = []
        for i, request in enumerate(requests):
            try:
                resolved.append(self._query(request))
            except QAError as exc:
                if len(requests) > 1:  # a batch: say which item (from 0, as `details` count)
                    exc.message = f"item {i}: {exc.message}"
                raise
        by_model: dict[str, list[int]] = {}
        for i, (model, _) in enumerate(resolved):
            by_model.setdefault(model.name, []).append(i)
        submissions: list[Submission] = []
        futures: dict[int, asyncio.Future[QAResult]] = {}
        watcher = _watch(gone)
        ordered: asyncio.Future[list[QAResult]] | None = None
        try:
            for indices in by_model.values():
                runtime = self.models.runtime_of(resolved[indices[0]][0])
                submission = runtime.submit([resolved[i][1] for i in indices], s.request_timeout_s)
                submissions.append(submission)
                futures.update(
                    zip(indices, map(asyncio.wrap_future, submission.results), strict=True)
                )
            ordered = asyncio.gather(*(futures[i] for i in range(len(requests))))
            results = await self._until(ordered, deadline, watcher)
        finally:
            if watcher is not None:
                watcher.cancel()
            for submission in submissions:  # all or nothing; a no-op for what is answered
                submission.cancel()
            if ordered is not None:  # its parts fail once cancelled; nobody awaits it then
                ordered.add_done_callback(_seen)
        responses = []
        for (model, _), result in zip(resolved, results, strict=True):
            self.metrics.on_answer(model.name, result.no_answer)
            responses.append(_to_response(model.name, result))
        return responses

    async def stream(
        self, request: QARequest, gone: Gone | None = None
    ) -> AsyncGenerator[Progress | QAResponse, None]:
        """Progress while the windows are computed, then the response.

        The first item comes once the request is tokenized and admitted, so the errors that
        refuse a request (size, windowing, the deadline estimate) are raised before it.
        """
        deadline = time.perf_counter() + self.settings.request_timeout_s
        model, query = self._query(request)
        name, runtime = model.name, self.models.runtime_of(model)
        loop = asyncio.get_running_loop()
        updates: asyncio.Queue[Progress] = asyncio.Queue()

        def on_progress(progress: Progress) -> None:  # on the scheduler's threads
            loop.call_soon_threadsafe(updates.put_nowait, progress)

        submission = runtime.submit([query], self.settings.request_timeout_s, on_progress)
        watcher = _watch(gone)  # one for the whole stream, not one per event
        try:
            await self._until(asyncio.wrap_future(submission.accepted), deadline, watcher)
            yield submission.progress()  # admitted: the window count is known
            result = asyncio.wrap_future(submission.results[0])
            while True:
                update = asyncio.ensure_future(updates.get())
                either: set[asyncio.Future[Any]] = {result, update}
                try:
                    both = asyncio.wait(
                        either, timeout=PROGRESS_EVERY_S, return_when=asyncio.FIRST_COMPLETED
                    )
                    await self._until(both, deadline, watcher)
                finally:
                    update.cancel()
                if result.done():
                    break
                if update.done():
                    latest = update.result()
                    while not updates.empty():  # a slow reader gets the latest, not a backlog
                        latest = updates.get_nowait()
                else:  # a long batch: the same counts, fresher times
                    latest = submission.progress()
                yield latest
            answered = result.result()
        finally:
            if watcher is not None:
                watcher.cancel()
            submission.cancel()
        self.metrics.on_answer(name, answered.no_answer)
        yield _to_response(name, answered)

    async def _until(
        self, work: Awaitable[T], deadline: float, watcher: asyncio.Future[object] | None
    ) -> T:
        """Await `work` until the deadline or until `watcher` says the caller is gone."""
        task = asyncio.ensure_future(work)
        waiting: set[asyncio.Future[Any]] = {task} if watcher is None else {task, watcher}
        finished = False
        try:
            left = max(0.0, deadline - time.perf_counter())
            await asyncio.wait(waiting, timeout=left, return_when=asyncio.FIRST_COMPLETED)
            finished = task.done()
        finally:
            if not task.done():
                task.cancel()
        if finished:
            return task.result()
        if watcher is not None and watcher.done() and not watcher.cancelled():
            raise ClientGoneError("The client closed the connection; its work was dropped.")
        raise deadline_passed(self.settings.request_timeout_s)

    def _query(self, request: QARequest) -> tuple[ServedModel, QAQuery]:
        """The served model and the runtime query, after the size and range checks."""
        s = self.settings
        bm25 = request.passages.mode == "bm25"
        if bm25 and len(request.context) > s.max_document_chars:
            raise InputTooLargeError(
                f"The context has {len(request.context)} characters; the limit is "
                f"{s.max_document_chars} (QA_MAX_DOCUMENT_CHARS). Send a shorter text."
            )
        if not bm25 and len(request.context) > s.max_context_chars:
            raise InputTooLargeError(
                f"The context has {len(request.context)} characters; the limit for reading it "
                f"all is {s.max_context_chars} (QA_MAX_CONTEXT_CHARS). Send a shorter text, or "
                "read only the passages most similar to the question (up to "
                f'{s.max_document_chars} characters) with "passages": {{"mode": "bm25"}} in a '
                "JSON request to /v1/qa, /v1/qa/batch or /v1/qa/stream."
            )
        if len(request.question) > s.max_question_chars:
            raise InputTooLargeError(
                f"The question has {len(request.question)} characters; the limit is "
                f"{s.max_question_chars} (QA_MAX_QUESTION_CHARS). Shorten the question."
            )
        # The request's own value; the default's range is Settings' to check (QA_TOP_K).
        if request.top_k is not None and request.top_k > s.max_top_k:
            raise InvalidInputError(
                f"top_k is {request.top_k}; it must be between 1 and {s.max_top_k} (QA_MAX_TOP_K)."
            )
        model = self.models.get(request.model)
        defaults = model.defaults
        options = QAOptions(
            top_k=request.top_k or defaults.top_k,
            max_answer_len=request.max_answer_len or defaults.max_answer_len,
            max_seq_len=request.max_seq_len or defaults.max_seq_len,
            # A caller's max_seq_len brings the pipeline's stride for it, unless doc_stride is sent.
            doc_stride=(
                resolve_doc_stride(request.max_seq_len, request.doc_stride)
                if request.max_seq_len
                else request.doc_stride or defaults.doc_stride
            ),
            handle_impossible_answer=(
                defaults.handle_impossible_answer
                if request.handle_impossible_answer is None
                else request.handle_impossible_answer
            ),
            bm25_top_n=(request.passages.top_n or s.passages_top_n) if bm25 else None,
            bm25_share=s.passages_share if request.passages.top_n is None else 0.0,
        )
        return model, QAQuery(request.question, request.context, options)


def _seen(future: asyncio.Future[Any]) -> None:
    """Retrieve a future's outcome, so asyncio does not log it as 'never retrieved'."""
    if not future.cancelled():
        future.exception()


def _watch(gone: Gone | None) -> asyncio.Future[object] | None:
    """A task that resolves when the caller has gone; the caller cancels it when done."""
    return asyncio.ensure_future(gone()) if gone is not None else None


def _to_response(model: str, result: QAResult) -> QAResponse:
    return QAResponse(
        model=model,
        answers=[AnswerOut(**asdict(a)) for a in result.answers],
        no_answer=result.no_answer,
        no_answer_probability=result.no_answer_probability,
        num_windows=result.num_windows,
        timings=TimingsOut(**asdict(result.timings)),
        passages=(
            PassagesOut(read=[ReadWindowOut(**asdict(w)) for w in result.passages.read])
            if result.passages
            else None
        ),
    )

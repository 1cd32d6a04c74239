"""Answering requests: checks limits, resolves options, awaits the runtime with a timeout.

This is the async bridge between the routes and the thread-based runtime; it knows no HTTP.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import asdict

from qa_api.config import Settings
from qa_api.inference.errors import InferenceTimeoutError, InputTooLargeError, InvalidInputError
from qa_api.inference.registry import ModelRegistry
from qa_api.inference.types import QAOptions, QAQuery, QAResult, resolve_doc_stride
from qa_api.metrics import Metrics
from qa_api.schemas import AnswerOut, QARequest, QAResponse, TimingsOut

logger = logging.getLogger(__name__)


class AnswerService:
    def __init__(self, settings: Settings, models: ModelRegistry, metrics: Metrics) -> None:
        self.settings = settings
        self.models = models
        self.metrics = metrics

    async def answer(self, requests: Sequence[QARequest]) -> list[QAResponse]:
        """Answer all requests (in order); they are queued together so they batch together."""
        s = self.settings
        if len(requests) > s.max_batch_items:
            raise InputTooLargeError(
                f"{len(requests)} items in one call; the limit is {s.max_batch_items} "
                "(QA_MAX_BATCH_ITEMS). Split the batch."
            )
        resolved = [self._query(r) for r in requests]
        by_model: dict[str, list[int]] = {}
        for i, (name, _) in enumerate(resolved):
            by_model.setdefault(name, []).append(i)
        futures: dict[int, asyncio.Future[QAResult]] = {}
        try:
            for name, indices in by_model.items():
                _, runtime = self.models.runtime(name)
                submitted = runtime.submit([resolved[i][1] for i in indices])
                futures.update(zip(indices, map(asyncio.wrap_future, submitted), strict=True))
        except Exception:
            for future in futures.values():  # all or nothing
                future.cancel()
            raise
        ordered = [futures[i] for i in range(len(requests))]
        try:
            results = await asyncio.wait_for(asyncio.gather(*ordered), s.request_timeout_s)
        except TimeoutError:
            for future in ordered:
                future.cancel()
            raise InferenceTimeoutError(
                f"No answer within {s.request_timeout_s:g} s (QA_REQUEST_TIMEOUT_S). "
                "Send a shorter context or retry when the server is less busy."
            ) from None
        responses = []
        for (name, _), result in zip(resolved, results, strict=True):
            self.metrics.on_answer(name, result.no_answer)
            responses.append(_to_response(name, result))
        return responses

    def _query(self, request: QARequest) -> tuple[str, QAQuery]:
        """The served model's name and the runtime query, after the size and range checks."""
        s = self.settings
        if len(request.context) > s.max_context_chars:
            raise InputTooLargeError(
                f"The context has {len(request.context)} characters; the limit is "
                f"{s.max_context_chars} (QA_MAX_CONTEXT_CHARS). Send a shorter text."
            )
        if len(request.question) > s.max_question_chars:
            raise InputTooLargeError(
                f"The question has {len(request.question)} characters; the limit is "
                f"{s.max_question_chars} (QA_MAX_QUESTION_CHARS). Shorten the question."
            )
        if request.top_k > s.max_top_k:
            raise InvalidInputError(
                f"top_k is {request.top_k}; it must be between 1 and {s.max_top_k} (QA_MAX_TOP_K)."
            )
        model = self.models.get(request.model)
        defaults = model.defaults
        options = QAOptions(
            top_k=request.top_k,
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
        )
        return model.name, QAQuery(request.question, request.context, options)


def _to_response(model: str, result: QAResult) -> QAResponse:
    return QAResponse(
        model=model,
        answers=[AnswerOut(**asdict(a)) for a in result.answers],
        no_answer=result.no_answer,
        no_answer_probability=result.no_answer_probability,
        num_windows=result.num_windows,
        timings=TimingsOut(**asdict(result.timings)),
    )

"""What the UI does (ask, compare, read an upload, keep the history), as plain functions.

Each returns a typed outcome that app.py lays out; they work over any client with the
``Backend`` methods (the real QAClient or the tests' fake). No Streamlit import on purpose.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

from qa_ui.client import BackendError, ModelLimits, ModelsInfo, Progress, QARequest, QAResult
from qa_ui.documents import Document, DocumentError, extract_document
from qa_ui.history import HistoryEntry
from qa_ui.reading import mode_for

logger = logging.getLogger(__name__)


class Backend(Protocol):
    """What the actions need from a client."""

    def models(self) -> ModelsInfo: ...

    def ask_stream(self, request: QARequest) -> Generator[Progress | QAResult, None, None]: ...


# ---------------------------------------------------------------- outcomes


@dataclass(frozen=True)
class Invalid:
    """The form cannot be sent; `reason` is the texts.py key of what to fix."""

    reason: Literal["empty_context", "empty_question", "long_question"]
    limit: int = 0  # the limit broken, for a message that says it


@dataclass(frozen=True)
class Failed:
    error: BackendError


@dataclass(frozen=True)
class Stopped:
    """The answer was stopped (or the page left) before it came."""


@dataclass(frozen=True)
class Answered:
    request: QARequest
    result: QAResult


@dataclass(frozen=True)
class ModelAnswer:
    model: str
    outcome: QAResult | BackendError


@dataclass(frozen=True)
class Compared:
    request: QARequest
    answers: tuple[ModelAnswer, ...]  # empty: no model was ready


Outcome = Invalid | Failed | Stopped | Answered | Compared


# ---------------------------------------------------------------- asking


@dataclass(frozen=True)
class Form:
    """The question form and the advanced settings as the user left them."""

    context: str
    question: str
    model: str | None
    top_k: int
    max_answer_len: int | None  # None: the served default
    allow_no_answer: bool
    read_all: bool  # the user asked to read every passage of a long text


def build_request(form: Form, limits: ModelLimits | None) -> QARequest:
    """The request the form describes; a long text is read by passages (qa_ui.reading)."""
    mode = mode_for(len(form.context), limits, form.read_all) if limits else "all"
    return QARequest(
        context=form.context,
        question=form.question.strip(),
        model=form.model,
        top_k=form.top_k,
        max_answer_len=form.max_answer_len,
        handle_impossible_answer=form.allow_no_answer,
        # "all" is the backend's default: left out, a short text's request is as it was.
        passages="bm25" if mode == "bm25" else None,
    )


def check(request: QARequest, limits: ModelLimits | None = None) -> Invalid | None:
    """Refuse, before any call, what the backend would refuse for being empty or too long."""
    if not request.context.strip():
        return Invalid("empty_context")
    if not request.question:
        return Invalid("empty_question")
    if limits is not None and len(request.question) > limits.max_question_chars:
        return Invalid("long_question", limits.max_question_chars)
    return None


OnProgress = Callable[[Progress], None]


def read_answer(
    client: Backend, request: QARequest, on_progress: OnProgress | None = None
) -> QAResult:
    """The answer through the progress stream. Leaving early (an exception, a stopped script
    run) closes the stream, and the backend drops the work left."""
    with contextlib.closing(client.ask_stream(request)) as events:
        for event in events:
            if isinstance(event, QAResult):
                return event
            if on_progress is not None:
                on_progress(event)
    raise BackendError("the backend ended the stream without an answer")


def ask(
    client: Backend, request: QARequest, on_progress: OnProgress | None = None
) -> Answered | Failed:
    try:
        result = read_answer(client, request, on_progress)
    except BackendError as exc:
        logger.info("ask failed: %s (%s)", exc.code, exc.request_id)
        return Failed(exc)
    return Answered(request, result)


def compare(client: Backend, request: QARequest, models: Sequence[str]) -> Compared:
    """The same question to each model, one after the other so latencies do not interfere."""
    answers = []
    for name in models:
        try:
            outcome: QAResult | BackendError = read_answer(
                client, dataclasses.replace(request, model=name)
            )
        except BackendError as exc:
            outcome = exc
        answers.append(ModelAnswer(name, outcome))
    return Compared(request, tuple(answers))


def compare_ready(
    client: Backend, request: QARequest, models: ModelsInfo | None
) -> Compared | Failed:
    """`compare` over every model that is ready (the list is asked for when not known yet)."""
    try:
        models = models or client.models()
    except BackendError as exc:
        return Failed(exc)
    return compare(client, request, [m.name for m in models.models if m.ready])


# ---------------------------------------------------------------- history


def answered(outcome: Outcome, when: datetime | None = None) -> list[HistoryEntry]:
    """The history entries an outcome adds: one per answer received."""
    if isinstance(outcome, Answered):
        return [HistoryEntry.from_result(outcome.request, outcome.result, when)]
    if isinstance(outcome, Compared):
        return [
            HistoryEntry.from_result(outcome.request, a.outcome, when)
            for a in outcome.answers
            if isinstance(a.outcome, QAResult)
        ]
    return []


# ---------------------------------------------------------------- uploads


@dataclass(frozen=True)
class Loaded:
    name: str
    document: Document  # its text is the context, cut to the limit
    chars: int  # characters extracted, before any cut

    @property
    def truncated(self) -> bool:
        return self.chars > len(self.document.text)


@dataclass(frozen=True)
class Refused:
    """No text from the upload; `reason` names the texts.py message (upload_<reason>)."""

    name: str
    reason: str
    detail: str = ""


def read_upload(
    name: str, data: bytes, max_chars: int | None, max_upload_mb: float
) -> Loaded | Refused:
    """The upload's text (and PDF page starts), cut to `max_chars` (None: not known, no cut)."""
    if len(data) > max_upload_mb * 1024 * 1024:
        return Refused(name, "too_big")
    try:
        document = extract_document(name, data)
    except DocumentError as exc:
        return Refused(name, exc.code, exc.reason)
    text = document.text if max_chars is None else document.text[:max_chars]
    # Page numbers hold while the text is the upload's (page_of checks the offset against it).
    return Loaded(name, Document(text, document.page_starts), len(document.text))

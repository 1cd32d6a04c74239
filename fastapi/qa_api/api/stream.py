"""`POST /v1/qa/stream`: /v1/qa as Server-Sent Events, with progress while the windows run."""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, AsyncIterator

from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse

from qa_api.api.deps import ClientGone, Service, require_api_key, require_json
from qa_api.api.responses import ERROR_RESPONSES
from qa_api.errors import INTERNAL_ERROR, domain_status, error_response
from qa_api.inference.errors import QAError
from qa_api.inference.scheduler import Progress
from qa_api.schemas import ProgressEvent, QARequest, QAResponse

logger = logging.getLogger(__name__)

EXAMPLE_STREAM = (
    "event: progress\n"
    'data: {"windows_done":0,"windows_total":35,"elapsed_s":0.04,"remaining_s":8.1}\n\n'
    "event: progress\n"
    'data: {"windows_done":4,"windows_total":35,"elapsed_s":1.0,"remaining_s":7.2}\n\n'
    "event: result\n"
    'data: {"model":"beto","answers":[...],"no_answer":false,...}\n\n'
)
DESCRIPTION = """The same request and answer as `POST /v1/qa`, sent as Server-Sent Events
(`text/event-stream`) so a client can show progress on long texts:

- `progress` (first once the text is tokenized, then after each batch of windows, and at
  least every 0.5 s while one runs):
  `{"windows_done", "windows_total", "elapsed_s", "remaining_s"}`; `remaining_s` is estimated
  from this server's measured speed (null until it has one).
- `result`: the body `POST /v1/qa` would answer; the stream ends after it.
- `error`: the usual error body (`{"error", "code", "request_id"}`) when the request fails after
  the stream started (`timeout`, `overloaded` on shutdown, `internal_error`); the stream ends.

A request refused before any work (limits, windowing, a text too long to finish within the
timeout at this server's speed: 413) gets the usual HTTP error instead of a stream. Closing the
connection cancels the request: its windows not computed yet are dropped."""

SSE_EVENT = {
    "type": "object",
    "properties": {
        "event": {"type": "string", "enum": ["progress", "result", "error"]},
        "data": {"type": "string", "description": "The event's JSON body."},
    },
    "required": ["event", "data"],
}

router = APIRouter(
    prefix="/v1/qa",
    tags=["question answering"],
    dependencies=[Depends(require_api_key), Depends(require_json)],
    responses=ERROR_RESPONSES,
)


@router.post(
    "/stream",
    summary="Answer a question, with progress events (SSE)",
    description=DESCRIPTION,
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "Server-Sent Events: `progress`..., then `result` or `error`.",
            "content": {
                # Before OpenAPI 3.2's itemSchema, `schema` describes one event.
                "text/event-stream": {"schema": SSE_EVENT, "example": EXAMPLE_STREAM}
            },
        }
    },
)
async def answer_stream(
    request: QARequest, http: Request, service: Service, gone: ClientGone
) -> StreamingResponse:
    events = service.stream(request, gone)
    first = await anext(events)  # refusals raise here, as the usual HTTP errors
    return StreamingResponse(
        _sse(http, first, events),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _sse(
    http: Request, first: Progress | QAResponse, events: AsyncGenerator[Progress | QAResponse, None]
) -> AsyncIterator[str]:
    """The events as SSE text; an error ends the stream with an `error` event."""
    try:
        yield _event(first)
        async for item in events:
            yield _event(item)
    except QAError as exc:
        status, code = domain_status(exc)
        yield _error(http, status, code, exc.message)
    except Exception:
        logger.exception("stream failed (request %s)", getattr(http.state, "request_id", "-"))
        yield _error(http, 500, "internal_error", INTERNAL_ERROR)
    finally:
        await events.aclose()  # cancels the work if still running


def _event(item: Progress | QAResponse) -> str:
    if isinstance(item, QAResponse):
        return f"event: result\ndata: {item.model_dump_json()}\n\n"
    progress = ProgressEvent(
        windows_done=item.done,
        windows_total=item.total,
        elapsed_s=round(item.elapsed_s, 3),
        remaining_s=None if item.remaining_s is None else round(item.remaining_s, 3),
    )
    return f"event: progress\ndata: {progress.model_dump_json()}\n\n"


def _error(http: Request, status: int, code: str, message: str) -> str:
    body = bytes(error_response(http, status, code, message).body).decode()
    return f"event: error\ndata: {body}\n\n"

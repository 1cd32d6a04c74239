"""Question answering: single and batch JSON endpoints."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from qa_api.api.deps import ClientGone, Service, batch_limit, require_api_key, require_json
from qa_api.api.responses import ERROR_RESPONSES
from qa_api.schemas import BatchRequest, BatchResponse, QARequest, QAResponse

router = APIRouter(
    prefix="/v1/qa",
    tags=["question answering"],
    dependencies=[Depends(require_api_key), Depends(require_json)],
    responses=ERROR_RESPONSES,
)


@router.post("", summary="Answer a question about a context")
async def answer(request: QARequest, service: Service, gone: ClientGone) -> QAResponse:
    """Find the answer span in the context; `no_answer` says when the text has none (SQuAD2)."""
    (response,) = await service.answer([request], gone)
    return response


@router.post(
    "/batch",
    summary="Answer many questions in one call",
    dependencies=[Depends(batch_limit("requests"))],
)
async def answer_batch(batch: BatchRequest, service: Service, gone: ClientGone) -> BatchResponse:
    return BatchResponse(results=await service.answer(batch.requests, gone))

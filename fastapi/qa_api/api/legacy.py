"""`POST /qas/`, compatible with the original demo's client."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Query
from pydantic import ValidationError

from qa_api.api.deps import Service, require_api_key
from qa_api.api.responses import ERROR_RESPONSES
from qa_api.errors import ApiError
from qa_api.schemas import EXAMPLE_CONTEXT, EXAMPLE_QUESTION, QARequest

router = APIRouter(tags=["compatibility"], dependencies=[Depends(require_api_key)])

Text = str | None


@router.post("/qas/", summary="Answer text only (original demo API)", responses=ERROR_RESPONSES)
async def qas(
    service: Service,
    context: Annotated[Text, Query(examples=[EXAMPLE_CONTEXT])] = None,
    question: Annotated[Text, Query(examples=[EXAMPLE_QUESTION])] = None,
    context_form: Annotated[Text, Form(alias="context")] = None,
    question_form: Annotated[Text, Form(alias="question")] = None,
) -> str:
    """`context` and `question` as query parameters or form fields; returns the answer text
    (an empty string when the text has no answer)."""
    try:
        request = QARequest.model_validate(
            {"context": context_form or context, "question": question_form or question}
        )
    except ValidationError as exc:
        fields = ", ".join(str(e["loc"][0]) for e in exc.errors())
        raise ApiError(
            422,
            "validation_error",
            "Send non-empty 'context' and 'question' as query parameters or form fields "
            f"(problem with: {fields}).",
        ) from None
    (response,) = await service.answer([request])
    return "" if response.no_answer or not response.answers else response.answers[0].answer

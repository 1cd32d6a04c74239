"""`POST /qas/`, compatible with the original demo's client."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from qa_api.api.deps import ClientGone, Service, require_api_key
from qa_api.api.forms import read_form
from qa_api.api.responses import ERROR_RESPONSES
from qa_api.schemas import EXAMPLE, EXAMPLE_CONTEXT, EXAMPLE_QUESTION, QARequest

router = APIRouter(tags=["compatibility"], dependencies=[Depends(require_api_key)])

Text = str | None
FORM: dict[str, Any] = {
    "type": "object",
    "properties": {"context": {"type": "string"}, "question": {"type": "string"}},
    "examples": [EXAMPLE],
}
# The form is read by api.forms (its limits answer 413), so the route documents it by hand.
FORM_BODY = {
    "requestBody": {
        "required": False,
        "content": {
            "application/x-www-form-urlencoded": {"schema": FORM},
            "multipart/form-data": {"schema": FORM},
        },
    }
}


@router.post(
    "/qas/",
    summary="Answer text only (original demo API)",
    responses=ERROR_RESPONSES,
    openapi_extra=FORM_BODY,
)
async def qas(
    request: Request,
    service: Service,
    gone: ClientGone,
    context: Annotated[Text, Query(examples=[EXAMPLE_CONTEXT])] = None,
    question: Annotated[Text, Query(examples=[EXAMPLE_QUESTION])] = None,
) -> str:
    """`context` and `question` as query parameters or form fields (urlencoded or multipart);
    returns the answer text (an empty string when the text has no answer)."""
    form = await read_form(request)
    # a form field sent empty stays empty (and is refused as such), not "missing"
    sent = {
        name: form.get(name, query)
        for name, query in (("context", context), ("question", question))
    }
    try:
        query = QARequest.model_validate({k: v for k, v in sent.items() if v is not None})
    except ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": ("form", *e["loc"])} for e in exc.errors()]
        ) from None
    (response,) = await service.answer([query], gone)
    return "" if response.no_answer or not response.answers else response.answers[0].answer

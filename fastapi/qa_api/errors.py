"""One place that turns every error into the API's single error shape (schemas.ErrorResponse)."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from qa_api.inference import errors as domain

logger = logging.getLogger(__name__)


class ApiError(Exception):
    """An HTTP-level error raised by the web layer itself (auth, content type, ...)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


DOMAIN_STATUS: dict[type[domain.QAError], tuple[int, str]] = {
    domain.InvalidInputError: (422, "validation_error"),
    domain.InputTooLargeError: (413, "payload_too_large"),
    domain.ModelNotFoundError: (404, "model_not_found"),
    domain.ModelNotReadyError: (503, "model_not_ready"),
    domain.OverloadedError: (503, "overloaded"),
    domain.InferenceTimeoutError: (504, "timeout"),
}
HTTP_CODES = {
    400: "invalid_body",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
}
MESSAGES = {
    400: "The request body could not be parsed. Send valid UTF-8 JSON "
    "(Content-Type: application/json), or form fields for /qas/.",
}


def error_response(
    request: Request,
    status: int,
    code: str,
    message: str,
    details: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "error": message,
        "code": code,
        "request_id": getattr(request.state, "request_id", None),
    }
    if details is not None:
        body["details"] = details
    return JSONResponse(body, status_code=status, headers=headers)


def _describe(errors: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    details = [
        {"loc": [str(p) for p in e.get("loc", ())], "msg": e.get("msg", ""), "type": e.get("type")}
        for e in errors
    ]
    parts = [f"{'.'.join(d['loc'][1:] or d['loc']) or 'body'}: {d['msg']}" for d in details[:5]]
    return "Invalid request. " + "; ".join(parts) + ".", details


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(domain.QAError)
    async def _domain(request: Request, exc: domain.QAError) -> JSONResponse:
        status, code = next(
            (v for cls, v in DOMAIN_STATUS.items() if isinstance(exc, cls)), (500, "internal_error")
        )
        headers = None
        if isinstance(exc, domain.OverloadedError):
            headers = {"Retry-After": str(exc.retry_after_s)}
        return error_response(request, status, code, exc.message, headers=headers)

    @app.exception_handler(ApiError)
    async def _api(request: Request, exc: ApiError) -> JSONResponse:
        return error_response(request, exc.status, exc.code, exc.message)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        message, details = _describe(list(exc.errors()))
        return error_response(request, 422, "validation_error", message, details)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = HTTP_CODES.get(exc.status_code, "http_error")
        message = MESSAGES.get(exc.status_code, str(exc.detail))
        headers = dict(exc.headers) if exc.headers else None
        return error_response(request, exc.status_code, code, message, headers=headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("unhandled error (request %s)", getattr(request.state, "request_id", "-"))
        return error_response(
            request, 500, "internal_error", "Internal server error. The request id is in the logs."
        )

"""One place that turns every error into the API's single error shape (schemas.ErrorResponse)."""

from __future__ import annotations

import logging
import re
import sys
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from qa_api.inference import errors as domain
from qa_api.inference.errors import clip

logger = logging.getLogger(__name__)

_SURROGATE = re.compile("[\ud800-\udfff]")
# Our messages are a few hundred characters; what a client sends is quoted clipped (inference
# errors.clip), and this bounds a whole message whatever it quotes.
MAX_MESSAGE_CHARS = 2000


def safe_text(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """A client's text made fit to echo: a lone surrogate (valid JSON, not UTF-8) becomes U+FFFD,
    and a text over `limit` characters is clipped (an ellipsis and its length)."""
    return clip(_SURROGATE.sub("\ufffd", text), limit)


class ApiError(StarletteHTTPException):
    """An HTTP-level error raised by the web layer itself (auth, content type, limits...).

    An HTTPException, so that the libraries which read the body for us let it through unchanged.
    """

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(status, message)
        self.status, self.code, self.message = status, code, message


DOMAIN_STATUS: dict[type[domain.QAError], tuple[int, str]] = {
    domain.InvalidInputError: (422, "validation_error"),
    domain.InputTooLargeError: (413, "payload_too_large"),
    domain.ModelNotFoundError: (404, "model_not_found"),
    domain.ModelNotReadyError: (503, "model_not_ready"),
    domain.OverloadedError: (503, "overloaded"),
    domain.InferenceTimeoutError: (504, "timeout"),
    domain.ClientGoneError: (499, "client_closed_request"),  # nobody reads it; logs and metrics do
}


def domain_status(exc: domain.QAError) -> tuple[int, str]:
    """HTTP status and code of a domain error (also used by the streaming route's error event)."""
    return next(
        (v for cls, v in DOMAIN_STATUS.items() if isinstance(exc, cls)), (500, "internal_error")
    )


HTTP_CODES = {
    400: "invalid_body",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
}
LONE_SURROGATE = "has a lone UTF-16 surrogate; send valid Unicode (surrogates only come in pairs)"
MAX_DETAILS = 20  # a 4 MiB body can hold a million mistakes; the first ones say what to fix
UNPARSEABLE = (
    "The request body could not be parsed. Send valid UTF-8 JSON "
    "(Content-Type: application/json), or form fields for /qas/."
)
INTERNAL_ERROR = "Internal server error. The request id is in the logs."


def error_response(
    request: Request,
    status: int,
    code: str,
    message: str,
    details: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "error": safe_text(message),
        "code": code,
        "request_id": getattr(request.state, "request_id", None),
    }
    if details is not None:
        body["details"] = [
            {"loc": [safe_text(p) for p in d["loc"]], "msg": safe_text(d["msg"]), "type": d["type"]}
            for d in details
        ]
    return JSONResponse(body, status_code=status, headers=headers)


def _describe(errors: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """The message names the first problems; `details` lists at most MAX_DETAILS of them."""
    details = [_detail(e) for e in errors[:MAX_DETAILS]]
    parts = [f"{'.'.join(d['loc'][1:] or d['loc']) or 'body'}: {d['msg']}" for d in details[:5]]
    more = f" (and {len(errors) - 5} more problems)" if len(errors) > 5 else ""
    return "Invalid request. " + "; ".join(parts) + more + ".", details


def _detail(error: dict[str, Any]) -> dict[str, Any]:
    loc = [clip(str(p)) for p in error.get("loc", ())]  # a key may be 4 MiB long
    message = str(error.get("msg", "")).removeprefix("Value error, ")
    if error.get("type") == "string_unicode":  # pydantic's word for a lone surrogate, any field
        message = LONE_SURROGATE
    return {"loc": loc, "msg": message, "type": str(error.get("type"))}


def invalid_json(error: dict[str, Any]) -> str:
    """The 400's message for FastAPI's json_invalid error (a JSON syntax error, with where)."""
    reason = error.get("ctx", {}).get("error", "invalid JSON")
    at = error.get("loc", ())[-1:]
    where = f" at character {at[0]}" if at and isinstance(at[0], int) else ""
    return (
        f"The body is not valid JSON ({reason}{where}); it may be cut short. Send one complete "
        "JSON object (Content-Type: application/json)."
    )


def unparseable_body(cause: BaseException | None) -> tuple[int, str, str]:
    """Status, code and message for a body the JSON reader gave up on, naming the real reason."""
    if isinstance(cause, RecursionError):
        return (
            413,
            "payload_too_large",
            "The JSON nests arrays or objects deeper than the parser allows (Python's recursion "
            f"limit, {sys.getrecursionlimit()} levels). Send a flat JSON object.",
        )
    if isinstance(cause, ValueError) and "integer string conversion" in str(cause):
        return (
            413,
            "payload_too_large",
            f"A number in the JSON has more than {sys.get_int_max_str_digits()} digits, the "
            "parser's limit. Send numbers in the ranges the API documents.",
        )
    if isinstance(cause, UnicodeDecodeError):
        return (
            400,
            "invalid_body",
            f"The body is not valid UTF-8 JSON: byte {cause.object[cause.start]:#04x} at position "
            f"{cause.start} is not UTF-8. Send UTF-8 JSON (Content-Type: application/json).",
        )
    return 400, "invalid_body", UNPARSEABLE


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(domain.QAError)
    async def _domain(request: Request, exc: domain.QAError) -> JSONResponse:
        status, code = domain_status(exc)
        retry_after = exc.retry_after_s  # overloaded, or a model still loading
        headers = None if retry_after is None else {"Retry-After": str(retry_after)}
        return error_response(request, status, code, exc.message, headers=headers)

    @app.exception_handler(ApiError)
    async def _api(request: Request, exc: ApiError) -> JSONResponse:
        return error_response(request, exc.status, exc.code, exc.message)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = list(exc.errors())
        syntax = next((e for e in errors if e.get("type") == "json_invalid"), None)
        if syntax is not None:  # not a validation error: the body is not JSON at all
            return error_response(request, 400, "invalid_body", invalid_json(syntax))
        message, details = _describe(errors)
        return error_response(request, 422, "validation_error", message, details)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        headers = dict(exc.headers) if exc.headers else None
        if exc.status_code == 400:
            status, code, message = unparseable_body(exc.__cause__)
        else:
            status, code = exc.status_code, HTTP_CODES.get(exc.status_code, "http_error")
            message = _routing_hint(request, exc) or str(exc.detail)
        return error_response(request, status, code, message, headers=headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("unhandled error (request %s)", getattr(request.state, "request_id", "-"))
        return error_response(request, 500, "internal_error", INTERNAL_ERROR)


def _routing_hint(request: Request, exc: StarletteHTTPException) -> str | None:
    """For the router's own 404 / 405 (their detail is the bare reason phrase): what to send."""
    method, path = request.method, request.url.path
    if exc.status_code == 404 and exc.detail == "Not Found":
        return f"No endpoint at {path}. The endpoints and what they take: /docs."
    if exc.status_code == 405 and exc.headers and "Allow" in exc.headers:
        return f"{path} takes {exc.headers['Allow']}, not {method}. See /docs."
    return None

"""Error responses documented on every route."""

from __future__ import annotations

from typing import Any

from qa_api.schemas import ErrorResponse

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse, "description": description}
    for status, description in {
        400: "Body could not be parsed (not UTF-8 JSON, broken form)",
        401: "Missing or wrong API key",
        404: "Unknown model",
        413: "Input over a size limit",
        415: "Body is not JSON",
        422: "Invalid input",
        503: "Model not ready, or server at capacity (see Retry-After)",
        504: "Timed out",
    }.items()
}

"""Domain errors raised by the inference layer; qa_api.errors maps them to HTTP responses."""

from __future__ import annotations

ECHO_CHARS = 80  # a client's value quoted in a message (a model name, a field name)


def clip(text: str, limit: int = ECHO_CHARS) -> str:
    """`text`, or its first `limit` characters, an ellipsis and its length when longer."""
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text)} characters)"


class QAError(Exception):
    """Base class: `message` is shown to the API user and says what to change; `retry_after_s`,
    when set, says when the same request may succeed (the HTTP layer's Retry-After)."""

    def __init__(self, message: str, retry_after_s: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after_s = retry_after_s


class InvalidInputError(QAError):
    """The request cannot be answered as sent (bad parameter combination, empty text...)."""


class InputTooLargeError(QAError):
    """The request exceeds a configured size limit."""


class ModelNotFoundError(QAError):
    """The request names a model that is not served."""


class ModelNotReadyError(QAError):
    """The model is still loading (with `retry_after_s`), or failed to load (without)."""


class OverloadedError(QAError):
    """The request queue is full (or the server is shutting down): retry later."""

    def __init__(self, message: str, retry_after_s: int = 1) -> None:
        super().__init__(message, retry_after_s)


class InferenceTimeoutError(QAError):
    """The request did not finish within the configured time."""


class ClientGoneError(QAError):
    """The caller disconnected before the answer was ready; its remaining work was dropped."""

"""Answering questions through a running backend's `/v1/qa` (stdlib HTTP, thread safe)."""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from qa_api.evaluation.dataset import Question
from qa_api.evaluation.runner import Answer, PredictionError

logger = logging.getLogger(__name__)

_RETRY_STATUSES = frozenset({429, 503})
_MAX_RETRY_WAIT_S = 10.0


def answer_from_response(body: dict[str, Any]) -> Answer:
    """Official prediction text: the best span, or "" when the model says there is no answer."""
    answers = body.get("answers") or []
    text = "" if body.get("no_answer") or not answers else str(answers[0]["answer"])
    na_prob = body.get("no_answer_probability")
    return Answer(text=text, na_prob=float(na_prob) if na_prob is not None else 0.0)


class ApiPredictor:
    """POSTs each question to `{base_url}/v1/qa`; retries 429/503 and refused connections."""

    def __init__(
        self,
        base_url: str,
        *,
        model: str | None = None,
        api_key: str | None = None,
        timeout_s: float = 120.0,
        retries: int = 3,
        handle_impossible_answer: bool | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.api_key = api_key
        self.timeout_s = timeout_s
        self.retries = retries
        self.handle_impossible_answer = handle_impossible_answer

    def _request(
        self, method: str, path: str, payload: dict[str, Any] | None = None, request_id: str = ""
    ) -> tuple[int, dict[str, Any], float | None]:
        """One HTTP exchange: (status, JSON body, Retry-After seconds)."""
        headers = {"Accept": "application/json"}
        data = None
        if payload is not None:
            data = json.dumps(payload).encode("utf-8")
            headers["Content-Type"] = "application/json"
        if self.api_key:
            headers["X-API-Key"] = self.api_key
        if request_id:
            headers["X-Request-ID"] = request_id
        url = self.base_url + path
        req = urllib.request.Request(url, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                return resp.status, json.loads(resp.read() or b"{}"), None
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            try:
                body = json.loads(raw) if raw else {}
            except json.JSONDecodeError:
                body = {"error": raw[:200].decode("utf-8", "replace")}
            retry_after = exc.headers.get("Retry-After") if exc.headers else None
            try:
                wait = float(retry_after) if retry_after is not None else None
            except ValueError:
                wait = None
            return exc.code, body if isinstance(body, dict) else {"error": str(body)}, wait

    def _call(
        self, method: str, path: str, payload: dict[str, Any] | None = None, request_id: str = ""
    ) -> dict[str, Any]:
        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            try:
                status, body, retry_after = self._request(method, path, payload, request_id)
            except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
                reason = getattr(exc, "reason", exc)
                if last:
                    raise PredictionError(f"{method} {path}: {reason}") from exc
                time.sleep(min(0.5 * 2**attempt, _MAX_RETRY_WAIT_S))
                continue
            if status == 200:
                return body
            if status not in _RETRY_STATUSES or last:
                raise PredictionError(f"{method} {path}: HTTP {status}: {body.get('error', body)}")
            time.sleep(
                min(retry_after if retry_after is not None else 0.5 * 2**attempt, _MAX_RETRY_WAIT_S)
            )
        raise AssertionError("unreachable")  # the loop always returns or raises

    def describe(self) -> dict[str, Any]:
        """The served model's description (`GET /v1/models/...`); fails when it is not ready."""
        if self.model:
            info = self._call("GET", "/v1/models/" + urllib.parse.quote(self.model, safe=""))
        else:
            listing = self._call("GET", "/v1/models")
            default = listing.get("default")
            found = [m for m in listing.get("models", []) if m.get("name") == default]
            if not found:
                raise PredictionError(f"the server lists no default model ({default!r})")
            info = found[0]
        if not info.get("ready"):
            raise PredictionError(
                f"model {info.get('name')!r} is not ready (status {info.get('status')!r}"
                f"{', error: ' + str(info['error']) if info.get('error') else ''})"
            )
        return info

    def close(self) -> None:
        """Nothing to release: every request opens its own connection."""

    def predict(self, question: Question) -> Answer:
        payload: dict[str, Any] = {"context": question.context, "question": question.question}
        if self.model:
            payload["model"] = self.model
        if self.handle_impossible_answer is not None:
            payload["handle_impossible_answer"] = self.handle_impossible_answer
        body = self._call("POST", "/v1/qa", payload, request_id=f"qa-eval-{question.qid}")
        return answer_from_response(body)

"""Typed HTTP client for the QA backend (docs/api.md). No Streamlit import on purpose.

The backend may run as several replicas behind one DNS name (``docker compose up --scale
fastapi=3``): the client resolves the host to every address, round-robins requests over them
keeping the ``Host`` header, and retries a request on another replica when one refuses or drops
the connection or answers 503, so losing a replica is invisible to the user.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import logging
import shlex
import socket
import threading
import time
import uuid
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

import requests
from requests_toolbelt import MultipartEncoder

from qa_ui.config import UISettings

logger = logging.getLogger(__name__)

Resolver = Callable[[str, int], list[str]]


class BackendState(StrEnum):
    READY = "ready"
    LOADING = "loading"
    FAILED = "failed"
    UNREACHABLE = "unreachable"


class BackendError(Exception):
    """The backend answered with an error, or could not be asked at all."""

    def __init__(
        self,
        message: str,
        *,
        code: str = "internal_error",
        status: int | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status
        self.request_id = request_id
        self.retry_after = retry_after


class BackendUnreachable(BackendError):
    """No replica accepted the connection (down, wrong address, DNS failure)."""

    def __init__(self, message: str, *, request_id: str | None = None) -> None:
        super().__init__(message, code="unreachable", request_id=request_id)


class BackendTimeout(BackendError):
    """The backend accepted the request but did not answer within the read timeout."""

    def __init__(self, message: str, *, request_id: str | None = None) -> None:
        super().__init__(message, code="timeout", request_id=request_id)


@dataclass(frozen=True)
class Answer:
    answer: str
    score: float
    start: int
    end: int


@dataclass(frozen=True)
class Timings:
    queue_ms: float = 0.0
    tokenize_ms: float = 0.0
    inference_ms: float = 0.0
    decode_ms: float = 0.0
    total_ms: float = 0.0


@dataclass(frozen=True)
class QARequest:
    context: str
    question: str
    model: str | None = None
    top_k: int | None = None  # unset options are the served model's defaults (/v1/models)
    max_answer_len: int | None = None
    handle_impossible_answer: bool | None = True
    passages: str | None = None  # "all" or "bm25" (unset: the backend's default, all)

    def payload(self) -> dict[str, Any]:
        """The JSON body of ``POST /v1/qa`` (unset options are left to the backend)."""
        body: dict[str, Any] = {"context": self.context, "question": self.question}
        for name in ("model", "top_k", "max_answer_len", "handle_impossible_answer"):
            value = getattr(self, name)
            if value is not None:
                body[name] = value
        if self.passages is not None:
            body["passages"] = {"mode": self.passages}
        return body


@dataclass(frozen=True)
class ReadWindow:
    """A window the backend read in ``bm25`` mode: its BM25 rank and character span."""

    index: int
    rank: int
    score: float
    start: int
    end: int


@dataclass(frozen=True)
class QAResult:
    model: str
    answers: tuple[Answer, ...]
    no_answer: bool
    no_answer_probability: float | None
    num_windows: int
    timings: Timings
    round_trip_ms: float = 0.0
    request_id: str | None = None
    read_windows: tuple[ReadWindow, ...] = ()  # empty: every window was read
    # False: no word of the question is in the text, the first windows were read (None: all read)
    passages_matched: bool | None = None

    @property
    def best(self) -> Answer | None:
        return self.answers[0] if self.answers else None

    @classmethod
    def from_json(
        cls, data: Mapping[str, Any], *, round_trip_ms: float = 0.0, request_id: str | None = None
    ) -> QAResult:
        timings = data.get("timings") or {}
        passages = data.get("passages") or {}
        return cls(
            model=str(data.get("model", "")),
            answers=tuple(
                Answer(
                    answer=str(a["answer"]),
                    score=float(a["score"]),
                    start=int(a["start"]),
                    end=int(a["end"]),
                )
                for a in data.get("answers", [])
            ),
            no_answer=bool(data.get("no_answer", False)),
            no_answer_probability=(
                None
                if data.get("no_answer_probability") is None
                else float(data["no_answer_probability"])
            ),
            num_windows=int(data.get("num_windows", 1)),
            timings=Timings(
                **{
                    k: float(timings[k])
                    for k in Timings.__dataclass_fields__
                    if timings.get(k) is not None
                }
            ),
            round_trip_ms=round_trip_ms,
            request_id=request_id,
            read_windows=tuple(
                ReadWindow(**{k: w[k] for k in ReadWindow.__dataclass_fields__})
                for w in passages.get("read", [])
            ),
            passages_matched=passages.get("matched"),
        )


@dataclass(frozen=True)
class Progress:
    """A ``progress`` event of ``POST /v1/qa/stream``."""

    windows_done: int
    windows_total: int
    elapsed_s: float
    remaining_s: float | None

    @property
    def fraction(self) -> float:
        return self.windows_done / self.windows_total if self.windows_total else 0.0


def sse_events(lines: Iterable[bytes]) -> Iterator[tuple[str, Any]]:
    """(event name, decoded JSON data) of each Server-Sent Event in a stream of lines."""
    name, data = "", ""
    for raw in lines:
        line = raw.decode("utf-8")
        if line.startswith("event:"):
            name = line.removeprefix("event:").strip()
        elif line.startswith("data:"):
            data = line.removeprefix("data:").strip()
        elif not line and name:
            yield name, json.loads(data)
            name, data = "", ""


@dataclass(frozen=True)
class ModelLimits:
    """A model's served defaults and limits, as ``GET /v1/models`` says them (no copies here)."""

    top_k: int
    max_seq_len: int
    doc_stride: int
    max_question_len: int
    max_answer_len: int
    max_context_chars: int
    max_document_chars: int
    passages_top_n: int
    max_question_chars: int
    max_top_k: int

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ModelLimits:
        return cls(**{name: int(data[name]) for name in cls.__dataclass_fields__})


@dataclass(frozen=True)
class ModelInfo:
    name: str
    status: str
    ready: bool
    limits: ModelLimits
    model_id: str = ""
    revision: str | None = None
    error: str | None = None
    backend: str | None = None
    device: str | None = None
    dtype: str | None = None
    load_time_s: float | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ModelInfo:
        return cls(
            name=str(data["name"]),
            status=str(data.get("status", "ready" if data.get("ready") else "loading")),
            ready=bool(data.get("ready", data.get("status") == "ready")),
            model_id=str(data.get("model_id") or ""),
            revision=data.get("revision"),
            error=data.get("error"),
            backend=data.get("backend"),
            device=data.get("device"),
            dtype=data.get("dtype"),
            load_time_s=data.get("load_time_s"),
            limits=ModelLimits.from_json(data["limits"]),
        )


@dataclass(frozen=True)
class ModelsInfo:
    default: str
    models: tuple[ModelInfo, ...]

    def get(self, name: str | None) -> ModelInfo | None:
        wanted = name or self.default
        return next((m for m in self.models if m.name == wanted), None)


@dataclass(frozen=True)
class BackendHealth:
    state: BackendState
    models: dict[str, str] = field(default_factory=dict)
    reason: str | None = None


def resolve_all(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to, in resolver order, without duplicates."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses: list[str] = []
    for _family, _type, _proto, _canon, sockaddr in infos:
        address = str(sockaddr[0])
        if address not in addresses:
            addresses.append(address)
    return addresses


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


class ReplicaPool:
    """Round-robin over the addresses of the backend host, re-resolved every few seconds.

    HTTPS URLs and IP literals are used as they are: TLS needs the real host name, and an IP
    has nothing to spread over.
    """

    def __init__(
        self,
        base_url: str,
        *,
        resolver: Resolver = resolve_all,
        interval_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        parts = urlsplit(base_url)
        self.base_url = base_url.rstrip("/")
        self.host = parts.hostname or ""
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.host_header = parts.netloc
        self.spread = parts.scheme == "http" and not _is_ip_literal(self.host)
        self._resolver = resolver
        self._interval_s = interval_s
        self._clock = clock
        self._lock = threading.Lock()
        self._addresses: list[str] = []
        self._resolved_at: float | None = None
        self._failed_until: dict[str, float] = {}
        self._next = 0

    def _url_for(self, address: str) -> str:
        host = f"[{address}]" if ":" in address else address
        return f"http://{host}:{self.port}"

    def _resolve_locked(self) -> None:
        try:
            addresses = self._resolver(self.host, self.port)
        except OSError as exc:
            # Keep serving the last known replicas: a DNS hiccup is not an outage.
            if not self._addresses:
                raise BackendUnreachable(f"cannot resolve {self.host!r}: {exc}") from exc
            logger.warning(
                "re-resolving %s failed (%s); keeping %s", self.host, exc, self._addresses
            )
        else:
            if addresses != self._addresses:
                logger.info("backend %s resolves to %s", self.host, addresses)
            self._addresses = addresses
        self._resolved_at = self._clock()

    def targets(self) -> list[str]:
        """Base URLs to try for one request: round-robin order, recently failed ones last."""
        if not self.spread:
            return [self.base_url]
        with self._lock:
            now = self._clock()
            if self._resolved_at is None or now - self._resolved_at >= self._interval_s:
                self._resolve_locked()
            if not self._addresses:
                raise BackendUnreachable(f"{self.host!r} resolves to no address")
            start = self._next % len(self._addresses)
            self._next += 1
            ordered = self._addresses[start:] + self._addresses[:start]
            healthy = [a for a in ordered if self._failed_until.get(a, 0.0) <= now]
            failed = [a for a in ordered if a not in healthy]
            return [self._url_for(a) for a in healthy + failed]

    def mark_failed(self, target: str) -> None:
        """Skip this replica for a while and re-resolve on the next request."""
        if not self.spread:
            return
        with self._lock:
            for address in self._addresses:
                if self._url_for(address) == target:
                    self._failed_until[address] = self._clock() + max(self._interval_s, 1.0)
            self._resolved_at = None

    def mark_ok(self, target: str) -> None:
        if not self.spread:
            return
        with self._lock:
            for address in list(self._failed_until):
                if self._url_for(address) == target:
                    del self._failed_until[address]


def _error_from_response(response: requests.Response, request_id: str) -> BackendError:
    code = "internal_error" if response.status_code >= 500 else "http_error"
    if response.status_code in (401, 403):
        code = "unauthorized"  # also a proxy's refusal, which has no body of ours
    message = f"HTTP {response.status_code}"
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        code = str(body.get("code") or code)
        message = str(body.get("error") or body.get("reason") or message)
    retry_after: float | None = None
    with contextlib.suppress(ValueError):
        retry_after = float(response.headers.get("Retry-After", ""))
    return BackendError(
        message,
        code=code,
        status=response.status_code,
        request_id=response.headers.get("X-Request-ID", request_id),
        retry_after=retry_after,
    )


class QAClient:
    """The backend as the UI sees it: health, models, answers."""

    def __init__(
        self,
        settings: UISettings,
        *,
        resolver: Resolver = resolve_all,
        session: requests.Session | None = None,
    ) -> None:
        self.settings = settings
        self.pool = ReplicaPool(
            settings.backend_url, resolver=resolver, interval_s=settings.resolve_interval_s
        )
        self._session = session or requests.Session()
        # The backend is an internal service: never route it through a proxy from the env.
        self._session.trust_env = False

    def _send(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        form: Mapping[str, str] | None = None,
        read_timeout_s: float | None = None,
        stream: bool = False,
    ) -> tuple[requests.Response, str]:
        """Send one logical request, trying other replicas on connection loss or 503."""
        request_id = uuid.uuid4().hex
        accept = "text/event-stream" if stream else "application/json"
        headers = {"X-Request-ID": request_id, "Accept": accept}
        if self.settings.api_key:
            headers["X-API-Key"] = self.settings.api_key
        if self.pool.spread:
            headers["Host"] = self.pool.host_header
        timeout = (self.settings.connect_timeout_s, read_timeout_s or self.settings.timeout_s)

        tried: set[str] = set()
        last_error: BackendError | None = None
        last_busy: requests.Response | None = None
        # One pass over the known replicas, then one more over any that re-resolving reveals.
        for _ in range(2):
            targets = [t for t in self.pool.targets() if t not in tried]
            for target in targets:
                tried.add(target)
                kwargs: dict[str, Any] = {
                    "headers": dict(headers),
                    "timeout": timeout,
                    "stream": stream,
                }
                if form is not None:
                    # A streaming encoder is consumed by a send, so every attempt gets a new one.
                    encoder = MultipartEncoder(fields=dict(form))
                    kwargs["data"] = encoder
                    kwargs["headers"]["Content-Type"] = encoder.content_type
                elif json_body is not None:
                    kwargs["json"] = json_body
                try:
                    response = self._session.request(method, target + path, **kwargs)
                except requests.ConnectionError as exc:  # refused, reset, connect timeout
                    logger.warning("replica %s failed for %s (%s)", target, request_id, exc)
                    self.pool.mark_failed(target)
                    last_error = BackendUnreachable(
                        f"cannot reach the backend at {self.settings.backend_url}",
                        request_id=request_id,
                    )
                    continue
                except requests.Timeout as exc:
                    raise BackendTimeout(
                        f"the backend did not answer within {timeout[1]:g} s",
                        request_id=request_id,
                    ) from exc
                except requests.RequestException as exc:
                    raise BackendError(str(exc), request_id=request_id) from exc
                self.pool.mark_ok(target)
                if response.status_code == 503:
                    logger.info("replica %s busy or loading for %s", target, request_id)
                    last_busy = response
                    continue
                return response, request_id
            if last_busy is not None:
                break
        if last_busy is not None:
            return last_busy, request_id
        raise last_error or BackendUnreachable("no backend replica to try", request_id=request_id)

    def _json(
        self, method: str, path: str, *, json_body: Any = None, read_timeout_s: float | None = None
    ) -> tuple[Any, str]:
        response, request_id = self._send(
            method, path, json_body=json_body, read_timeout_s=read_timeout_s
        )
        if not response.ok:
            raise _error_from_response(response, request_id)
        try:
            return response.json(), response.headers.get("X-Request-ID", request_id)
        except ValueError as exc:
            raise BackendError(
                "the backend sent a response that is not JSON", request_id=request_id
            ) from exc

    def health(self) -> BackendHealth:
        """Readiness of the backend; never raises."""
        try:
            response, _ = self._send(
                "GET", "/health/ready", read_timeout_s=self.settings.health_timeout_s
            )
        except BackendError as exc:
            return BackendHealth(BackendState.UNREACHABLE, reason=exc.message)
        try:
            body = response.json()
        except ValueError:
            body = {}
        if not isinstance(body, dict):
            body = {}
        models = {str(k): str(v) for k, v in (body.get("models") or {}).items()}
        if response.status_code == 200:
            return BackendHealth(BackendState.READY, models)
        if response.status_code == 503:
            state = BackendState.FAILED if body.get("status") == "failed" else BackendState.LOADING
            return BackendHealth(state, models, body.get("reason"))
        return BackendHealth(
            BackendState.UNREACHABLE,
            models,
            f"unexpected HTTP {response.status_code} from {self.settings.backend_url}/health/ready",
        )

    def models(self) -> ModelsInfo:
        data, request_id = self._json(
            "GET", "/v1/models", read_timeout_s=self.settings.health_timeout_s
        )
        try:
            return ModelsInfo(
                default=str(data.get("default", "")),
                models=tuple(ModelInfo.from_json(m) for m in data.get("models", [])),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise BackendError(
                f"/v1/models answered a body this UI cannot read ({type(exc).__name__}: {exc})",
                request_id=request_id,
            ) from exc

    def ask(self, request: QARequest) -> QAResult:
        started = time.perf_counter()
        data, request_id = self._json("POST", "/v1/qa", json_body=request.payload())
        round_trip_ms = (time.perf_counter() - started) * 1000
        return QAResult.from_json(data, round_trip_ms=round_trip_ms, request_id=request_id)

    def ask_stream(self, request: QARequest) -> Generator[Progress | QAResult, None, None]:
        """``POST /v1/qa/stream``: progress while the backend reads the text, then the result.

        Closing the iterator early closes the connection, and the backend drops the work left.
        The read timeout applies between events, so a long text never hits it while it moves.
        """
        started = time.perf_counter()
        response, request_id = self._send(
            "POST", "/v1/qa/stream", json_body=request.payload(), stream=True
        )
        with contextlib.closing(response):
            if not response.ok:
                raise _error_from_response(response, request_id)
            request_id = response.headers.get("X-Request-ID", request_id)
            try:
                # chunk_size=None: each event as it arrives (typeshed lacks the None)
                lines = response.iter_lines(chunk_size=None)  # type: ignore[call-overload]
                for name, data in sse_events(lines):
                    if name == "progress":
                        yield Progress(
                            windows_done=int(data["windows_done"]),
                            windows_total=int(data["windows_total"]),
                            elapsed_s=float(data["elapsed_s"]),
                            remaining_s=data.get("remaining_s"),
                        )
                    elif name == "result":
                        round_trip_ms = (time.perf_counter() - started) * 1000
                        yield QAResult.from_json(
                            data, round_trip_ms=round_trip_ms, request_id=request_id
                        )
                        return
                    elif name == "error":
                        raise BackendError(
                            str(data.get("error", "error")),
                            code=str(data.get("code", "internal_error")),
                            request_id=data.get("request_id") or request_id,
                        )
            except requests.RequestException as exc:
                raise BackendTimeout(
                    f"the backend sent nothing for {self.settings.timeout_s:g} s",
                    request_id=request_id,
                ) from exc
        raise BackendError("the backend ended the stream without an answer", request_id=request_id)

    def ask_form(self, context: str, question: str) -> str:
        """The original demo's ``POST /qas/`` multipart form: the best answer text or ''."""
        response, request_id = self._send(
            "POST", "/qas/", form={"context": context, "question": question}
        )
        if not response.ok:
            raise _error_from_response(response, request_id)
        answer = response.json()
        if not isinstance(answer, str):
            raise BackendError("/qas/ did not answer a string", request_id=request_id)
        return answer


def curl_command(public_api_url: str, request: QARequest, *, with_api_key: bool) -> str:
    """A shell command that repeats ``request`` against the public API address.

    The body goes through a quoted heredoc on curl's stdin, not an argument: a text of a million
    characters is past the system's limit on one argument (128 KiB on Linux).
    """
    parts = [
        "curl -sS -X POST",
        shlex.quote(public_api_url.rstrip("/") + "/v1/qa"),
        "-H 'Content-Type: application/json'",
    ]
    if with_api_key:
        parts.append('-H "X-API-Key: $QA_API_KEY"')
    parts.append("--data-binary @- <<'JSON'")
    # One line of JSON (json.dumps escapes line breaks), so it is never the closing "JSON" line.
    body = json.dumps(request.payload(), ensure_ascii=False)
    return " \\\n  ".join(parts) + f"\n{body}\nJSON"

"""A scripted stand-in for QAClient, for UI tests that replace the client at its seam."""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field

from qa_ui.client import (
    Answer,
    BackendError,
    BackendHealth,
    BackendState,
    BackendUnreachable,
    ModelInfo,
    ModelLimits,
    ModelsInfo,
    Progress,
    QARequest,
    QAResult,
    Timings,
)
from qa_ui.config import UISettings

# What a backend with default settings serves (tests/unit/test_contract.py checks it against the
# backend's Settings): the fake's /v1/models answer, so UI tests see real limits.
SERVED_LIMITS = ModelLimits(
    top_k=1,
    max_seq_len=384,
    doc_stride=128,
    max_question_len=64,
    max_answer_len=30,
    max_context_chars=50_000,
    max_document_chars=1_000_000,
    passages_top_n=8,
    max_question_chars=1_000,
    max_top_k=10,
)


def make_models(*names: str, default: str | None = None, ready: bool = True) -> ModelsInfo:
    return ModelsInfo(
        default=default or names[0],
        models=tuple(
            ModelInfo(
                name=n,
                status="ready" if ready else "loading",
                ready=ready,
                model_id=f"test/{n}",
                limits=SERVED_LIMITS,
            )
            for n in names
        ),
    )


def make_result(
    context: str,
    spans: Sequence[tuple[str, float]] = (),
    *,
    model: str = "beto",
    no_answer: bool = False,
    no_answer_probability: float = 0.05,
    total_ms: float = 42.5,
) -> QAResult:
    """A response whose offsets point at the first occurrence of each span text in context."""
    answers = []
    for text, score in spans:
        start = context.index(text)
        answers.append(Answer(answer=text, score=score, start=start, end=start + len(text)))
    return QAResult(
        model=model,
        answers=tuple(answers),
        no_answer=no_answer,
        no_answer_probability=no_answer_probability,
        num_windows=1,
        timings=Timings(
            queue_ms=0.1, tokenize_ms=1.2, inference_ms=40.3, decode_ms=0.4, total_ms=total_ms
        ),
        round_trip_ms=total_ms + 3.0,
        request_id="req-test",
    )


Responder = Callable[[QARequest], QAResult]


@dataclass
class FakeQAClient:
    """Answers from a script; ``down=True`` behaves like a backend that refuses connections."""

    settings: UISettings = field(default_factory=UISettings)
    models_info: ModelsInfo = field(default_factory=lambda: make_models("beto"))
    state: BackendState = BackendState.READY
    responder: Responder | None = None
    error: BackendError | None = None
    models_error: BackendError | None = None  # raised by models(), e.g. a refused API key
    down: bool = False
    calls: list[QARequest] = field(default_factory=list)
    progress: Sequence[Progress] = ()  # sent by ask_stream before the answer
    streams_closed: int = 0

    def health(self) -> BackendHealth:
        if self.down:
            return BackendHealth(BackendState.UNREACHABLE, reason="connection refused")
        status = {BackendState.READY: "ready", BackendState.FAILED: "failed"}.get(
            self.state, "loading"
        )
        return BackendHealth(self.state, {m.name: status for m in self.models_info.models})

    def models(self) -> ModelsInfo:
        if self.down:
            raise BackendUnreachable("cannot reach the backend")
        if self.models_error is not None:
            raise self.models_error
        return self.models_info

    def ask(self, request: QARequest) -> QAResult:
        self.calls.append(request)
        if self.down:
            raise BackendUnreachable("cannot reach the backend", request_id="req-down")
        if self.error is not None:
            raise self.error
        if self.responder is None:
            raise AssertionError("FakeQAClient.ask called without a responder")
        return self.responder(request)

    def ask_stream(self, request: QARequest) -> Generator[Progress | QAResult, None, None]:
        """The scripted progress events, then what ``ask`` answers; counts closed streams."""
        try:
            yield from self.progress
            yield self.ask(request)
        finally:
            self.streams_closed += 1


def minimal_pdf(lines: Sequence[str]) -> bytes:
    """A one-page PDF with each line as real text (Helvetica, WinAnsi), for upload tests."""
    body = ["BT /F1 12 Tf 72 720 Td 14 TL"]
    for line in lines:
        escaped = line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
        body.append(f"({escaped}) Tj T*")
    body.append("ET")
    stream = "\n".join(body).encode("cp1252")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, obj in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + obj + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)

"""Plain data passed between the HTTP layer and the runtime."""

from __future__ import annotations

from dataclasses import dataclass, field

# What a window and an answer may measure, in tokens: the settings' and the requests' range.
SEQ_LEN_RANGE = (32, 512)
ANSWER_LEN_RANGE = (1, 512)


def resolve_doc_stride(max_seq_len: int, doc_stride: int | None) -> int:
    """`doc_stride`, or when unset the transformers QA pipeline's min(max_seq_len // 2, 128)."""
    return min(max_seq_len // 2, 128) if doc_stride is None else doc_stride


@dataclass(frozen=True, slots=True)
class QAOptions:
    """Per-request decoding options, already resolved against the model's defaults.

    No defaults here: the served ones are `Settings.decoding_defaults()` (config.py).
    """

    top_k: int
    max_answer_len: int
    max_seq_len: int
    doc_stride: int
    handle_impossible_answer: bool
    bm25_top_n: int | None  # read only the windows BM25 ranks first; None reads them all
    bm25_share: float  # ... and at least this share of the context's windows


@dataclass(frozen=True, slots=True)
class QAQuery:
    question: str
    context: str
    options: QAOptions


@dataclass(frozen=True, slots=True)
class Answer:
    """A span of the context: `context[start:end] == answer`."""

    answer: str
    score: float
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class ReadWindow:
    """A window chosen for reading: its number, BM25 rank (1 = best) and character span."""

    index: int
    rank: int
    score: float
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Selection:
    """Which of the context's windows were read, best ranked first (passage preselection)."""

    num_windows: int
    read: tuple[ReadWindow, ...]


@dataclass(slots=True)
class Timings:
    queue_ms: float = 0.0
    tokenize_ms: float = 0.0
    inference_ms: float = 0.0
    decode_ms: float = 0.0
    total_ms: float = 0.0


@dataclass(slots=True)
class QAResult:
    answers: list[Answer]
    no_answer: bool
    no_answer_probability: float
    num_windows: int  # of the whole context, read or not
    timings: Timings = field(default_factory=Timings)
    passages: Selection | None = None  # None: every window was read

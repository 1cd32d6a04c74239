"""Request and response models of the HTTP API (with the Spanish examples shown in /docs)."""

from __future__ import annotations

import unicodedata
from typing import Annotated, Any, Literal, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    computed_field,
    model_validator,
)
from pydantic.json_schema import JsonDict

from qa_api.inference.types import ANSWER_LEN_RANGE, SEQ_LEN_RANGE

EXAMPLE_CONTEXT = (
    "Miguel de Cervantes Saavedra nació en Alcalá de Henares en 1547. Es autor de Don Quijote "
    "de la Mancha, cuya primera parte se publicó en Madrid en 1605."
)
EXAMPLE_QUESTION = "¿Dónde nació Cervantes?"
EXAMPLE: JsonDict = {"context": EXAMPLE_CONTEXT, "question": EXAMPLE_QUESTION}

# Readable = a letter, digit, punctuation mark or symbol. Not readable: whitespace (Z*), control
# and format characters (Cc, Cf: NUL, zero-width spaces, direction marks), lone surrogates (Cs),
# unassigned and private-use code points, combining marks with no base (M*), and the few letters
# and symbols that show nothing: Hangul fillers (Unicode default-ignorable), the braille blank, and
# U+FFFD, which stands for bytes lost in decoding.
READABLE_CATEGORIES = frozenset("LNPS")
BLANK_CHARACTERS = frozenset("\u115f\u1160\u3164\uffa0\u2800\ufffd")


def has_readable_text(text: str) -> bool:
    """The one rule for "has readable text", for every text field of every endpoint."""
    return any(
        unicodedata.category(ch)[0] in READABLE_CATEGORIES and ch not in BLANK_CHARACTERS
        for ch in set(text)
    )


def _valid_unicode(value: object) -> object:
    """JSON may escape half a UTF-16 pair (\\ud83d): that is not text, whatever the field."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ValueError(
                f"has a lone UTF-16 surrogate (U+{ord(value[exc.start]):04X}) at character "
                f"{exc.start}; send valid Unicode (surrogates only come in pairs)"
            ) from None
    return value


def _readable(value: str) -> str:
    if not has_readable_text(value):
        raise ValueError(
            "has no readable text: only whitespace, control or invisible characters (zero-width "
            "spaces, direction marks...); send text with letters or digits"
        )
    return value


ReadableText = Annotated[str, BeforeValidator(_valid_unicode), AfterValidator(_readable)]
SeqLen = Annotated[int, Field(ge=SEQ_LEN_RANGE[0], le=SEQ_LEN_RANGE[1])]
AnswerLen = Annotated[int, Field(ge=ANSWER_LEN_RANGE[0], le=ANSWER_LEN_RANGE[1])]


class QAInput(BaseModel):
    """A question about a Spanish context."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={"examples": [EXAMPLE]},
    )

    context: ReadableText = Field(min_length=1, description="Text that contains the answer.")
    question: ReadableText = Field(min_length=1, description="Question about the context.")


class PassagesIn(BaseModel):
    """Which windows of the context the model reads: all, or the `top_n` most similar to the
    question by BM25 (much faster on long documents; contexts up to QA_MAX_DOCUMENT_CHARS)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    mode: Literal["all", "bm25"] = "all"
    top_n: int | None = Field(
        None,
        ge=1,
        description="Windows read with mode bm25; null = QA_PASSAGES_TOP_N, or QA_PASSAGES_SHARE "
        "of them if more.",
    )

    @model_validator(mode="after")
    def _top_n_needs_bm25(self) -> Self:
        if self.mode == "all" and self.top_n is not None:
            raise ValueError(
                f'top_n applies to mode bm25 only; mode "all" reads every window. Send '
                f'"mode": "bm25" to read the {self.top_n} best windows, or leave top_n out'
            )
        return self


def _null_is_default(value: object) -> object:
    """`"passages": null` means the default, as null does for every other option."""
    return PassagesIn() if value is None else value


class QARequest(QAInput):
    """A question plus optional decoding options (null = the model's defaults)."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={
            "examples": [
                {"context": EXAMPLE_CONTEXT, "question": EXAMPLE_QUESTION, "top_k": 3},
                {
                    "context": EXAMPLE_CONTEXT,
                    "question": "¿Quién pintó Las Meninas?",
                    "handle_impossible_answer": True,
                },
            ]
        },
    )

    model: Annotated[str | None, BeforeValidator(_valid_unicode)] = Field(
        None, min_length=1, description="Served model name; null or absent = the default model."
    )
    top_k: int | None = Field(
        None, ge=1, description="Number of answers; null = QA_TOP_K (upper bound: QA_MAX_TOP_K)."
    )
    max_answer_len: AnswerLen | None = Field(None, description="Max answer tokens.")
    max_seq_len: SeqLen | None = Field(None, description="Tokens per window.")
    doc_stride: int | None = Field(None, ge=1, description="Tokens shared by consecutive windows.")
    handle_impossible_answer: bool | None = Field(
        None, description="Let 'no answer in the text' compete with the best span (SQuAD2)."
    )
    passages: Annotated[
        PassagesIn, BeforeValidator(_null_is_default, json_schema_input_type=PassagesIn | None)
    ] = Field(default_factory=PassagesIn, description="null = read every window.")


class AnswerOut(BaseModel):
    answer: str = Field(description="The answer text, equal to context[start:end].")
    score: float = Field(description="Probability of this span.")
    start: int = Field(description="Character offset of the answer in the context.")
    end: int = Field(description="Character offset just past the answer.")


class TimingsOut(BaseModel):
    """Where the request's time went in the server (the rest is HTTP and JSON)."""

    queue_ms: float = Field(description="Waiting: for the tokenizer, then for the model.")
    tokenize_ms: float = Field(description="Cutting the text into windows of tokens.")
    inference_ms: float = Field(description="The model's passes over the windows.")
    decode_ms: float = Field(description="Finding the best spans in the model's scores.")
    total_ms: float = Field(description="From submission to the answer, all of the above.")


class ReadWindowOut(BaseModel):
    index: int = Field(description="The window's number in the context, from 0.")
    rank: int = Field(description="Its BM25 rank against the question, 1 = most similar.")
    score: float = Field(description="Its BM25 score.")
    start: int = Field(description="Character offset where the window starts in the context.")
    end: int = Field(description="Character offset just past its end.")


class PassagesOut(BaseModel):
    mode: Literal["bm25"] = "bm25"
    read: list[ReadWindowOut] = Field(description="The windows read, best ranked first.")

    @computed_field(  # type: ignore[prop-decorator]
        description="False when no word of the question (stop words dropped) occurs in the "
        "text: every window scored 0 and the first windows were read, in text order. Ask with "
        "the text's own words, or read it all (mode all)."
    )
    @property
    def matched(self) -> bool:
        return any(w.score > 0 for w in self.read)  # BM25 scores 0 only without a shared term


class QAResponse(BaseModel):
    model: str
    answers: list[AnswerOut] = Field(description="Best spans first, duplicates removed.")
    no_answer: bool = Field(description="True when 'no answer in the text' beats every span.")
    no_answer_probability: float
    num_windows: int = Field(description="Windows the context was split into.")
    timings: TimingsOut
    passages: PassagesOut | None = Field(
        None, description="The windows read, when passages.mode was bm25 (null: all were read)."
    )


class BatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    requests: list[QARequest] = Field(min_length=1, description="Up to QA_MAX_BATCH_ITEMS items.")


class BatchResponse(BaseModel):
    results: list[QAResponse]


class PredictRequest(BaseModel):
    """TF Serving / KServe V1 request body."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"instances": [EXAMPLE]}]},
    )
    instances: list[QAInput] = Field(min_length=1)


class PredictResponse(BaseModel):
    predictions: list[QAResponse]


class ModelLimits(BaseModel):
    """The model's served defaults and limits: what a client needs to build a valid request."""

    top_k: int = Field(description="Answers returned when a request sets no top_k.")
    max_seq_len: int
    doc_stride: int
    max_question_len: int
    max_answer_len: int
    max_context_chars: int
    max_document_chars: int = Field(description="Context limit with passages.mode bm25.")
    passages_top_n: int = Field(description="Windows read with passages.mode bm25 by default.")
    max_question_chars: int
    max_top_k: int
    max_batch_items: int


class ModelInfo(BaseModel):
    name: str
    model_id: str
    revision: str | None
    status: Literal["loading", "ready", "failed"]
    ready: bool
    error: str | None
    backend: str | None
    device: str | None
    dtype: str | None
    load_time_s: float | None
    default: bool
    limits: ModelLimits


class ModelList(BaseModel):
    default: str
    models: list[ModelInfo]


class ErrorResponse(BaseModel):
    error: str = Field(description="What went wrong and what to change.")
    code: str
    request_id: str | None = None
    details: list[dict[str, Any]] | None = None


class Liveness(BaseModel):
    status: Literal["alive"] = "alive"


class Readiness(BaseModel):
    status: Literal["ready", "loading", "failed"]
    models: dict[str, str]
    reason: str | None = None


class ProgressEvent(BaseModel):
    """`POST /v1/qa/stream`'s `progress` event: the request's windows computed so far."""

    windows_done: int
    windows_total: int
    elapsed_s: float
    remaining_s: float | None = Field(
        description="Estimated seconds to go at this server's measured speed; null until known."
    )

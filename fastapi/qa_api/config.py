"""Backend settings: one object, read from `QA_*` environment variables."""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal, Self

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError

from qa_api.inference.backends import BackendName
from qa_api.inference.contexts import ContextCache
from qa_api.inference.errors import InvalidInputError
from qa_api.inference.features import check_window_fits
from qa_api.inference.hardware import usable_cpus
from qa_api.inference.registry import LoadConfig, ModelRegistry
from qa_api.inference.scheduler import Policy, SchedulerConfig, SchedulerObserver
from qa_api.inference.types import QAOptions, resolve_doc_stride
from qa_api.schemas import AnswerLen, SeqLen

DEFAULT_MODEL_ID = "mrm8488/bert-base-spanish-wwm-cased-finetuned-spa-squad2-es"
PositiveInt = Annotated[int, Field(gt=0)]
LogLevel = Literal["CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG"]
MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")  # a URL path segment as it is
# Settings whose variables hold JSON (pydantic-settings reads dict and list fields so).
JSON_EXAMPLES = {
    "models": f"""QA_MODELS='{{"beto": "{DEFAULT_MODEL_ID}"}}'""",
    "cors_origins": """QA_CORS_ORIGINS='["http://localhost:8501"]'""",
}


def _default_onnx_cache() -> Path:
    hf_home = os.environ.get("HF_HOME")
    base = Path(hf_home) if hf_home else Path.home() / ".cache"
    return base / "qa-onnx"


class Settings(BaseSettings):
    """Every setting of the backend; see the README's configuration table."""

    # An empty variable (`QA_X=` in .env) is unset, as the UI and .env.example take it.
    model_config = SettingsConfigDict(env_prefix="QA_", extra="ignore", env_ignore_empty=True)

    # Models
    models: dict[str, str] = Field(
        default={"beto": DEFAULT_MODEL_ID},
        description="Served models: JSON object name -> Hugging Face id or local directory.",
    )
    default_model: str | None = Field(None, description="Model used when a request names none.")
    backend: BackendName = "auto"
    device: str = Field("auto", pattern="^(auto|cpu|cuda)$")
    num_threads: int = Field(0, ge=0, description="Inference threads; 0 = the container's CPUs.")
    onnx_cache_dir: Path = Field(default_factory=_default_onnx_cache)
    warmup: bool = True

    # Decoding defaults (a request may override the first six)
    top_k: PositiveInt = Field(1, description="Answers per request; at most QA_MAX_TOP_K.")
    max_seq_len: SeqLen = 384
    doc_stride: PositiveInt | None = Field(
        None, description="Tokens shared by consecutive windows; unset: min(max_seq_len // 2, 128)"
    )
    max_answer_len: AnswerLen = 30
    handle_impossible_answer: bool = True
    max_question_len: PositiveInt = 64

    # Input limits
    max_context_chars: PositiveInt = 50_000
    max_question_chars: PositiveInt = 1_000
    max_top_k: int = Field(10, ge=1, le=100)
    max_batch_items: PositiveInt = 32
    # Fits a QA_MAX_DOCUMENT_CHARS document: Spanish text takes about 1.1 bytes a character in
    # JSON, 1.3 with every accent escaped as \uXXXX.
    max_body_bytes: PositiveInt = 4 * 1024 * 1024

    # Passage preselection ("passages": {"mode": "bm25"}): only the top_n windows that BM25 ranks
    # first are read, so a document may be far longer than a full read (QA_MAX_CONTEXT_CHARS).
    # bench/passages.py chose top_n: recall and speed by top_n are in bench/RESULTS.md.
    max_document_chars: PositiveInt = 1_000_000
    passages_top_n: PositiveInt = 8
    # ...or this share of the windows, when more: a longer document holds more look-alike passages.
    passages_share: float = Field(0.02, ge=0, le=1)
    context_cache_mb: PositiveInt = 256  # contexts tokenized for follow-up questions

    # Runtime (inference/scheduler.py; the README's "Long texts" section says what they cost)
    # On CPU a batch of 4 windows runs as fast per window as 8, and its layers are what a short
    # question arriving behind a document waits for.
    max_batch_size: PositiveInt = 4
    # Backends that run a batch in one step (ONNX Runtime; non-BERT models) cannot be paused for
    # a short question: their batches hold at most this many padded tokens, one full window.
    max_step_tokens: int = Field(512, ge=16)
    max_batch_wait_ms: float = Field(0.0, ge=0, le=1000)
    pad_to_multiple_of: int = Field(16, ge=1, le=128)
    queue_size: PositiveInt = 64
    scheduling: Policy = "shortest_first"
    # Covers tokenizing, queueing and compute; the largest context (QA_MAX_CONTEXT_CHARS of
    # numbers and short words, ~160 windows) takes about 45 s in bf16 on 2 cores.
    request_timeout_s: float = Field(90.0, gt=0)

    # HTTP
    api_key: SecretStr | None = None  # empty = unset, as the UI takes it
    cors_origins: list[str] = []
    log_level: LogLevel = "INFO"

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except SettingsError as exc:  # says only "error parsing value for field ..."
            raise SettingsError(_json_hint(str(exc))) from exc

    @field_validator("api_key", mode="before")
    @classmethod
    def _empty_key_is_unset(cls, value: object) -> object:
        if value == "":
            return None
        if isinstance(value, str) and not value.strip():  # meant as a key: never an open API
            raise ValueError("is only spaces: set a real key, or leave it empty for no key")
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _level_in_capitals(cls, value: object) -> object:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("models")
    @classmethod
    def _model_names(cls, models: dict[str, str]) -> dict[str, str]:
        if not models:
            raise ValueError(f"no model is named; for example: {JSON_EXAMPLES['models']}")
        for name in models:
            if not MODEL_NAME.fullmatch(name):
                raise ValueError(
                    f"the model name {name!r} goes into URLs (/v1/models/{{name}}): "
                    "use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"
                )
        return models

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.default_model is None:
            self.default_model = next(iter(self.models), None)
        if self.default_model not in self.models:
            raise ValueError(
                f"QA_DEFAULT_MODEL={self.default_model!r} is not one of "
                f"QA_MODELS ({list(self.models)})"
            )
        # The longest question a request may send must leave room for the windows' overlap.
        longest, defaults = self.max_question_len, self.decoding_defaults()
        try:
            check_window_fits(longest, defaults, longest)
        except InvalidInputError:
            stride = defaults.doc_stride
            raise ValueError(
                f"QA_MAX_SEQ_LEN ({self.max_seq_len}) must be more than QA_MAX_QUESTION_LEN "
                f"({longest}) + 3 special tokens + QA_DOC_STRIDE ({stride}"
                f"{'' if self.doc_stride else ', from QA_MAX_SEQ_LEN when unset'}) = "
                f"{longest + 3 + stride}: raise QA_MAX_SEQ_LEN or lower the other two"
            ) from None
        if self.top_k > self.max_top_k:
            raise ValueError(
                f"QA_TOP_K ({self.top_k}) must be at most QA_MAX_TOP_K ({self.max_top_k})"
            )
        if self.max_document_chars < self.max_context_chars:
            raise ValueError(
                f"QA_MAX_DOCUMENT_CHARS ({self.max_document_chars}) must be at least "
                f"QA_MAX_CONTEXT_CHARS ({self.max_context_chars})"
            )
        return self

    @property
    def threads(self) -> int:
        return self.num_threads or usable_cpus()

    def decoding_defaults(self) -> QAOptions:
        return QAOptions(
            top_k=self.top_k,
            max_answer_len=self.max_answer_len,
            max_seq_len=self.max_seq_len,
            doc_stride=resolve_doc_stride(self.max_seq_len, self.doc_stride),
            handle_impossible_answer=self.handle_impossible_answer,
            bm25_top_n=None,  # a request's passages option chooses the windows (service.py)
            bm25_share=0.0,
        )

    def load_config(self) -> LoadConfig:
        return LoadConfig(
            backend=self.backend,
            device=self.device,
            threads=self.threads,
            onnx_cache_dir=self.onnx_cache_dir,
            max_question_len=self.max_question_len,
            pad_to_multiple_of=self.pad_to_multiple_of,
            warmup=self.warmup,
        )

    def model_registry(
        self, only: str | None = None, observer: SchedulerObserver | None = None
    ) -> ModelRegistry:
        """The registry of the configured models (or of the one named `only`), not loaded yet."""
        models = {only: self.models[only]} if only else self.models
        return ModelRegistry(
            models=models,
            default=only or self.default_model or "",
            defaults=self.decoding_defaults(),
            load=self.load_config(),
            scheduling=self.scheduler_config(),
            observer=observer,
            contexts=ContextCache(self.context_cache_mb * 2**20),
        )

    def scheduler_config(self) -> SchedulerConfig:
        return SchedulerConfig(
            max_batch_size=self.max_batch_size,
            max_step_tokens=self.max_step_tokens,
            max_batch_wait_ms=self.max_batch_wait_ms,
            queue_size=self.queue_size,
            policy=self.scheduling,
        )


def _json_hint(message: str) -> str:
    """pydantic-settings' message for a dict or list setting that is not JSON, with what to send."""
    found = re.search(r'field "(\w+)"', message)
    name = found.group(1) if found else ""
    if name not in JSON_EXAMPLES:
        return message
    return f"QA_{name.upper()} must be JSON; for example: {JSON_EXAMPLES[name]}"


def unknown_variables(environ: Mapping[str, str]) -> list[str]:
    """One line per QA_ variable that is no setting of the backend (a typo would be ignored).

    QA_UI_* belong to the UI, which compose may hand the same environment.
    """
    names = {f"QA_{field.upper()}" for field in Settings.model_fields}
    ours = [v for v in sorted(environ) if v.startswith("QA_") and not v.startswith("QA_UI_")]
    lines = []
    for variable in ours:
        if variable.upper() not in names:
            close = difflib.get_close_matches(variable.upper(), names, n=1)
            hint = f"; did you mean {close[0]}?" if close else ""
            lines.append(f"{variable} is not a setting of the backend, ignored{hint}")
    return lines


class ConfigurationError(SystemExit):
    """The environment's settings are invalid: exits the process with one line per setting."""


def configuration_problems(exc: ValidationError | SettingsError) -> str:
    """What is wrong, one line per setting, named as it is set (QA_...), without a traceback."""
    if isinstance(exc, SettingsError):
        return str(exc)
    lines = []
    for error in exc.errors(include_url=False):
        message = error["msg"].removeprefix("Value error, ")
        if error["loc"]:  # one field's value; else a check across fields, which names them
            field = str(error["loc"][0])
            given = "" if field == "api_key" else f" (got {error['input']!r})"  # no secrets
            message = f"QA_{field.upper()}: {message}{given}"
        lines.append(message)
    return "\n".join(lines)


@lru_cache
def get_settings() -> Settings:
    """The settings from the environment; invalid ones stop the process saying what to fix."""
    try:
        return Settings()
    except (ValidationError, SettingsError) as exc:
        raise ConfigurationError(
            f"Invalid configuration; fix these settings and start again:\n"
            f"{configuration_problems(exc)}"
        ) from None

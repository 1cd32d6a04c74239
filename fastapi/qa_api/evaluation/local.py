"""Answering questions in-process with the backend's own registry and runtime.

Same settings (`QA_*` environment variables), same loading, batching and decoding as the server,
so the numbers are those of the model the server would serve, without HTTP in between.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import logging
from typing import Any

from qa_api.config import Settings, get_settings
from qa_api.evaluation.dataset import Question
from qa_api.evaluation.runner import Answer, PredictionError
from qa_api.inference.errors import QAError
from qa_api.inference.types import QAQuery

logger = logging.getLogger(__name__)


class LocalPredictor:
    """Loads one configured model (QA_MODELS / QA_DEFAULT_MODEL) and answers through its runtime."""

    def __init__(
        self,
        *,
        model: str | None = None,
        handle_impossible_answer: bool | None = None,
        timeout_s: float = 120.0,
        settings: Settings | None = None,
    ) -> None:
        settings = settings or get_settings()
        name = model or settings.default_model or ""
        if name not in settings.models:
            served = ", ".join(sorted(settings.models))
            raise PredictionError(
                f"Unknown model '{name}'. Configured models (QA_MODELS): {served}."
            )
        self.registry = settings.model_registry(only=name)
        logger.info("loading model %s (%s) in-process", name, settings.models[name])
        self.registry.load_all()
        try:
            self.served, self.runtime = self.registry.runtime(name)
        except QAError as exc:
            raise PredictionError(exc.message) from exc
        options = self.served.defaults
        if handle_impossible_answer is not None:
            options = dataclasses.replace(
                options, handle_impossible_answer=handle_impossible_answer
            )
        self.options = options
        self.timeout_s = timeout_s

    def describe(self) -> dict[str, Any]:
        served = self.served
        return {
            "name": served.name,
            "model_id": served.source,
            "revision": served.revision,
            "backend": served.backend,
            "device": served.device,
            "dtype": served.dtype,
            "load_time_s": served.load_time_s,
        }

    def predict(self, question: Question) -> Answer:
        query = QAQuery(question=question.question, context=question.context, options=self.options)
        try:
            result = self.runtime.answer(query, timeout=self.timeout_s)
        except QAError as exc:
            raise PredictionError(exc.message) from exc
        except concurrent.futures.TimeoutError as exc:
            raise PredictionError(f"no answer within {self.timeout_s:g} s") from exc
        except Exception as exc:  # a failed batch in the worker: report it, keep evaluating
            raise PredictionError(f"inference failed: {type(exc).__name__}: {exc}") from exc
        text = "" if result.no_answer or not result.answers else result.answers[0].answer
        return Answer(text=text, na_prob=result.no_answer_probability)

    def close(self) -> None:
        self.registry.close(timeout=10)

"""Answering every question of a dataset with a predictor, concurrently, timing each one."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any, Protocol

from tqdm import tqdm

from qa_api.evaluation.dataset import Question

logger = logging.getLogger(__name__)


class PredictionError(RuntimeError):
    """A question could not be answered (HTTP error, model failure...)."""


@dataclass(frozen=True, slots=True)
class Answer:
    text: str  # "" = no answer
    na_prob: float


class Predictor(Protocol):
    def predict(self, question: Question) -> Answer: ...


class ModelClient(Predictor, Protocol):
    """A predictor for a served model: the API client or the in-process runtime."""

    def describe(self) -> dict[str, Any]: ...

    def close(self) -> None: ...


@dataclass(slots=True)
class RunResult:
    """Answers and latencies in dataset order; failed questions are left out of both."""

    answers: dict[str, Answer] = field(default_factory=dict)
    latencies_ms: dict[str, float] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)
    wall_s: float = 0.0

    @property
    def predictions(self) -> dict[str, str]:
        return {qid: a.text for qid, a in self.answers.items()}

    @property
    def na_probs(self) -> dict[str, float]:
        return {qid: a.na_prob for qid, a in self.answers.items()}


def _timed(predictor: Predictor, question: Question) -> tuple[Answer, float]:
    start = time.perf_counter()
    answer = predictor.predict(question)
    return answer, (time.perf_counter() - start) * 1000.0


def run_predictions(
    predictor: Predictor,
    questions: Sequence[Question],
    *,
    concurrency: int = 1,
    progress: bool = True,
) -> RunResult:
    """Ask every question with up to `concurrency` in flight; failures are recorded, not raised."""
    if concurrency < 1:
        raise ValueError("concurrency must be >= 1")
    answers: dict[str, Answer] = {}
    latencies: dict[str, float] = {}
    failures: dict[str, str] = {}
    bar = tqdm(total=len(questions), desc="qa-eval", unit="q", disable=not progress)
    start = time.perf_counter()
    with bar, ThreadPoolExecutor(max_workers=concurrency) as pool:
        futures = {pool.submit(_timed, predictor, q): q.qid for q in questions}
        for future in as_completed(futures):
            qid = futures[future]
            try:
                answers[qid], latencies[qid] = future.result()
            except PredictionError as exc:
                if len(failures) < 5:
                    logger.warning("question %s failed: %s", qid, exc)
                failures[qid] = str(exc)
                bar.set_postfix(failed=len(failures))
            bar.update(1)
    wall_s = time.perf_counter() - start
    order = [q.qid for q in questions]
    return RunResult(
        answers={qid: answers[qid] for qid in order if qid in answers},
        latencies_ms={qid: latencies[qid] for qid in order if qid in latencies},
        failures={qid: failures[qid] for qid in order if qid in failures},
        wall_s=wall_s,
    )

"""Quality next to speed: how often a reduced-precision backend's best answer is torch fp32's.

Real weights cannot be downloaded here, so answers cannot be scored against SQuAD's gold; what a
backend can be held to is the fp32 model it approximates. Each backend answers the same SQuAD-es
questions in-process, through the product's own loading, batching and decoding
(`qa_api.evaluation.local.LocalPredictor`), with "no answer" turned off so that every question
has a best span; the share whose text equals torch fp32's is the agreement. The questions leave
out the contexts that int8 calibration saw (qa_api/inference/data/calibration-squad-es.json).

Next to it, the agreement on the decisive questions: those where fp32's best answer scores at
least DECISIVE_MARGIN above its runner-up (log of the score ratio, from a second fp32 pass at
top_k=2). A random-weight model's logits are nearly flat, so many questions are near-ties that
any rounding may reorder; a trained model's answers are mostly decisive.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import workload

if TYPE_CHECKING:
    from qa_api.evaluation.dataset import Question

logger = logging.getLogger(__name__)

REFERENCE = "torch-fp32"
# bf16 moves a logit by up to ~0.03 here, a span's log score (start + end, renormalized) by about
# twice that: below this margin a changed best answer is a near-tie reordered, not an error.
DECISIVE_MARGIN = 0.05
REPO = Path(__file__).resolve().parents[1]
CALIBRATION = REPO / "fastapi" / "qa_api" / "inference" / "data" / "calibration-squad-es.json"


@dataclass(frozen=True)
class Agreement:
    backend: str
    questions: int
    same_answer: int
    seconds: float
    decisive: int  # questions where fp32's best answer leads by more than DECISIVE_MARGIN
    decisive_same: int  # ... and whose best answer equals torch fp32's

    @property
    def share(self) -> float:
        return self.same_answer / self.questions if self.questions else float("nan")

    @property
    def decisive_share(self) -> float:
        return self.decisive_same / self.decisive if self.decisive else float("nan")


def questions(count: int) -> list[Question]:
    """`count` SQuAD-es questions (fixed sample) whose context int8 calibration did not see."""
    from qa_api.evaluation.dataset import load_squad

    seen = {p["context"] for p in json.loads(CALIBRATION.read_text(encoding="utf-8"))["pairs"]}
    every = load_squad(workload.DATA_DIR / workload.DATASET).questions
    unseen = [q for q in every if q.context not in seen]
    step = max(1, len(unseen) // count)
    return unseen[::step][:count]


def _answers(model_dir: Path, backend: str, cache_dir: Path, asked: list[Question]) -> list[str]:
    from qa_api.config import Settings
    from qa_api.evaluation.local import LocalPredictor
    from qa_api.evaluation.runner import run_predictions

    settings = Settings(models={"beto": str(model_dir)}, backend=backend, onnx_cache_dir=cache_dir)
    predictor = LocalPredictor(settings=settings, handle_impossible_answer=False)
    try:
        # Several in flight, as in the server: windows are batched and padded as they are there.
        result = run_predictions(predictor, asked, concurrency=4, progress=False)
    finally:
        predictor.close()
    if result.failures:
        raise RuntimeError(f"{backend}: {len(result.failures)} questions failed: {result.failures}")
    return [a.text for a in result.answers.values()]


def margins(model_dir: Path, cache_dir: Path, asked: list[Question]) -> list[float]:
    """Per question, log(best / second-best answer score) under torch fp32 (inf: no runner-up)."""
    from qa_api.config import Settings
    from qa_api.evaluation.local import LocalPredictor
    from qa_api.inference.types import QAQuery

    settings = Settings(
        models={"beto": str(model_dir)}, backend=REFERENCE, onnx_cache_dir=cache_dir
    )
    predictor = LocalPredictor(settings=settings, handle_impossible_answer=False)
    options = dataclasses.replace(predictor.options, top_k=2)
    try:
        found = []
        for q in asked:
            query = QAQuery(q.question, q.context, options)
            answers = predictor.runtime.answer(query, timeout=predictor.timeout_s).answers
            scores = [a.score for a in answers]
            found.append(math.log(scores[0] / scores[1]) if len(scores) == 2 else math.inf)
    finally:
        predictor.close()
    return found


def agreement(model_dir: Path, backends: list[str], cache_dir: Path, count: int) -> list[Agreement]:
    """Agreement of each backend with torch fp32 on `count` questions, and on the decisive ones."""
    asked = questions(count)
    t0 = time.perf_counter()
    reference = _answers(model_dir, REFERENCE, cache_dir, asked)
    seconds = time.perf_counter() - t0
    decisive = [m > DECISIVE_MARGIN for m in margins(model_dir, cache_dir, asked)]
    logger.info("%d of %d questions decisive for fp32", sum(decisive), len(asked))
    results = [Agreement(REFERENCE, len(asked), len(asked), seconds, sum(decisive), sum(decisive))]
    for backend in backends:
        if backend == REFERENCE:
            continue
        t0 = time.perf_counter()
        answers = _answers(model_dir, backend, cache_dir, asked)
        same = [a == b for a, b in zip(answers, reference, strict=True)]
        decisive_same = sum(s and d for s, d in zip(same, decisive, strict=True))
        result = Agreement(
            backend, len(asked), sum(same), time.perf_counter() - t0, sum(decisive), decisive_same
        )
        results.append(result)
        logger.info(
            "%s: %d of %d best answers = torch fp32's; %d of %d decisive ones",
            backend, result.same_answer, result.questions, decisive_same, result.decisive,
        )  # fmt: skip
    return results

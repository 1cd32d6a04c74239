"""Quality next to speed: how often a reduced-precision backend's best answer is torch fp32's.

Real weights cannot be downloaded here, so answers cannot be scored against SQuAD's gold; what a
backend can be held to is the fp32 model it approximates. Each backend answers the same SQuAD-es
questions in-process, through the product's own loading, batching and decoding
(`qa_api.evaluation.local.LocalPredictor`), with "no answer" turned off so that every question
has a best span; the share whose text equals torch fp32's is the agreement. The questions leave
out the contexts that int8 calibration saw (qa_api/inference/data/calibration-squad-es.json).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import workload

if TYPE_CHECKING:
    from qa_api.evaluation.dataset import Question

logger = logging.getLogger(__name__)

REFERENCE = "torch-fp32"
REPO = Path(__file__).resolve().parents[1]
CALIBRATION = REPO / "fastapi" / "qa_api" / "inference" / "data" / "calibration-squad-es.json"


@dataclass(frozen=True)
class Agreement:
    backend: str
    questions: int
    same_answer: int
    seconds: float

    @property
    def share(self) -> float:
        return self.same_answer / self.questions if self.questions else float("nan")


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


def agreement(model_dir: Path, backends: list[str], cache_dir: Path, count: int) -> list[Agreement]:
    """Agreement of each backend with torch fp32 on `count` questions."""
    asked = questions(count)
    t0 = time.perf_counter()
    reference = _answers(model_dir, REFERENCE, cache_dir, asked)
    results = [Agreement(REFERENCE, len(asked), len(asked), time.perf_counter() - t0)]
    for backend in backends:
        if backend == REFERENCE:
            continue
        t0 = time.perf_counter()
        answers = _answers(model_dir, backend, cache_dir, asked)
        same = sum(a == b for a, b in zip(answers, reference, strict=True))
        results.append(Agreement(backend, len(asked), same, time.perf_counter() - t0))
        logger.info("%s: %d of %d best answers = torch fp32's", backend, same, len(asked))
    return results

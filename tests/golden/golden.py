"""What the golden file holds and how its cases are chosen; shared by make_golden and the tests."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tests.paths import DATA_DIR, SQUAD_V1_SAMPLE, SQUAD_V2_SAMPLE

GOLDEN_FILE = DATA_DIR / "golden" / "qa-pipeline-4.57.6-tiny.json"
QUESTIONS = 80  # spread evenly over both excerpts; keeps the file near 3 MB
# (max_seq_len, doc_stride): the pipeline's defaults, and windows small enough that most
# SQuAD-es contexts span several of them.
WINDOWINGS = ((384, 128), (96, 48))
TOP_KS = (1, 5, 10)
MAX_ANSWER_LENS = (15, 30)
HANDLE_IMPOSSIBLE = (False, True)
MAX_QUESTION_TOKENS = 40  # leaves room for a 48-token stride in a 96-token window
# Random weights rarely favour [CLS], so the null answer would never rank; these runs add a
# constant to position 0 of the start and end logits so it ranks first or among the top_k.
CLS_BOOSTS = (0.25, 0.5, 0.75)
BOOSTED_TOP_KS = (5,)  # the null ranked first here is the no-answer decision of top_k 1


@dataclass(frozen=True)
class Sample:
    question: str
    context: str


def squad_samples() -> list[Sample]:
    """Every question of both SQuAD-es excerpts, in file order."""
    samples = []
    for path in (SQUAD_V1_SAMPLE, SQUAD_V2_SAMPLE):
        for article in json.loads(path.read_text(encoding="utf-8"))["data"]:
            for paragraph in article["paragraphs"]:
                samples += [Sample(qa["question"], paragraph["context"]) for qa in paragraph["qas"]]
    return samples


def option_grid() -> list[dict[str, Any]]:
    """Per input: every option set on the model's logits, then the boosted-[CLS] runs."""
    plain = [
        {"cls_boost": 0.0, "top_k": k, "max_answer_len": n, "handle_impossible_answer": h}
        for k in TOP_KS
        for n in MAX_ANSWER_LENS
        for h in HANDLE_IMPOSSIBLE
    ]
    boosted = [
        {"cls_boost": b, "top_k": k, "max_answer_len": 15, "handle_impossible_answer": True}
        for b in CLS_BOOSTS
        for k in BOOSTED_TOP_KS
    ]
    return plain + boosted


def with_cls_boost(logits: list[np.ndarray], boost: float) -> list[np.ndarray]:
    """The windows' logits with `boost` added at position 0 ([CLS]), in float32 as torch adds it."""
    boosted = [np.array(window, dtype=np.float32) for window in logits]
    for window in boosted:
        window[0] += np.float32(boost)
    return boosted


def model_fingerprint(model_dir: Path) -> str:
    """sha256 of the tokenizer and of every weight, so a golden is only read with its own model."""
    from safetensors.numpy import load_file

    digest = hashlib.sha256((model_dir / "tokenizer.json").read_bytes())
    weights = load_file(str(model_dir / "model.safetensors"))
    for name in sorted(weights):
        digest.update(name.encode())
        digest.update(np.ascontiguousarray(weights[name]).tobytes())
    return digest.hexdigest()


def load_golden() -> dict[str, Any]:
    result: dict[str, Any] = json.loads(GOLDEN_FILE.read_text(encoding="utf-8"))
    return result

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
    return [
        {"top_k": k, "max_answer_len": n, "handle_impossible_answer": h}
        for k in TOP_KS
        for n in MAX_ANSWER_LENS
        for h in HANDLE_IMPOSSIBLE
    ]


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

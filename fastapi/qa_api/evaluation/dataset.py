"""Reading SQuAD v1.1 / v2.0 JSON files into a flat list of questions."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class DatasetError(ValueError):
    """The file is not a SQuAD JSON file we can evaluate on."""


@dataclass(frozen=True, slots=True)
class Question:
    qid: str
    context: str
    question: str
    answers: tuple[str, ...]  # gold answer texts; empty = unanswerable (SQuAD v2.0)


@dataclass(frozen=True, slots=True)
class Dataset:
    version: str  # "1.1" or "2.0"
    questions: list[Question]

    @property
    def gold(self) -> dict[str, tuple[str, ...]]:
        return {q.qid: q.answers for q in self.questions}

    @property
    def num_unanswerable(self) -> int:
        return sum(1 for q in self.questions if not q.answers)


def parse_squad(raw: Any, limit: int | None = None) -> Dataset:
    """Flatten SQuAD JSON in file order, keeping the first `limit` questions."""
    try:
        articles = raw["data"]
        questions: list[Question] = []
        seen: set[str] = set()
        is_v2 = False
        for article in articles:
            for paragraph in article["paragraphs"]:
                context = paragraph["context"]
                for qa in paragraph["qas"]:
                    if limit is not None and len(questions) >= limit:
                        break
                    qid = str(qa["id"])
                    if qid in seen:
                        raise DatasetError(f"duplicate question id {qid!r}")
                    seen.add(qid)
                    is_v2 = is_v2 or "is_impossible" in qa
                    answers = tuple(a["text"] for a in qa["answers"])
                    questions.append(Question(qid, context, qa["question"], answers))
    except (KeyError, TypeError) as exc:
        raise DatasetError(f"not a SQuAD JSON file (missing or malformed field: {exc})") from exc
    if not questions:
        raise DatasetError("the file has no questions")
    is_v2 = is_v2 or str(raw.get("version", "")).lstrip("v").startswith("2")
    return Dataset(version="2.0" if is_v2 else "1.1", questions=questions)


def load_squad(path: Path, limit: int | None = None) -> Dataset:
    try:
        with path.open(encoding="utf-8") as f:
            raw = json.load(f)
    except OSError as exc:
        raise DatasetError(f"cannot read {path}: {exc.strerror}") from exc
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{path} is not valid JSON: {exc}") from exc
    return parse_squad(raw, limit)

"""The session's questions and answers, exportable as CSV or JSON."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict, dataclass, fields
from datetime import datetime

from qa_ui.client import QARequest, QAResult


@dataclass(frozen=True)
class HistoryEntry:
    time: str
    model: str
    question: str
    answer: str
    score: float | None
    no_answer: bool
    no_answer_probability: float | None
    top_k: int | None  # None: the served default
    context_chars: int
    server_ms: float
    round_trip_ms: float
    request_id: str | None

    @classmethod
    def from_result(
        cls, request: QARequest, result: QAResult, when: datetime | None = None
    ) -> HistoryEntry:
        best = result.best
        shown = best is not None and not result.no_answer
        return cls(
            time=(when or datetime.now()).isoformat(timespec="seconds"),
            model=result.model,
            question=request.question,
            answer=best.answer if best is not None and shown else "",
            score=round(best.score, 4) if best is not None and shown else None,
            no_answer=result.no_answer,
            no_answer_probability=(
                None
                if result.no_answer_probability is None
                else round(result.no_answer_probability, 4)
            ),
            top_k=request.top_k,
            context_chars=len(request.context),
            server_ms=round(result.timings.total_ms, 1),
            round_trip_ms=round(result.round_trip_ms, 1),
            request_id=result.request_id,
        )


COLUMNS = tuple(f.name for f in fields(HistoryEntry))
# A cell starting with one of these is a formula to a spreadsheet (CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: object) -> object:
    """OWASP's CSV-injection escape: a text that a spreadsheet would run gets a leading quote."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def to_csv(entries: list[HistoryEntry]) -> str:
    """RFC 4180 CSV, starting with a byte-order mark: without it Excel reads UTF-8 as cp1252."""
    buffer = io.StringIO()
    buffer.write("\ufeff")
    # RFC 4180's CRLF ends a row, so a field with either character in it is quoted.
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    for entry in entries:
        writer.writerow({name: _cell(value) for name, value in asdict(entry).items()})
    return buffer.getvalue()


def to_json(entries: list[HistoryEntry]) -> str:
    return json.dumps([asdict(e) for e in entries], ensure_ascii=False, indent=2)

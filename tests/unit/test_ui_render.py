"""Pure rendering and helpers of the UI: highlighting by offsets, escaping, uploads, history."""

from __future__ import annotations

import csv
import io
import json
import random
from datetime import datetime

import pytest

from qa_ui.client import Answer, QARequest
from qa_ui.documents import DocumentError, extract_text
from qa_ui.examples import EXAMPLES
from qa_ui.history import COLUMNS, HistoryEntry, to_csv, to_json
from qa_ui.render import ANSWER_COLOURS, alternatives_list, highlight_context, snippet
from qa_ui.testing import make_result, minimal_pdf
from qa_ui.texts import TEXTS, millis, percent, thousands

pytestmark = pytest.mark.unit

STYLE = 'padding:0.1em 0.15em; border-radius:0.25em;">'


def test_highlight_follows_offsets_and_escapes_everything() -> None:
    context = "<b>Ana</b> & Ana"
    answers = [Answer("Ana", 0.8, 13, 16), Answer("<b>Ana</b>", 0.1, 0, 10)]

    html = highlight_context(context, answers)

    assert html.endswith(
        f'title="#2 0.100" style="background:{ANSWER_COLOURS[1]}; color:#1a1a1a; '
        f"{STYLE}&lt;b&gt;Ana&lt;/b&gt;</mark> &amp; "
        '<mark class="qa-answer qa-answer-0" data-rank="1" title="#1 0.800" '
        f'style="background:{ANSWER_COLOURS[0]}; color:#1a1a1a; {STYLE}Ana</mark></div>'
    )
    assert "<b>" not in html


def test_offsets_outside_the_context_are_ignored() -> None:
    html = highlight_context("abc", [Answer("x", 0.5, 2, 9), Answer("y", 0.5, 2, 2)])
    assert "<mark" not in html
    assert html.endswith(">abc</div>")


def test_partial_overlap_keeps_both_spans() -> None:
    context = "0123456789"
    html = highlight_context(context, [Answer("2345", 0.6, 2, 6), Answer("4567", 0.3, 4, 8)])

    assert f'title="#1 0.600 · #2 0.300" style="background:{ANSWER_COLOURS[0]}' in html
    assert f'{STYLE}23<span class="qa-nested" data-rank="2"' in html
    assert f'{ANSWER_COLOURS[1]};">45</span></mark><mark class="qa-answer qa-answer-1"' in html
    assert f"{STYLE}67</mark>89</div>" in html


def test_snippet_cuts_around_the_answer() -> None:
    context = "x" * 200 + "RESPUESTA" + "y" * 200
    html = snippet(context, Answer("RESPUESTA", 0.9, 200, 209), radius=5)
    assert '>…xxxxx<mark class="qa-answer qa-answer-0"' in html
    assert f"{STYLE}RESPUESTA</mark>yyyyy…</div>" in html


def test_alternatives_list_escapes_answers() -> None:
    html = alternatives_list([Answer("<i>x</i>", 0.5, 0, 8)], ["50 %"])
    assert "<b>&lt;i&gt;x&lt;/i&gt;</b>" in html
    assert ANSWER_COLOURS[0] in html


def test_examples_are_consistent() -> None:
    assert len({e.key for e in EXAMPLES}) == len(EXAMPLES)
    assert [e.key for e in EXAMPLES if e.expected is None] == ["sin_respuesta"]
    for example in EXAMPLES:
        if example.expected is not None:
            assert example.expected in example.context
        assert example.question.startswith("¿")
        assert example.question.endswith("?")


def test_both_languages_have_every_string() -> None:
    assert TEXTS["es"].keys() == TEXTS["en"].keys()
    assert (percent(0.9123), percent(0.9123, "en")) == ("91,2 %", "91.2%")
    assert (millis(1.25), thousands(50000), thousands(50000, "en")) == (
        "1,2 ms",
        "50.000",
        "50,000",
    )


@pytest.mark.parametrize(
    ("name", "data", "text"),
    [
        ("a.txt", "ñandú\r\n\r\n\r\n\r\nfin  \n".encode(), "ñandú\n\nfin"),
        ("a.MD", "\ufeff# Título".encode(), "# Título"),
        ("a.txt", "canción".encode("cp1252"), "canción"),
        # Windows Notepad's "Unicode" (UTF-16 LE with a BOM), and its big-endian twin.
        (
            "a.txt",
            "\ufeffMiguel de Cervantes, año 1605".encode("utf-16-le"),
            "Miguel de Cervantes, año 1605",
        ),
        ("a.txt", "\ufeffcanción".encode("utf-16-be"), "canción"),
        ("a.pdf", minimal_pdf(["Línea uno", "Línea (dos)"]), "Línea uno\nLínea (dos)"),
    ],
)
def test_extract_text(name: str, data: bytes, text: str) -> None:
    assert extract_text(name, data) == text


@pytest.mark.parametrize(
    ("name", "data", "code"),
    [
        ("a.docx", b"PK", "unsupported"),
        ("a.txt", b"  \n ", "empty"),
        ("a.txt", b"", "empty"),
        ("a.txt", random.Random(0).randbytes(4096), "binary"),
        ("a.md", b"texto\x00con NUL", "binary"),
        ("a.txt", "\ufeffab".encode("utf-16-le") + b"\x00\xd8", "unreadable"),  # cut surrogate
        ("a.pdf", b"%PDF-1.4 broken", "unreadable"),
        ("a.pdf", minimal_pdf([]), "no_text"),
    ],
)
def test_extract_text_errors(name: str, data: bytes, code: str) -> None:
    with pytest.raises(DocumentError) as caught:
        extract_text(name, data)
    assert caught.value.code == code


def test_history_exports() -> None:
    context = "Miguel de Cervantes escribió el Quijote."
    request = QARequest(context, "¿Quién?", top_k=2)
    answered = make_result(context, [("Miguel de Cervantes", 0.91234)])
    missing = make_result(context, [("Quijote", 0.01)], no_answer=True, no_answer_probability=0.9)
    when = datetime(2026, 1, 2, 3, 4, 5)
    entries = [
        HistoryEntry.from_result(request, answered, when),
        HistoryEntry.from_result(request, missing, when),
    ]

    exported = to_csv(entries)
    assert exported.startswith("\ufeff")  # a spreadsheet then reads it as UTF-8, not cp1252
    rows = list(csv.DictReader(io.StringIO(exported.removeprefix("\ufeff"))))
    assert tuple(rows[0]) == COLUMNS
    assert rows[0]["answer"] == "Miguel de Cervantes"
    assert rows[0]["score"] == "0.9123"
    assert (rows[1]["answer"], rows[1]["score"], rows[1]["no_answer"]) == ("", "", "True")
    data = json.loads(to_json(entries))
    assert data[0] == {
        "time": "2026-01-02T03:04:05",
        "model": "beto",
        "question": "¿Quién?",
        "answer": "Miguel de Cervantes",
        "score": 0.9123,
        "no_answer": False,
        "no_answer_probability": 0.05,
        "top_k": 2,
        "context_chars": len(context),
        "server_ms": 42.5,
        "round_trip_ms": 45.5,
        "request_id": "req-test",
    }


@pytest.mark.parametrize(
    "text", ['=HYPERLINK("http://x","a")', "+1+1", "-2+3", "@SUM(A1)", "\tx", "\rx"]
)
def test_csv_export_escapes_formulas(text: str) -> None:
    """OWASP CSV injection: a spreadsheet must show these cells as text, not run them."""
    context = text + " es la respuesta."
    result = make_result(context, [(text, 0.5)])
    entry = HistoryEntry.from_result(QARequest(context, text), result, datetime(2026, 1, 2))
    exported = to_csv([entry]).removeprefix("\ufeff")
    row = next(csv.DictReader(io.StringIO(exported, newline="")))
    assert (row["question"], row["answer"]) == ("'" + text, "'" + text)
    assert row["model"] == "beto"
    assert json.loads(to_json([entry]))[0]["question"] == text  # JSON keeps the text as it is

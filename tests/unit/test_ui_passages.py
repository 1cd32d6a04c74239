"""Long documents in the UI (AppTest, scripted client): reading by passages, the one-click full
read, the answer's page and snippet, the full text opened at the answer."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest
from fpdf import FPDF
from streamlit.testing.v1 import AppTest

from qa_ui.client import QARequest, QAResult, ReadWindow
from qa_ui.testing import FakeQAClient, make_result

pytestmark = pytest.mark.unit

FILLER = "El comercio de la lana creció en los puertos del norte durante aquel siglo. "


def answered_from(windows: int, read: int) -> Callable[[QARequest], QAResult]:
    """A responder that finds "Bilbao" and says it read `read` of `windows` windows in bm25."""

    def respond(request: QARequest) -> QAResult:
        result = replace(make_result(request.context, [("Bilbao", 0.8)]), num_windows=windows)
        if request.passages != "bm25":
            return result
        spans = [ReadWindow(i, i + 1, 9.0 - i, i * 100, i * 100 + 90) for i in range(read)]
        return replace(result, read_windows=tuple(spans))

    return respond


def ask(at: AppTest, context: str, question: str = "¿Dónde?") -> AppTest:
    at.text_area(key="context").input(context)
    at.text_input(key="question").input(question)
    at.button(key="ask").click().run()
    assert not at.exception
    return at


def test_a_long_text_is_read_by_passages_with_a_one_click_full_read(
    app: Callable[[], AppTest], fake: FakeQAClient
) -> None:
    fake.responder = answered_from(windows=40, read=8)
    context = (
        FILLER * 300 + "El puerto de Bilbao se amplió en 1902. " + FILLER * 100
    )  # ~30,000 chars
    at = ask(app(), context)

    assert fake.calls[-1].passages == "bm25"
    assert fake.calls[-1].payload()["passages"] == {"mode": "bm25"}
    page = "\n".join(m.value for m in at.markdown)
    assert "Se leyeron 8 de los 40 pasajes, los más parecidos a la pregunta" in page
    # The answer in its sentence, and the full text in a view opened at it.
    assert '<div class="qa-snippet"' in page
    assert '<mark class="qa-answer qa-answer-0"' in page
    assert "El puerto de " in page

    at.button(key="read_all_button").click().run()

    assert len(fake.calls) == 2
    assert fake.calls[-1].passages is None  # the backend's default: every window
    assert fake.calls[-1].context == context
    assert "Se leyeron" not in "\n".join(m.value for m in at.markdown)


def test_a_question_bm25_cannot_rank_says_the_first_passages_were_read(
    app: Callable[[], AppTest], fake: FakeQAClient
) -> None:
    ranked = answered_from(windows=40, read=8)
    fake.responder = lambda r: replace(ranked(r), passages_matched=False)
    at = ask(app(), FILLER * 300 + "El puerto de Bilbao se amplió en 1902.", "¿Qué es?")
    page = "\n".join(m.value for m in at.markdown)
    assert "Ninguna palabra de la pregunta aparece en el texto" in page
    assert "los 8 primeros pasajes de 40" in page
    assert at.button(key="read_all_button")


def test_a_short_text_is_read_whole(app: Callable[[], AppTest], fake: FakeQAClient) -> None:
    fake.responder = answered_from(windows=1, read=1)
    ask(app(), "El puerto de Bilbao se amplió en 1902.")
    assert fake.calls[-1].passages is None
    assert "passages" not in fake.calls[-1].payload()


def test_a_text_too_long_to_read_whole_says_so(
    app: Callable[[], AppTest], fake: FakeQAClient
) -> None:
    fake.responder = answered_from(windows=60, read=8)
    context = FILLER * 700 + "El puerto de Bilbao se amplió en 1902."  # > 50,000 characters
    at = ask(app(), context)

    assert fake.calls[-1].passages == "bm25"
    assert not [b for b in at.button if b.key == "read_all_button"]
    assert any("demasiado largo para leerlo entero" in c.value for c in at.caption)


def test_the_answer_of_an_uploaded_pdf_shows_its_page(
    app: Callable[[], AppTest], fake: FakeQAClient
) -> None:
    pdf = FPDF()
    for n in range(1, 6):
        pdf.add_page()
        pdf.set_font("Helvetica", size=11)
        text = "El puerto de Bilbao se amplió en 1902." if n == 4 else f"Página {n}: {FILLER}"
        pdf.multi_cell(0, 6, text)
    fake.responder = answered_from(windows=1, read=1)
    at = app()
    at.file_uploader(key="upload").set_value(
        ("informe.pdf", bytes(pdf.output()), "application/pdf")
    ).run()
    at.text_input(key="question").input("¿Dónde?")
    at.button(key="ask").click().run()

    page = "\n".join(m.value for m in at.markdown)
    assert "pág. 4</div>" in page
    # Edited after the upload, the text has no pages any more.
    ask(at, at.text_area(key="context").value + " Añadido.")
    assert "pág." not in "\n".join(m.value for m in at.markdown)

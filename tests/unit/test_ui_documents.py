"""Documents in the UI: PDF page boundaries, the answer's snippet and page, the full-text view,
and timings in units people read."""

from __future__ import annotations

import pytest
from fpdf import FPDF

from qa_ui.client import Answer
from qa_ui.documents import Document, extract_document, extract_text
from qa_ui.reading import can_read_all, estimated_windows, mode_for
from qa_ui.render import document_view, duration, snippet, snippet_span
from qa_ui.testing import SERVED_LIMITS

pytestmark = pytest.mark.unit


def pdf_pages(pages: list[list[str]]) -> bytes:
    """A real multi-page PDF (fpdf2, Helvetica): each page's paragraphs as wrapped text."""
    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(auto=False)
    for paragraphs in pages:
        pdf.add_page()
        pdf.set_font("Helvetica", size=11)
        for paragraph in paragraphs:
            pdf.multi_cell(0, 6, paragraph)
            pdf.ln(4)
    return bytes(pdf.output())


def page_text(n: int) -> list[str]:
    return [
        f"Capítulo {n}. El río número {n} nace en la sierra y desemboca en el mar tras recorrer "
        f"muchos kilómetros de valles, pueblos y campos de cultivo.",
        f"Marca{n}: ¿dónde está la página {n}?",
    ]


def test_pdf_pages_map_offsets_to_page_numbers() -> None:
    pages = [page_text(1), page_text(2), [], page_text(4), page_text(5), []]
    document = extract_document("informe.pdf", pdf_pages(pages))

    assert len(document.page_starts) == 6
    for n in (1, 2, 4, 5):
        marker = document.text.index(f"Marca{n}:")
        assert document.page_of(marker) == n
        assert document.page_of(document.text.index(f"Capítulo {n}.")) == n
    assert document.text.startswith("Capítulo 1.")
    assert "\n\n\n" not in document.text
    assert document.page_of(len(document.text) - 1) == 5
    assert document.page_of(len(document.text)) is None
    assert extract_text("informe.pdf", pdf_pages(pages)) == document.text


def test_a_long_pdf_keeps_every_page() -> None:
    pages = [page_text(n) for n in range(1, 41)]
    document = extract_document("libro.pdf", pdf_pages(pages))
    found = [document.page_of(document.text.index(f"Marca{n}:")) for n in range(1, 41)]
    assert found == list(range(1, 41))


def test_text_files_have_no_pages() -> None:
    document = extract_document("notas.txt", b"Hola  \r\n\r\n\r\nmundo")
    assert document == Document("Hola\n\nmundo")
    assert document.page_of(0) is None


def test_snippet_is_the_answers_sentence() -> None:
    context = "Primera frase larga. Cervantes nació en Alcalá de Henares en 1547. Otra frase."
    answer = Answer("Alcalá de Henares", 0.9, context.index("Alcalá"), context.index(" en 1547"))

    assert context[slice(*snippet_span(context, answer))] == (
        "Cervantes nació en Alcalá de Henares en 1547."
    )
    html = snippet(context, answer, page_label="pág. 12 <b>")
    assert '</div>…Cervantes nació en <mark class="qa-answer qa-answer-0"' in html
    assert ">Alcalá de Henares</mark> en 1547.…</div>" in html
    assert "pág. 12 &lt;b&gt;</div>" in html


def test_snippet_of_a_long_sentence_is_cut_at_spaces() -> None:
    context = "palabra " * 60 + "RESPUESTA" + " final" * 60
    start = context.index("RESPUESTA")
    left, right = snippet_span(context, Answer("RESPUESTA", 0.5, start, start + 9), radius=30)
    assert context[left:right] == "palabra palabra palabra RESPUESTA final final final final"


def test_snippet_stops_at_paragraph_breaks() -> None:
    context = "Título del informe\n\nEl puerto de Bilbao se\namplió en 1902\n\nSiguiente párrafo"
    start = context.index("1902")
    assert context[slice(*snippet_span(context, Answer("1902", 0.5, start, start + 4)))] == (
        "El puerto de Bilbao se\namplió en 1902"
    )


@pytest.mark.parametrize(
    ("ms", "es", "en"),
    [
        (0.42, "0,4 ms", "0.4 ms"),
        (4.25, "4,2 ms", "4.2 ms"),
        (85.4, "85 ms", "85 ms"),
        (999.4, "999 ms", "999 ms"),
        (8339.2, "8,3 s", "8.3 s"),
        (59_940.0, "59,9 s", "59.9 s"),
        (125_000.0, "2 min 05 s", "2 min 05 s"),
    ],
)
def test_durations_read_like_people_say_them(ms: float, es: str, en: str) -> None:
    assert (duration(ms), duration(ms, "en")) == (es, en)


def test_document_view_opens_at_the_selected_answer_and_escapes_labels() -> None:
    context = "Uno <i>dos</i>. Tres cuatro. Cinco."
    answers = [Answer("Tres", 0.6, 16, 20), Answer("Cinco", 0.3, 29, 34)]

    html = document_view(context, answers, ["#1 Tres <x>", "#2 Cinco"], selected=1)

    assert html.startswith("<!doctype html>")
    assert '<button class="qa-goto" data-rank="2"' in html
    assert ">#1 Tres &lt;x&gt;</button>" in html
    assert "Uno &lt;i&gt;dos&lt;/i&gt;." in html
    assert 'class="qa-answer qa-answer-1" data-rank="2"' in html
    assert "    show(2);\n" in html


LIMITS = SERVED_LIMITS  # windows of 384 tokens, stride 128, 50,000 characters read whole


def test_long_texts_are_read_by_passages_unless_the_user_asks_for_all() -> None:
    assert estimated_windows(100, LIMITS) == 1
    assert estimated_windows(30_000, LIMITS) == 28  # SQuAD-es measured about 27 for such texts
    assert mode_for(5_000, LIMITS) == "all"
    assert mode_for(40_000, LIMITS) == "bm25"
    assert mode_for(40_000, LIMITS, read_all=True) == "all"
    assert mode_for(400_000, LIMITS, read_all=True) == "bm25"  # too long to read whole
    assert (can_read_all(50_000, LIMITS), can_read_all(50_001, LIMITS)) == (True, False)

"""A real browser uploads a long PDF to the real UI and backend (tiny model): the text is read by
passages, the answer shows its page and sentence, the full text opens scrolled to it, and
clicking another answer moves there."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fpdf import FPDF

from qa_ui.client import QAClient, QARequest
from qa_ui.config import UISettings
from qa_ui.documents import extract_document
from tests.e2e.conftest import StartUI

pytestmark = pytest.mark.e2e

PAGES = 40
QUESTION = "¿En qué año se amplió el puerto de Bilbao?"

# Whether the answer of a rank is inside the full-text box's visible area, and how far it is
# scrolled; run inside the full-text view's frame.
IN_VIEW_JS = """rank => {
  const box = document.querySelector('.qa-context');
  const mark = box.querySelector(`[data-rank="${rank}"]`);
  const b = box.getBoundingClientRect(), m = mark.getBoundingClientRect();
  return {visible: m.top >= b.top && m.bottom <= b.bottom, scrollTop: box.scrollTop,
          selected: mark.classList.contains("qa-selected")};
}"""


def long_pdf(path: Path) -> Path:
    topics = [
        "la cosecha de trigo",
        "los puertos del Cantábrico",
        "la música barroca",
        "las vías romanas",
    ]
    pdf = FPDF()
    for n in range(1, PAGES + 1):
        pdf.add_page()
        pdf.set_font("Helvetica", size=10)
        for line in range(8):
            topic = topics[(n + line) % len(topics)]
            pdf.multi_cell(
                0,
                5,
                f"Página {n}, párrafo {line}: un estudio sobre {topic}, sus fechas, lugares y personas, con detalle y ejemplos de cada época.",
                new_x="LMARGIN",
                new_y="NEXT",
            )
        if n == 23:
            pdf.multi_cell(
                0,
                5,
                "El puerto de Bilbao se amplió en el año 1902 con un muelle nuevo.",
                new_x="LMARGIN",
                new_y="NEXT",
            )
    pdf.output(str(path))
    return path


def answer_frame(page: Any) -> Any:
    for frame in page.frames:
        if frame != page.main_frame and frame.locator(".qa-goto").count():
            return frame
    raise AssertionError("no full-text view on the page")


def test_upload_a_long_pdf_ask_and_see_the_answer_in_view(
    page: Any, backend_server: Any, start_ui: StartUI, tmp_path: Path, screenshot_dir: Path
) -> None:
    pdf = long_pdf(tmp_path / "informe.pdf")
    document = extract_document(pdf.name, pdf.read_bytes())
    assert len(document.text) > 30_000  # more windows than the UI reads whole
    expected = QAClient(UISettings(backend_url=backend_server.url)).ask(
        QARequest(
            document.text,
            QUESTION,
            top_k=3,
            max_answer_len=30,
            handle_impossible_answer=False,
            passages="bm25",
        )
    )
    assert expected.read_windows  # the backend read by passages
    best = expected.answers[0]
    best_page = document.page_of(best.start)

    ui = start_ui(backend_server.url)
    page.goto(ui.url)
    page.get_by_text("Servidor listo").wait_for()
    page.get_by_test_id("stSidebar").get_by_text("Permitir «sin respuesta»").click()
    page.locator("input[type=file]").set_input_files(str(pdf))
    page.get_by_text("Texto cargado de «informe.pdf»").wait_for()
    page.get_by_label("Pregunta", exact=True).fill(QUESTION)
    page.get_by_role("button", name="Preguntar").click()

    snippet = page.locator(".qa-snippet")
    snippet.wait_for()
    assert f"pág. {best_page}" in snippet.inner_text()
    assert best.answer in snippet.locator("mark").inner_text()
    note = f"Se leyeron {len(expected.read_windows)} de los {expected.num_windows} pasajes, los más parecidos a la pregunta"
    page.get_by_text(note).wait_for()
    page.get_by_role("button", name="Leer todo").wait_for()

    frame = answer_frame(page)
    frame.wait_for_function("() => document.querySelector('.qa-selected') !== null")
    best_view = frame.evaluate(IN_VIEW_JS, 1)
    assert best_view["visible"], best_view
    assert best_view["selected"]
    assert best_view["scrollTop"] > 0 or best.start < 2_000  # opened away from the text's start
    page.screenshot(path=str(screenshot_dir / "ui-document.png"))

    # Another answer, elsewhere in the document: one click brings it into view.
    others = [rank for rank, a in enumerate(expected.answers[1:], start=2) if a.start != best.start]
    if others:
        frame.locator(f'.qa-goto[data-rank="{others[0]}"]').click()
        moved = frame.evaluate(IN_VIEW_JS, others[0])
        assert moved["visible"], moved
        assert moved["selected"]

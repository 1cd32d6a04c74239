"""A real browser against the real UI and backend processes: ask, see the answer, survive outages."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import pytest

from qa_ui.client import QAClient, QARequest, QAResult
from qa_ui.config import UISettings
from qa_ui.examples import EXAMPLES_BY_KEY, Example
from tests.conftest import StartBackend
from tests.e2e.conftest import StartUI
from tests.processes import start_backend

pytestmark = pytest.mark.e2e

# Where the best answer's <mark>s sit inside the rendered context, in characters.
BEST_SPAN_JS = """() => {
  const root = document.querySelector('.qa-context');
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  let offset = 0, start = null, end = null;
  while (walker.nextNode()) {
    const node = walker.currentNode;
    const inBest = node.parentElement.closest('mark[data-rank="1"]') !== null;
    if (inBest && start === null) start = offset;
    offset += node.textContent.length;
    if (inBest) end = offset;
  }
  return {text: root.textContent, start, end};
}"""


def expected(backend_url: str, example: Example, allow_no_answer: bool) -> QAResult:
    """What the backend answers for the UI's default settings (the tiny model is deterministic)."""
    client = QAClient(UISettings(backend_url=backend_url))
    return client.ask(
        QARequest(
            example.context,
            example.question,
            top_k=3,
            max_answer_len=30,
            handle_impossible_answer=allow_no_answer,
        )
    )


def pick_example(page: Any, example: Example) -> None:
    page.get_by_test_id("stSelectbox").filter(has_text="Ejemplos").click()
    page.get_by_role("option", name=example.title).click()
    page.wait_for_function(
        "text => document.querySelector('textarea')?.value === text", arg=example.context
    )


def settle(page: Any) -> None:
    """Wait until Streamlit has finished the current run (no faded, stale elements left)."""
    page.wait_for_function("() => !document.querySelector('[data-stale=\"true\"]')")
    page.wait_for_timeout(300)


def ask(page: Any) -> None:
    page.get_by_role("button", name="Preguntar").click()


def test_ask_highlight_outage_and_recovery(
    page: Any,
    start_backend_process: StartBackend,
    start_ui: StartUI,
    tiny_model_dir: Path,
    tmp_path: Path,
    screenshot_dir: Path,
) -> None:
    backend = start_backend_process()
    ui = start_ui(backend.url)
    page.goto(ui.url)
    page.get_by_text("Servidor listo").wait_for()
    assert page.get_by_role("link", name="Documentación de la API").get_attribute("href") == (
        backend.url + "/docs"
    )

    # 1. Pick an example, ask, see the backend's best answer highlighted at its offsets.
    quijote = EXAMPLES_BY_KEY["quijote"]
    allow_no_answer = True
    want = expected(backend.url, quijote, allow_no_answer)
    if want.no_answer:
        # Random weights: make sure this step sees a span, by switching "no answer" off.
        allow_no_answer = False
        page.get_by_test_id("stSidebar").get_by_text("Permitir «sin respuesta»").click()
        want = expected(backend.url, quijote, allow_no_answer)
    best = want.best
    assert best is not None
    pick_example(page, quijote)
    ask(page)
    page.locator(".qa-best-text").wait_for()
    assert page.locator(".qa-best-text").inner_text() == best.answer
    span = page.evaluate(BEST_SPAN_JS)
    assert span == {"text": quijote.context, "start": best.start, "end": best.end}
    ranked = [a.answer for a in want.answers]
    assert page.locator(".qa-alt b").all_inner_texts() == (ranked if len(ranked) > 1 else [])
    page.get_by_text("Ida y vuelta").wait_for()
    settle(page)
    page.screenshot(path=str(screenshot_dir / "ui-answer-tiny-model.png"))

    # 2. The example without an answer in its text.
    if not allow_no_answer:
        page.get_by_test_id("stSidebar").get_by_text("Permitir «sin respuesta»").click()
    missing = EXAMPLES_BY_KEY["sin_respuesta"]
    pick_example(page, missing)
    ask(page)
    if expected(backend.url, missing, True).no_answer:
        page.get_by_text("No hay respuesta en el texto").wait_for()
    else:
        page.locator(".qa-best-text").wait_for()
    settle(page)

    # 3. Backend down: a clear message, no traceback.
    port = int(backend.url.rsplit(":", 1)[1])
    backend.stop(signal.SIGKILL)
    ask(page)
    main = page.get_by_test_id("stMainBlockContainer")
    main.get_by_text("No se puede contactar con el servidor").wait_for()
    page.get_by_text("Servidor no disponible").wait_for()
    assert page.get_by_test_id("stException").count() == 0
    assert "Traceback" not in page.content()
    settle(page)
    page.screenshot(path=str(screenshot_dir / "ui-backend-down.png"))

    # 4. The backend comes back on the same address: the same page works again.
    revived = start_backend(tiny_model_dir, tmp_path, port=port)
    try:
        revived.wait_for("/health/ready")
        page.get_by_text("Servidor listo").wait_for(timeout=30_000)
        pick_example(page, quijote)
        ask(page)
        page.locator(".qa-best-text").wait_for()
        assert main.get_by_text("No se puede contactar con el servidor").count() == 0
    finally:
        revived.stop()


def test_html_in_the_context_stays_inert(page: Any, backend_server: Any, start_ui: StartUI) -> None:
    ui = start_ui(backend_server.url)
    page.goto(ui.url)
    page.get_by_text("Servidor listo").wait_for()
    context = (
        'Hola <img src=x onerror="window.__pwned=1"> <script>window.__pwned=2</script> '
        "soy <b>Juan</b> y vivo en Madrid."
    )
    # Without "no answer" the model always returns a span, so the context is always shown.
    page.get_by_test_id("stSidebar").get_by_text("Permitir «sin respuesta»").click()
    page.get_by_label("Texto (contexto)").fill(context)
    page.get_by_label("Pregunta", exact=True).fill("¿Dónde vive Juan?")
    ask(page)
    page.locator(".qa-context").wait_for()

    assert page.evaluate("() => window.__pwned") is None
    assert page.locator(".qa-context img, .qa-context script, .qa-context b").count() == 0
    texts = page.locator(".qa-context").all_text_contents()
    assert texts
    assert all(text == context for text in texts)


def test_answer_no_answer_and_compare_views(
    page: Any, scripted_backend: Any, start_ui: StartUI, screenshot_dir: Path
) -> None:
    """Against the contract stub, which answers like a trained model (the README's pictures)."""
    ui = start_ui(scripted_backend.url)
    page.goto(ui.url)
    page.get_by_text("Servidor listo").wait_for()

    quijote = EXAMPLES_BY_KEY["quijote"]
    pick_example(page, quijote)
    ask(page)
    page.locator(".qa-best-text").wait_for()
    assert page.locator(".qa-best-text").inner_text() == "Miguel de Cervantes Saavedra"
    page.get_by_text("Confianza: 93,0 %").first.wait_for()
    start = quijote.context.index("Miguel")
    span = page.evaluate(BEST_SPAN_JS)
    assert span == {"text": quijote.context, "start": start, "end": start + 28}
    swatches = page.locator(".qa-alt .qa-swatch").evaluate_all(
        "spans => spans.map(s => getComputedStyle(s).backgroundColor)"
    )
    assert len(set(swatches)) == 3  # best answer and two alternatives, each its own colour
    marks = page.locator(".qa-context mark").evaluate_all(
        "marks => marks.map(m => getComputedStyle(m).backgroundColor)"
    )
    # "Cervantes" lies inside the best answer: it is underlined there in its own colour.
    assert set(marks) == {swatches[0], swatches[2]}
    nested = page.locator(".qa-context .qa-nested")
    assert nested.inner_text() == "Cervantes"
    assert swatches[1] in nested.evaluate("n => getComputedStyle(n).boxShadow")
    settle(page)
    page.screenshot(path=str(screenshot_dir / "ui-answer.png"))

    pick_example(page, EXAMPLES_BY_KEY["sin_respuesta"])
    ask(page)
    page.get_by_text("No hay respuesta en el texto").wait_for()
    page.get_by_text("Probabilidad de que no haya respuesta: 94,0 %").wait_for()
    assert page.locator(".qa-best-text").count() == 0
    settle(page)
    page.screenshot(path=str(screenshot_dir / "ui-no-answer.png"))

    pick_example(page, quijote)
    page.get_by_text("Comparar todos los modelos").click()
    ask(page)
    page.get_by_text("Comparación de modelos").wait_for()
    assert page.locator(".qa-best-text").all_inner_texts() == ["Miguel de Cervantes Saavedra"] * 2
    page.get_by_test_id("stMainBlockContainer").get_by_text("beto-onnx-int8", exact=True).wait_for()
    settle(page)
    page.screenshot(path=str(screenshot_dir / "ui-compare.png"))

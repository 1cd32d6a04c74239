"""A real browser: what the user types stays through every rerun before "Preguntar" (a slider,
a toggle, the language, the backend's status changing) and a pasted text over the limit is cut
with a message, not dropped."""

from __future__ import annotations

import re
from typing import Any

import pytest

from qa_ui.client import QAClient
from qa_ui.config import UISettings
from qa_ui.texts import thousands
from tests.e2e.conftest import StartUI

pytestmark = pytest.mark.e2e

TEXT = "Cervantes nació en Alcalá de Henares en 1547."
QUESTION = "¿Dónde nació Cervantes?"


def boxes(page: Any) -> tuple[str, str]:
    return page.locator("textarea").input_value(), page.get_by_test_id(
        "stTextInputField"
    ).input_value()


def type_both(page: Any, text: str, question: str) -> None:
    """Typed key by key, like a person, the second box left focused (nothing sent yet)."""
    for box, value in (
        (page.locator("textarea"), text),
        (page.get_by_test_id("stTextInputField"), question),
    ):
        box.click()
        page.keyboard.press("ControlOrMeta+A")
        page.keyboard.type(value, delay=2)


def settle(page: Any) -> None:
    page.wait_for_function("() => !document.querySelector('[data-stale=\"true\"]')")
    page.wait_for_timeout(1_500)


def test_typed_text_survives_reruns(page: Any, scripted_backend: Any, start_ui: StartUI) -> None:
    ui = start_ui(scripted_backend.url)
    page.goto(ui.url)
    page.get_by_text("Servidor listo").wait_for()
    sidebar = page.get_by_test_id("stSidebar")

    # Typed at once: the first status poll (3 s later) reruns the page.
    type_both(page, TEXT, QUESTION)
    page.wait_for_timeout(4_500)
    settle(page)
    assert boxes(page) == (TEXT, QUESTION)

    sidebar.get_by_role("slider").first.focus()
    page.keyboard.press("ArrowRight")
    settle(page)
    assert boxes(page) == (TEXT, QUESTION)

    sidebar.get_by_text("Permitir «sin respuesta»").click()
    settle(page)
    assert boxes(page) == (TEXT, QUESTION)

    # The closed model box follows the language too (it kept the Spanish label).
    default = QAClient(UISettings(backend_url=scripted_backend.url)).models().default
    model_box = sidebar.get_by_test_id("stSelectbox").locator("input")
    assert model_box.input_value() == f"{default} (predeterminado)"
    sidebar.get_by_text("English").click()
    page.get_by_text("Server ready").wait_for()
    settle(page)
    assert boxes(page) == (TEXT, QUESTION)
    assert model_box.input_value() == f"{default} (default)"
    sidebar.get_by_text("English").click()
    page.get_by_text("Servidor listo").wait_for()
    settle(page)
    assert model_box.input_value() == f"{default} (predeterminado)"

    # The typed text is unknown until sent (a form): the counter says the limit, not "0 de".
    main = page.get_by_test_id("stMainBlockContainer")
    assert main.get_by_text(re.compile(r"^Hasta [\d.]+ caracteres · hasta ")).count() == 1
    assert main.get_by_text(re.compile(r"\d de [\d.]+ caracteres")).count() == 0

    # Asked, then edited: a rerun keeps the edit, not the text that was sent.
    page.get_by_role("button", name="Preguntar").click()
    page.get_by_text("Ida y vuelta").wait_for()
    main.get_by_text(f"Último texto enviado: {len(TEXT)} de ", exact=False).wait_for()
    settle(page)
    type_both(page, "Lope de Vega nació en Madrid.", "¿Quién?")
    sidebar.get_by_role("slider").first.focus()
    page.keyboard.press("ArrowRight")
    settle(page)
    assert boxes(page) == ("Lope de Vega nació en Madrid.", "¿Quién?")

    # The backend goes away: the status changes, the page reruns, the text stays.
    type_both(page, TEXT, QUESTION)
    scripted_backend.stop()
    page.get_by_text("Servidor no disponible").wait_for()
    settle(page)
    assert boxes(page) == (TEXT, QUESTION)


def test_pasted_text_over_the_limit_is_cut_and_said(
    page: Any, scripted_backend: Any, start_ui: StartUI
) -> None:
    info = QAClient(UISettings(backend_url=scripted_backend.url)).models()
    limits = info.models[0].limits
    ui = start_ui(scripted_backend.url)
    page.goto(ui.url)
    page.get_by_text("Servidor listo").wait_for()
    settle(page)

    question = page.get_by_test_id("stTextInputField")
    question.click()
    page.keyboard.insert_text("¿" + "a" * limits.max_question_chars + "?")
    page.locator("textarea").click()
    text = "palabra " * (limits.max_document_chars // 8 + 5_000)
    page.keyboard.insert_text(text)
    page.get_by_role("button", name="Preguntar").click()
    main = page.get_by_test_id("stMainBlockContainer")
    pasted = thousands(len(text), "es")
    limit = thousands(limits.max_document_chars, "es")
    main.get_by_text(f"El texto tenía {pasted} caracteres; se ha recortado a {limit}.").wait_for()
    long_question = f"acórtala a {thousands(limits.max_question_chars, 'es')} caracteres"
    main.get_by_text(long_question, exact=False).wait_for()
    settle(page)
    assert len(page.locator("textarea").input_value()) == limits.max_document_chars
    assert len(question.input_value()) == limits.max_question_chars + 2  # kept, to be shortened

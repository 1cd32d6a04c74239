"""A real browser, a real backend that wants an API key, and a UI started without it."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import StartBackend
from tests.e2e.conftest import StartUI

pytestmark = pytest.mark.e2e


def test_a_refused_api_key_shows_in_the_status_panel(
    page: Any, start_backend_process: StartBackend, start_ui: StartUI
) -> None:
    backend = start_backend_process(env={"QA_API_KEY": "s3cret"})
    ui = start_ui(backend.url)
    page.goto(ui.url)

    sidebar = page.get_by_test_id("stSidebar")
    sidebar.get_by_text("El servidor rechaza la clave de API (HTTP 401)").wait_for()
    sidebar.get_by_text("La interfaz no envía ninguna clave: pon en QA_UI_API_KEY").wait_for()
    assert sidebar.get_by_text("Servidor listo").count() == 0

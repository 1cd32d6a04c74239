"""Fixtures of the UI's AppTest tests: the app with its backend client replaced at its seam."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:  # Streamlit is imported by the UI tests only, not by every unit test
    from streamlit.testing.v1 import AppTest

    from qa_ui.testing import FakeQAClient

APP = str(Path(__file__).resolve().parents[2] / "streamlit" / "app.py")


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeQAClient]:
    """The fake that the app's cached get_client() will build instead of a QAClient."""
    import streamlit as st

    from qa_ui import client as client_module
    from qa_ui.testing import FakeQAClient

    fake = FakeQAClient()
    monkeypatch.setattr(client_module, "QAClient", lambda settings: fake)
    monkeypatch.setenv("QA_UI_PUBLIC_API_URL", "http://qa.example:8008")
    st.cache_resource.clear()
    yield fake
    st.cache_resource.clear()


@pytest.fixture
def app(fake: FakeQAClient) -> Callable[[], AppTest]:
    """Starts the app (first run done, no exception) talking to `fake`."""
    from streamlit.testing.v1 import AppTest

    def start() -> AppTest:
        at = AppTest.from_file(APP, default_timeout=30)
        at.run()
        assert not at.exception
        return at

    return start

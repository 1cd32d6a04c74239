"""The API docs work without internet: a browser that may reach only localhost reads /docs, /redoc."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from qa_api.schemas import EXAMPLE_QUESTION
from tests.processes import ServiceProcess

pytestmark = pytest.mark.e2e

LOCAL_HOSTS = {"127.0.0.1", "localhost"}
ENDPOINTS = ["/v1/qa", "/v1/qa/batch", "/v1/models", "/qas/", "/health/ready"]


@pytest.fixture
def offline_page(page: Any) -> tuple[Any, list[str]]:
    """The browser page with every request outside localhost aborted; the aborted URLs."""
    blocked: list[str] = []

    def only_localhost(route: Any) -> None:
        if urlsplit(route.request.url).hostname in LOCAL_HOSTS:
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort("internetdisconnected")

    page.context.route("**/*", only_localhost)
    return page, blocked


def test_swagger_ui_lists_the_endpoints_with_spanish_examples_offline(
    offline_page: tuple[Any, list[str]], backend_server: ServiceProcess, screenshot_dir: Path
) -> None:
    page, blocked = offline_page
    page.goto(f"{backend_server.url}/docs")
    page.get_by_role("heading", name="Spanish QA API").wait_for()
    shown = page.locator(".opblock-summary-path").all_inner_texts()
    for endpoint in ENDPOINTS:
        assert endpoint in [path.replace("\u200b", "") for path in shown], shown

    ask = page.locator(".opblock-post").filter(
        has=page.locator(".opblock-summary-path", has_text="/v1/qa")
    )
    ask.first.locator(".opblock-summary").click()
    example = ask.first.locator(".body-param__example, .model-example .example").first
    example.wait_for()
    assert EXAMPLE_QUESTION in example.inner_text()
    page.screenshot(path=str(screenshot_dir / "api-docs-offline.png"))

    # The page is not only drawn: "Try it out" reaches the real backend and shows its answer.
    ask.first.get_by_role("button", name="Try it out").click()
    ask.first.get_by_role("button", name="Execute").click()
    response = ask.first.locator(".live-responses-table tr.response .response-col_status").first
    response.wait_for()
    assert response.inner_text().strip() == "200"
    assert blocked == [], f"the docs asked the internet for {blocked}"


def test_redoc_renders_offline(
    offline_page: tuple[Any, list[str]], backend_server: ServiceProcess
) -> None:
    page, blocked = offline_page
    page.goto(f"{backend_server.url}/redoc")
    page.get_by_role("heading", name="Answer a question about a context").first.wait_for()
    assert EXAMPLE_QUESTION in page.locator("body").inner_text()
    assert blocked == [], f"the docs asked the internet for {blocked}"

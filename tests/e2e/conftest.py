"""Browser fixtures: Debian's chromium driven by Playwright, and the UI as a real process."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.processes import REPO, UI_DIR, ServiceProcess, free_port

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

StartUI = Callable[[str], ServiceProcess]


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Debian's /usr/bin/chromium (never a downloaded browser)."""
    if not CHROMIUM.exists():
        if os.environ.get("QA_REQUIRE_E2E") == "1" or os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing (make setup installs it; apt-get install chromium)")
        pytest.skip(f"{CHROMIUM} not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1440, "height": 1100}, locale="es-ES")
    page = context.new_page()
    page.set_default_timeout(30_000)
    yield page
    context.close()


@pytest.fixture
def screenshot_dir(tmp_path: Path) -> Path:
    """Where screenshots go: $QA_E2E_SCREENSHOT_DIR, else the test's temporary folder."""
    target = Path(os.environ.get("QA_E2E_SCREENSHOT_DIR") or tmp_path / "screenshots")
    target.mkdir(parents=True, exist_ok=True)
    return target


@pytest.fixture
def start_ui(tmp_path: Path) -> Iterator[StartUI]:
    """Factory: start(backend_url) -> the Streamlit app as a process on a free loopback port."""
    started: list[ServiceProcess] = []

    def start(backend_url: str) -> ServiceProcess:
        port = free_port()
        env = {
            "QA_UI_BACKEND_URL": backend_url,
            "QA_UI_PUBLIC_API_URL": backend_url,
            "QA_UI_TIMEOUT_S": "20",
            "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false",
            "STREAMLIT_CLIENT_TOOLBAR_MODE": "minimal",
        }
        log_path = tmp_path / f"ui-{port}.log"
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", str(UI_DIR / "app.py"),
             "--server.address", "127.0.0.1", "--server.port", str(port),
             "--server.headless", "true", "--global.developmentMode", "false"],
            cwd=UI_DIR,
            env={**os.environ, **env},
            stdout=log_path.open("wb"),
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        ui = ServiceProcess(f"http://127.0.0.1:{port}", proc, log_path, env)
        started.append(ui)
        ui.wait_for("/_stcore/health")
        return ui

    yield start
    for ui in started:
        ui.stop()


@pytest.fixture
def scripted_backend(tmp_path: Path) -> Iterator[ServiceProcess]:
    """tests/e2e/contract_stub.py as a process: the API contract with a trained model's answers."""
    port = free_port()
    log_path = tmp_path / f"stub-{port}.log"
    env = {"PYTHONPATH": os.pathsep.join([str(REPO), str(UI_DIR)])}
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.e2e.contract_stub", str(port)],
        cwd=REPO,
        env={**os.environ, **env},
        stdout=log_path.open("wb"),
        stderr=subprocess.STDOUT,
    )
    stub = ServiceProcess(f"http://127.0.0.1:{port}", proc, log_path, env)
    stub.wait_for("/health/ready")
    yield stub
    stub.stop()

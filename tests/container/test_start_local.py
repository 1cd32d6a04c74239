"""./start.sh --local: both services as local processes from .venv, without Docker."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.container.stack import CONTEXT, QUESTION, REPO, run
from tests.processes import free_port

pytestmark = pytest.mark.container


def stack_env(api_port: int, ui_port: int, model_dir: Path) -> dict[str, str]:
    if not (REPO / ".venv" / "bin" / "streamlit").exists():
        pytest.fail("run `make setup` first: --local uses the project's .venv", pytrace=False)
    return {
        **{
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("QA_", "FASTAPI_", "STREAMLIT_"))
        },
        "FASTAPI_PORT": str(api_port),
        "STREAMLIT_PORT": str(ui_port),
        "QA_MODELS": json.dumps({"tiny": str(model_dir)}),
        "HF_HUB_OFFLINE": "1",
    }


def test_local_mode_starts_answers_and_stops(tiny_model_dir: Path) -> None:
    api_port, ui_port = free_port(), free_port()
    env = stack_env(api_port, ui_port, tiny_model_dir)
    start = REPO / "start.sh"
    try:
        up = run([str(start), "--local", "--timeout", "180"], env=env, timeout=240)
        assert f"http://localhost:{ui_port}" in up.stdout
        assert f"http://localhost:{api_port}/docs" in up.stdout
        assert "fastapi: running" in run([str(start), "--local", "status"], env=env).stdout

        answer = httpx.post(
            f"http://127.0.0.1:{api_port}/v1/qa",
            json={"context": CONTEXT, "question": QUESTION},
            timeout=30,
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["model"] == "tiny"
        health = httpx.get(f"http://127.0.0.1:{ui_port}/_stcore/health", timeout=10)
        assert (health.status_code, health.text) == (200, "ok")
    finally:
        run([str(start), "--local", "stop"], env=env, timeout=60)
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{api_port}/health/live", timeout=5)
    assert "fastapi: stopped" in run([str(start), "--local", "status"], env=env).stdout


def test_local_mode_refuses_bad_ui_settings_before_starting_anything(tiny_model_dir: Path) -> None:
    """The UI's health says ok while its page shows only its settings error: ./start.sh checks
    them first and names each bad one."""
    api_port, ui_port = free_port(), free_port()
    env = {
        **stack_env(api_port, ui_port, tiny_model_dir),
        "QA_UI_TIMEOUT_S": "abc",
        "QA_UI_MAX_UPLOAD_MB": "-1",
        "QA_UI_TOP_K": "0",
    }
    start = REPO / "start.sh"
    try:
        done = subprocess.run(
            [str(start), "--local", "--timeout", "180"],
            env=env,
            capture_output=True,
            text=True,
            timeout=240,
            check=False,
        )
        assert done.returncode == 1, done.stdout + done.stderr
        assert "The stack is up" not in done.stdout
        for message in (
            "QA_UI_TIMEOUT_S must be a number, got 'abc'",
            "QA_UI_MAX_UPLOAD_MB must be > 0",
            "QA_UI_TOP_K must be >= 1",
        ):
            assert f"\n  {message}\n" in done.stderr, done.stderr
        assert "starting the backend" not in done.stdout
        assert "fastapi: stopped" in run([str(start), "--local", "status"], env=env).stdout
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"http://127.0.0.1:{api_port}/health/live", timeout=5)
    finally:
        run([str(start), "--local", "stop"], env=env, timeout=60)

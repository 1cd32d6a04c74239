"""./start.sh --local: both services as local processes from .venv, without Docker."""

from __future__ import annotations

import json
import os
from pathlib import Path

import httpx
import pytest

from tests.container.stack import CONTEXT, QUESTION, REPO, run
from tests.processes import free_port

pytestmark = pytest.mark.container


def test_local_mode_starts_answers_and_stops(tiny_model_dir: Path) -> None:
    if not (REPO / ".venv" / "bin" / "streamlit").exists():
        pytest.fail("run `make setup` first: --local uses the project's .venv", pytrace=False)
    api_port, ui_port = free_port(), free_port()
    env = {
        **{
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("QA_", "FASTAPI_", "STREAMLIT_"))
        },
        "FASTAPI_PORT": str(api_port),
        "STREAMLIT_PORT": str(ui_port),
        "QA_MODELS": json.dumps({"tiny": str(tiny_model_dir)}),
        "HF_HUB_OFFLINE": "1",
    }
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

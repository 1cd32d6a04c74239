"""./start.sh fails with clear, actionable messages: no Docker, a port taken, a model that fails."""

from __future__ import annotations

import json
import os
import shutil
import socket
from pathlib import Path

import pytest

from tests.container.stack import REPO, Stack, run, stack_env
from tests.processes import free_port

pytestmark = pytest.mark.container


def test_without_docker_it_says_how_to_get_it(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("dirname", "grep", "tail", "cat", "cut", "head"):
        found = shutil.which(tool)
        assert found, tool
        (bin_dir / tool).symlink_to(found)
    bash = shutil.which("bash")
    assert bash
    env = {"PATH": str(bin_dir), "HOME": os.environ.get("HOME", "/tmp")}
    result = run([bash, str(REPO / "start.sh")], env=env, timeout=60, check=False)
    assert result.returncode == 1
    assert "Docker is not installed" in result.stderr
    assert "./start.sh --local" in result.stderr


def test_a_taken_port_is_named_before_anything_starts(
    docker_engine: None, mounted_models: Path
) -> None:
    with socket.socket() as blocker:
        blocker.bind(("0.0.0.0", free_port()))
        blocker.listen()
        port = blocker.getsockname()[1]
        stack = Stack(stack_env(mounted_models, STREAMLIT_PORT=str(port)))
        result = stack.start_sh("--no-build", timeout=120, check=False)
    assert result.returncode == 1
    assert f"port {port} is already in use" in result.stderr
    assert "STREAMLIT_PORT=" in result.stderr
    assert stack.containers("fastapi") == [], "nothing may start when a port is taken"


def test_a_model_that_cannot_load_shows_the_backends_reason(
    docker_engine: None, mounted_models: Path
) -> None:
    # Offline (test override) and not on disk: the backend reports why it is not ready.
    missing = "/models/no-such-model"
    stack = Stack(stack_env(mounted_models, QA_MODELS=json.dumps({"broken": missing})))
    try:
        result = stack.start_sh(timeout=900, check=False)
        assert result.returncode == 1, result.stdout
        assert "the backend could not load its model" in result.stderr
        assert "no-such-model" in result.stderr, result.stderr
        assert "MODELS_DIR" in result.stderr
        assert stack.containers("streamlit") == [], "the UI must wait for a healthy backend"
    finally:
        stack.down()

"""A model file the server may not read: readiness says "permission denied", never "No such file".

`save_pretrained` writes model.safetensors with mode 0600, so a directory written by one user and
served by another (the container's uid 10001) cannot be read; transformers alone would report
"No such file or directory".
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.processes import ServiceProcess, start_backend

# Root reads anything; without these two capabilities it obeys file modes like any user.
AS_ORDINARY_USER = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", "--"]
SOMEONE_ELSE = 65534  # nobody: the owner of the weights when this test runs as root


@pytest.fixture
def model_dir(tiny_model_dir: Path, tmp_path: Path) -> Path:
    """The tiny model with its files as `save_pretrained` wrote them (model.safetensors 0600)."""
    out = tmp_path / "beto"
    shutil.copytree(tiny_model_dir, out)
    assert (out / "model.safetensors").stat().st_mode & 0o777 == 0o600
    return out


def hide(path: Path) -> None:
    """Make path unreadable to the server, as a 0600 file of the host user's is to uid 10001."""
    if os.getuid() == 0:
        os.chown(path, SOMEONE_ELSE, SOMEONE_ELSE)
    else:  # one's own 0600 file stays readable: take the owner's bits away too
        path.chmod(0)


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Any]:
    started: list[ServiceProcess] = []

    def start(model_dir: Path) -> dict[str, Any]:
        prefix = AS_ORDINARY_USER if os.getuid() == 0 else []
        if prefix and not shutil.which("setpriv"):
            pytest.skip("needs setpriv (util-linux) to drop root's file capabilities")
        backend = start_backend(model_dir, tmp_path, prefix=prefix)
        started.append(backend)
        backend.wait_for("/health/ready", status=503)
        deadline = time.monotonic() + 60
        body: dict[str, Any] = httpx.get(f"{backend.url}/health/ready").json()
        while body["status"] == "loading" and time.monotonic() < deadline:
            time.sleep(0.1)
            body = httpx.get(f"{backend.url}/health/ready").json()
        return body

    yield start
    for backend in started:
        backend.stop()


def test_unreadable_weights_are_named_with_the_uid_and_the_fix(model_dir: Path, serve: Any) -> None:
    weights = model_dir / "model.safetensors"
    hide(weights)
    body = serve(model_dir)
    assert body == {
        "status": "failed",
        "models": {"tiny": "failed"},
        "reason": f"tiny: PermissionError: permission denied: {weights} is not readable by uid "
        f"{os.getuid()}, the user this service runs as. Fix: chmod -R a+rX {model_dir} (on the "
        "host's copy when the directory is mounted)",
    }


def test_an_unreadable_directory_is_named(model_dir: Path, serve: Any) -> None:
    hide(model_dir)
    model_dir.chmod(0o700 if os.getuid() == 0 else 0)
    try:
        body = serve(model_dir)
    finally:
        os.chown(model_dir, os.getuid(), os.getgid())
        model_dir.chmod(0o755)
    assert body["status"] == "failed"
    assert (
        f"permission denied: {model_dir} is not readable by uid {os.getuid()}" in (body["reason"])
    )
    assert "No such file" not in body["reason"]

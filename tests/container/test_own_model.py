"""The README's "Offline / your own fine-tune", followed word for word with a fresh save_pretrained.

`save_pretrained` writes model.safetensors with mode 0600 (readable by its writer only) and the
backend runs as uid 10001: ./start.sh must say so before starting anything, with the one command
that fixes it, and the stack must come up after that command.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from qa_api.testing.random_model import build_random_qa_model
from tests.container.stack import CONTEXT, QUESTION, Stack, stack_env
from tests.paths import DATA_DIR

pytestmark = pytest.mark.container


@pytest.fixture
def models_dir() -> Iterator[Path]:
    """`mkdir models`, then the fine-tune saved into models/beto by save_pretrained, untouched."""
    root = Path(tempfile.mkdtemp(prefix="qa-own-models-"))
    root.chmod(0o755)  # what `mkdir` gives under umask 022 (mkdtemp makes it private)
    build_random_qa_model(root / "beto", size="tiny", data_dir=DATA_DIR)
    yield root
    shutil.rmtree(root, ignore_errors=True)


def printed_fix(stderr: str) -> str:
    """The command start.sh printed as the fix."""
    (line,) = [line for line in stderr.splitlines() if "chmod" in line]
    return line[line.index("chmod") :]


def test_a_fresh_save_pretrained_model_is_caught_then_served_after_the_printed_fix(
    docker_engine: None, models_dir: Path
) -> None:
    weights = models_dir / "beto" / "model.safetensors"
    assert weights.stat().st_mode & 0o777 == 0o600, "save_pretrained's own mode"
    stack = Stack(
        stack_env(models_dir, QA_MODELS=json.dumps({"beto": "/models/beto"}), HF_HUB_OFFLINE="1")
    )
    try:
        refused = stack.start_sh(check=False)
        assert refused.returncode == 1, refused.stdout
        assert "permission denied: /models/beto/model.safetensors" in refused.stderr
        assert "uid 10001" in refused.stderr
        assert "No such file" not in refused.stderr
        assert printed_fix(refused.stderr) == f"chmod -R a+rX {models_dir}"
        assert stack.containers("fastapi") == [], "nothing may start before the fix"

        subprocess.run(printed_fix(refused.stderr), shell=True, check=True)
        up = stack.start_sh()
        assert "fastapi is healthy" in up.stdout
        assert "streamlit is healthy" in up.stdout

        answer = httpx.post(
            f"{stack.api_url}/v1/qa", json={"context": CONTEXT, "question": QUESTION}, timeout=30
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["model"] == "beto"

        # The API docs come from the image itself (no CDN): page, script and stylesheet.
        docs = httpx.get(f"{stack.api_url}/docs", timeout=10)
        assert docs.status_code == 200
        for asset in ("swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js"):
            assert f"/docs-assets/{asset}" in docs.text + httpx.get(f"{stack.api_url}/redoc").text
            served = httpx.get(f"{stack.api_url}/docs-assets/{asset}", timeout=10)
            assert served.status_code == 200, asset
            assert len(served.content) > 100_000, asset
    finally:
        stack.down()

"""The container tier: the real docker-compose.yml, built and brought up through ./start.sh.

Needs a Docker engine and docker compose (`bash ../shared/tools/docker-sandbox.sh` prepares both
on a machine without registry access). Locally the tier is skipped without Docker; under CI=true
a missing engine, or any skipped test of this tier, fails the run instead.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.container.stack import MODEL_NAME, compose_command


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _docker_problem() -> str | None:
    if not shutil.which("docker"):
        return "no docker command"
    info = subprocess.run(["docker", "info"], capture_output=True, text=True, check=False)
    if info.returncode != 0:
        return f"the Docker engine does not answer: {info.stderr.strip()[-300:]}"
    if compose_command() == ["docker-compose"] and not shutil.which("docker-compose"):
        return "neither `docker compose` nor `docker-compose` is installed"
    return None


@pytest.fixture(scope="session")
def docker_engine() -> None:
    """A working Docker engine, or a skip (a failure under CI)."""
    problem = _docker_problem()
    if problem is None:
        return
    message = f"{problem} (prepare one with: bash ../shared/tools/docker-sandbox.sh)"
    if _in_ci():
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Under CI a skipped container test is a hole in the proof: fail the run."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if not _in_ci() or reporter is None:
        return
    skipped = [r for r in reporter.stats.get("skipped", []) if "tests/container/" in r.nodeid]
    if skipped and session.exitstatus == 0:
        reporter.write_line(f"CI: {len(skipped)} container test(s) skipped -> failing the run")
        session.exitstatus = 1


@pytest.fixture(scope="session")
def mounted_models(tiny_model_dir: Path) -> Iterator[Path]:
    """A host directory holding tiny/ (the random-weight QA model), readable by the image's user.

    pytest's own temp directories are private to this user (0700); the container runs as an
    unprivileged uid, so the bind-mounted copy is made world-readable (save_pretrained's 0600
    model.safetensors too: a model mounted as written is test_own_model.py's subject).
    """
    root = Path(tempfile.mkdtemp(prefix="qa-models-"))
    shutil.copytree(tiny_model_dir, root / MODEL_NAME)
    for path in [root, *root.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    yield root
    shutil.rmtree(root, ignore_errors=True)

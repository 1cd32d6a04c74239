"""Shared fixtures: a tiny random-weight QA model and real backend processes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from qa_api.testing.random_model import build_random_qa_model
from tests.paths import DATA_DIR
from tests.processes import ServiceProcess, start_backend

TIERS = ("unit", "integration", "e2e", "container")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The folder is the tier: tests/<tier>/... gets the <tier> marker."""
    for item in items:
        parts = Path(str(item.fspath)).parts
        for tier in TIERS:
            if tier in parts:
                item.add_marker(getattr(pytest.mark, tier))


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real Hugging Face model directory: tiny BERT QA, random weights, Spanish WordPiece."""
    out = tmp_path_factory.mktemp("models") / "tiny"
    return build_random_qa_model(out, size="tiny", data_dir=DATA_DIR)


StartBackend = Callable[..., ServiceProcess]


@pytest.fixture
def start_backend_process(tiny_model_dir: Path, tmp_path: Path) -> Iterator[StartBackend]:
    """Factory: start(env={...}, wait=True) -> a backend process, stopped after the test."""
    started: list[ServiceProcess] = []

    def start(env: dict[str, str] | None = None, wait: bool = True, **kw: object) -> ServiceProcess:
        backend = start_backend(kw.pop("model_dir", tiny_model_dir), tmp_path, env)  # type: ignore[arg-type]
        started.append(backend)
        if wait:
            backend.wait_for("/health/ready")
        return backend

    yield start
    for backend in started:
        backend.stop()


@pytest.fixture(scope="session")
def backend_server(
    tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceProcess]:
    """One backend process for the whole session (tiny model, torch fp32), ready to answer."""
    backend = start_backend(tiny_model_dir, tmp_path_factory.mktemp("backend"))
    backend.wait_for("/health/ready")
    yield backend
    backend.stop()

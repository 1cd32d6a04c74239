"""NNCF is optional (fastapi/requirements-int8.txt): without it openvino-int8 fails to load with
what to install, in the readiness reason, and fp32's cache key does not depend on it."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from qa_api.config import Settings
from qa_api.inference import openvino_export
from qa_api.main import create_app


@pytest.fixture
def without_nncf(monkeypatch: pytest.MonkeyPatch) -> None:
    """NNCF as if not installed: a None entry in sys.modules makes find_spec and import fail."""
    monkeypatch.setitem(sys.modules, "nncf", None)


@pytest.mark.usefixtures("without_nncf")
def test_int8_without_nncf_reports_what_to_install(tiny_model_dir: Path, tmp_path: Path) -> None:
    settings = Settings(
        models={"tiny": str(tiny_model_dir)}, backend="openvino-int8", onnx_cache_dir=tmp_path
    )
    with TestClient(create_app(settings)) as client:
        deadline = time.monotonic() + 60
        while (ready := client.get("/health/ready")).json()["status"] == "loading":
            assert time.monotonic() < deadline
            time.sleep(0.05)
    assert ready.status_code == 503
    assert ready.json()["status"] == "failed"
    assert ready.json()["reason"] == f"tiny: ModuleNotFoundError: {openvino_export.INT8_INSTALL}"
    assert "pip install -r fastapi/requirements-int8.txt" in ready.json()["reason"]
    assert list(tmp_path.iterdir()) == []  # failed before any conversion started


def test_fp32_cache_key_does_not_need_nncf(
    tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with_nncf = openvino_export._target(tiny_model_dir, "fp32", tmp_path)
    int8 = openvino_export._target(tiny_model_dir, "int8", tmp_path)
    assert int8.parent == with_nncf.parent  # int8 is quantized from the fp32 IR beside it
    assert "nncf" in int8.name  # a new NNCF version quantizes again
    monkeypatch.setitem(sys.modules, "nncf", None)
    assert openvino_export._target(tiny_model_dir, "fp32", tmp_path) == with_nncf

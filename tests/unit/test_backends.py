"""Every backend on the same tiny model: same logits as torch fp32 (within its precision)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest

from qa_api.inference import backends, hardware, openvino_export
from qa_api.inference.backends import BackendName, load_backend, resolve_backend

IDS = np.array([[2, 104, 627, 35, 3, 512, 2402, 2541, 437, 817, 3]], dtype=np.int64)
MASK = np.ones_like(IDS)
TYPES = np.array([[0] * 5 + [1] * 6], dtype=np.int64)


@pytest.fixture(scope="module")
def reference(tiny_model_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    return load_backend(tiny_model_dir, "torch-fp32", "cpu", 1, Path("/nonexistent")).forward(
        IDS, MASK, TYPES
    )


@pytest.mark.parametrize(
    ("name", "dtype", "tolerance"),
    [
        ("torch-bf16", "bfloat16", 0.05),
        ("onnx-fp32", "fp32", 1e-4),
        ("onnx-int8", "int8", 0.05),
        ("openvino-fp32", "fp32", 1e-4),
        pytest.param(
            "openvino-bf16",
            "bf16",
            0.05,
            marks=pytest.mark.skipif(
                not hardware.cpu_has_native_bf16(), reason="the CPU has no native bf16"
            ),
        ),
        ("openvino-int8", "int8", 0.05),
    ],
)
def test_backend_matches_fp32(
    tiny_model_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
    reference,
    name,
    dtype,
    tolerance,
) -> None:  # type: ignore[no-untyped-def]
    cache = tmp_path_factory.getbasetemp() / "onnx-cache"
    backend = load_backend(tiny_model_dir, name, "cpu", 1, cache)
    assert (backend.name, backend.device, backend.dtype) == (name, "cpu", dtype)
    start, end = backend.forward(IDS, MASK, TYPES)
    assert start.dtype == end.dtype == np.float32
    assert start.shape == end.shape == IDS.shape
    np.testing.assert_allclose(start, reference[0], atol=tolerance)
    np.testing.assert_allclose(end, reference[1], atol=tolerance)


@pytest.mark.parametrize("name", ["onnx-fp32", "openvino-fp32", "openvino-int8"])
def test_padded_batches_of_any_shape(
    tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory, name: BackendName
) -> None:
    """Dynamic shapes: a padded batch of 3 at a new length gives each row its unpadded logits,
    and a later call does not overwrite the arrays an earlier one returned."""
    cache = tmp_path_factory.getbasetemp() / "onnx-cache"
    backend = load_backend(tiny_model_dir, name, "cpu", 1, cache)
    alone = [backend.forward(IDS[:, :n], MASK[:, :n], TYPES[:, :n]) for n in (11, 9, 7)]
    ids, mask, types = (np.zeros((3, 32), dtype=np.int64) for _ in range(3))
    for row, n in enumerate((11, 9, 7)):
        ids[row, :n], mask[row, :n], types[row, :n] = IDS[0, :n], 1, TYPES[0, :n]
    start, end = backend.forward(ids, mask, types)
    kept = start.copy()
    backend.forward(IDS, MASK, TYPES)
    np.testing.assert_array_equal(start, kept)
    tolerance = 0.05 if name.endswith("int8") else 1e-4
    for row, n in enumerate((11, 9, 7)):
        np.testing.assert_allclose(start[row, :n], alone[row][0][0], atol=tolerance)
        np.testing.assert_allclose(end[row, :n], alone[row][1][0], atol=tolerance)


def test_onnx_export_is_cached(tiny_model_dir: Path, tmp_path: Path) -> None:
    t0 = time.perf_counter()
    load_backend(tiny_model_dir, "onnx-int8", "cpu", 1, tmp_path)
    first = time.perf_counter() - t0
    (export_dir,) = tmp_path.iterdir()
    assert sorted(p.name for p in export_dir.iterdir()) == ["model-fp32.onnx", "model-int8.onnx"]
    stamp = (export_dir / "model-int8.onnx").stat().st_mtime_ns
    t0 = time.perf_counter()
    load_backend(tiny_model_dir, "onnx-int8", "cpu", 1, tmp_path)
    assert (export_dir / "model-int8.onnx").stat().st_mtime_ns == stamp  # not exported again
    assert time.perf_counter() - t0 < first


def test_openvino_conversion_is_cached(tiny_model_dir: Path, tmp_path: Path) -> None:
    """int8 converts the fp32 IR first and quantizes it; both stay cached and are not redone."""
    load_backend(tiny_model_dir, "openvino-int8", "cpu", 1, tmp_path)
    (ir_dir,) = tmp_path.iterdir()
    assert ir_dir.name.startswith("tiny-openvino-")
    int8 = f"model-int8-nncf{metadata.version('nncf')}"  # named by NNCF's version
    names = ["model-fp32.bin", "model-fp32.xml", f"{int8}.bin", f"{int8}.xml"]
    assert sorted(p.name for p in ir_dir.iterdir()) == names
    stamps = {p.name: p.stat().st_mtime_ns for p in ir_dir.iterdir()}
    load_backend(tiny_model_dir, "openvino-int8", "cpu", 1, tmp_path)
    load_backend(tiny_model_dir, "openvino-fp32", "cpu", 1, tmp_path)
    assert {p.name: p.stat().st_mtime_ns for p in ir_dir.iterdir()} == stamps


def test_int8_calibration_reads_the_shipped_squad_es_pairs(tiny_model_dir: Path) -> None:
    inputs = list(openvino_export.calibration_inputs(tiny_model_dir))
    assert len(inputs) == 128
    assert sorted(inputs[0]) == ["attention_mask", "input_ids", "token_type_ids"]
    lengths = {x["input_ids"].shape for x in inputs}
    assert {batch for batch, _ in lengths} == {1}
    assert min(n for _, n in lengths) > 30  # question and context, not truncated to nothing
    assert len(lengths) > 20  # real, varied lengths


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ({"avx512f", "avx512_bf16", "amx_bf16", "amx_int8"}, "torch-bf16"),
        ({"avx512f", "avx512_bf16", "avx512_vnni"}, "openvino-bf16"),
        ({"avx2"}, "openvino-fp32"),
    ],
)
def test_auto_choice_follows_the_cpu(
    monkeypatch: pytest.MonkeyPatch, flags: set[str], expected: BackendName
) -> None:
    monkeypatch.setattr(hardware, "cpu_flags", lambda: frozenset(flags))
    assert resolve_backend("auto", "cpu") == expected
    assert resolve_backend("auto", "cuda") == "torch-fp16"
    assert not resolve_backend("auto", "cpu").endswith("int8")  # int8 is opt-in only
    assert resolve_backend("onnx-int8", "cpu") == "onnx-int8"


def test_backends_that_cannot_run_here_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hardware, "cpu_flags", lambda: frozenset({"avx2"}))
    with pytest.raises(ValueError, match="CUDA"):
        resolve_backend("torch-fp16", "cpu")
    with pytest.raises(ValueError, match="CPU only"):
        resolve_backend("openvino-fp32", "cuda")
    with pytest.raises(ValueError, match="native bf16"):
        resolve_backend("openvino-bf16", "cpu")
    assert "openvino-bf16" not in backends.cpu_backends()
    assert "torch-bf16" not in backends.cpu_backends()


def test_cuda_request_without_cuda_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hardware, "cuda_available", lambda: False)
    assert backends.resolve_device("auto") == "cpu"
    with pytest.raises(ValueError, match="no CUDA"):
        backends.resolve_device("cuda")


@pytest.mark.parametrize(("given", "expected"), [(None, "1000000"), ("50", "50")])
def test_openmp_spin_is_set_before_torch_loads(given: str | None, expected: str) -> None:
    """libgomp reads GOMP_SPINCOUNT once, when torch loads: importing the app must not load it."""
    env = {k: v for k, v in os.environ.items() if k != "GOMP_SPINCOUNT"}
    if given is not None:
        env["GOMP_SPINCOUNT"] = given
    code = (
        "import os, sys, qa_api.main, qa_api.evaluation.cli\n"
        "assert 'torch' not in sys.modules, 'torch loaded at import'\n"
        "print(os.environ['GOMP_SPINCOUNT'])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == expected

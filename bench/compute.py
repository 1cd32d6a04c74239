"""Raw model forward times per precision, and the compute floor they are held to.

Floor = matmul FLOPs of one forward pass at the typical request length / the best FLOP/s this CPU
reaches on one big matmul in that precision (any engine). Forward passes go through the backend's
own `load_backend`, so they time exactly what the server runs.
"""

from __future__ import annotations

import functools
import logging
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

# Backend name -> the precision its matmuls run in.
PRECISION = {
    "torch-fp32": "fp32",
    "torch-bf16": "bf16",
    "onnx-fp32": "fp32",
    "onnx-int8": "int8",
    "openvino-fp32": "fp32",
    "openvino-bf16": "bf16",
    "openvino-int8": "int8",
}
# Matmul shapes (m, k, n) and timed repeats for the peak: squares, and the BERT FFN's own shape at
# 1024 token rows. Many short runs find the quiet moments of a shared machine.
PEAK_SHAPES = (((1024, 1024, 1024), 30), ((2048, 2048, 2048), 6), ((1024, 768, 3072), 30))


@dataclass(frozen=True)
class Peak:
    precision: str
    gflops: float
    engine: str
    shape: str


@dataclass(frozen=True)
class ForwardTiming:
    backend: str
    precision: str
    seq_len: int
    batch: int
    median_ms: float
    min_ms: float
    floor_ms: float
    load_s: float

    @property
    def floor_ratio(self) -> float:
        return self.min_ms / self.floor_ms


def forward_flops(seq_len: int, config: dict[str, int]) -> float:
    """Matmul FLOPs of one BERT QA forward pass over one window (embeddings/norms excluded)."""
    d, inner, layers = (
        config["hidden_size"],
        config["intermediate_size"],
        config["num_hidden_layers"],
    )
    projections = 2 * seq_len * (4 * d * d + 2 * d * inner)  # Q, K, V, output; FFN in and out
    attention = 2 * 2 * seq_len * seq_len * d  # QK^T and attention x V over all heads
    qa_head = 2 * seq_len * d * 2
    return float(layers * (projections + attention) + qa_head)


def _best_rate(fn: Callable[[], object], flops: float, repeats: int) -> float:
    fn()
    fn()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return flops / best / 1e9


def _torch_peaks(shape: tuple[int, int, int], repeats: int) -> list[Peak]:
    import torch

    m, k, n = shape
    flops, label = 2.0 * m * k * n, "x".join(map(str, shape))
    peaks = []
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        a, b = torch.randn(m, k).to(dtype), torch.randn(k, n).to(dtype)
        rate = _best_rate(functools.partial(torch.mm, a, b), flops, repeats)
        peaks.append(Peak(name, rate, "torch.mm", label))
    a8 = torch.randint(-128, 127, (m, k), dtype=torch.int8)
    b8 = torch.randint(-128, 127, (k, n), dtype=torch.int8)
    try:
        rate = _best_rate(lambda: torch._int_mm(a8, b8), flops, repeats)
        peaks.append(Peak("int8", rate, "torch._int_mm", label))
    except RuntimeError as exc:
        logger.info("torch._int_mm unavailable on this CPU: %s", exc)
    return peaks


def _ort_peaks(shape: tuple[int, int, int], repeats: int, threads: int) -> list[Peak]:
    """fp32 MatMul and uint8 x int8 MatMulInteger (what dynamic int8 quantization runs)."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper

    m, k, n = shape
    flops, label = 2.0 * m * k * n, "x".join(map(str, shape))
    rng = np.random.default_rng(0)
    cases = (
        ("fp32", "MatMul", TensorProto.FLOAT, TensorProto.FLOAT, TensorProto.FLOAT),
        ("int8", "MatMulInteger", TensorProto.UINT8, TensorProto.INT8, TensorProto.INT32),
    )
    peaks = []
    for precision, op, a_type, b_type, out_type in cases:
        graph = helper.make_graph(
            [helper.make_node(op, ["A", "B"], ["C"])],
            "peak",
            [
                helper.make_tensor_value_info("A", a_type, [m, k]),
                helper.make_tensor_value_info("B", b_type, [k, n]),
            ],
            [helper.make_tensor_value_info("C", out_type, [m, n])],
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        model.ir_version = 8
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "peak.onnx"
            onnx.save(model, path)
            session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        feeds: dict[str, np.ndarray] = (
            {
                "A": rng.standard_normal((m, k), dtype=np.float32),
                "B": rng.standard_normal((k, n), dtype=np.float32),
            }
            if precision == "fp32"
            else {
                "A": rng.integers(0, 255, (m, k), dtype=np.uint8),
                "B": rng.integers(-128, 127, (k, n), dtype=np.int8),
            }
        )
        rate = _best_rate(functools.partial(session.run, None, feeds), flops, repeats)
        peaks.append(Peak(precision, rate, f"onnxruntime {op}", label))
    return peaks


def measure_peaks(threads: int) -> tuple[dict[str, Peak], list[Peak]]:
    """Best FLOP/s per precision over engines and shapes, plus each engine's best figure."""
    import torch

    torch.set_num_threads(threads)
    per_engine: dict[tuple[str, str], Peak] = {}
    for shape, repeats in PEAK_SHAPES:
        for peak in _torch_peaks(shape, repeats) + _ort_peaks(shape, repeats, threads):
            key = (peak.precision, peak.engine)
            if key not in per_engine or peak.gflops > per_engine[key].gflops:
                per_engine[key] = peak
    best: dict[str, Peak] = {}
    for peak in per_engine.values():
        if peak.precision not in best or peak.gflops > best[peak.precision].gflops:
            best[peak.precision] = peak
    return best, list(per_engine.values())


def _inputs(
    seq_len: int, batch: int, vocab_size: int, question_tokens: int = 14
) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(0)
    ids = rng.integers(5, vocab_size, (batch, seq_len), dtype=np.int64)
    ids[:, 0], ids[:, question_tokens], ids[:, -1] = 2, 3, 3  # [CLS] q [SEP] c [SEP]
    mask = np.ones((batch, seq_len), dtype=np.int64)
    types = np.zeros((batch, seq_len), dtype=np.int64)
    types[:, question_tokens + 1 :] = 1
    return ids, mask, types


def time_forward(
    model_dir: Path,
    backends: list[str],
    shapes: list[tuple[int, int]],
    peaks: dict[str, Peak],
    config: dict[str, int],
    threads: int,
    onnx_cache_dir: Path,
    repeats: int,
    rounds: int,
) -> list[ForwardTiming]:
    """Forward times of every backend at each (batch, seq_len), against its floor.

    All backends stay loaded and are timed in turn, `rounds` times, `repeats` passes per shape
    each time: whatever else the machine does then hits them alike, and the ratios stay fair.
    The first pass after switching backend is not timed (another engine's threads may still spin).
    """
    from qa_api.inference.backends import load_backend

    models, load_s = {}, {}
    for backend in backends:
        start = time.perf_counter()
        models[backend] = load_backend(model_dir, backend, "cpu", threads, onnx_cache_dir)  # type: ignore[arg-type]
        load_s[backend] = time.perf_counter() - start
        logger.info("loaded %s in %.1f s", backend, load_s[backend])
    inputs = {shape: _inputs(shape[1], shape[0], config["vocab_size"]) for shape in shapes}
    samples: dict[tuple[str, tuple[int, int]], list[float]] = {}
    for round_ in range(rounds):
        for backend, model in models.items():
            for shape in shapes:
                model.forward(*inputs[shape])
                for _ in range(repeats):
                    t0 = time.perf_counter()
                    model.forward(*inputs[shape])
                    samples.setdefault((backend, shape), []).append(
                        (time.perf_counter() - t0) * 1000
                    )
        logger.info("forward passes: round %d of %d done", round_ + 1, rounds)
    timings = []
    for (backend, (batch, seq_len)), times in samples.items():
        precision = PRECISION[backend]
        floor_ms = batch * forward_flops(seq_len, config) / (peaks[precision].gflops * 1e9) * 1000
        timing = ForwardTiming(
            backend,
            precision,
            seq_len,
            batch,
            statistics.median(times),
            min(times),
            floor_ms,
            load_s[backend],
        )
        timings.append(timing)
        logger.info(
            "%s batch %d x %d tokens: median %.1f ms, best %.1f ms (floor %.1f ms)",
            backend,
            batch,
            seq_len,
            timing.median_ms,
            timing.min_ms,
            floor_ms,
        )
    return timings

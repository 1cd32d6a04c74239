"""OpenVINO models compiled in parts, one per encoder layer, so the scheduler can pause them."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from qa_api.inference import hardware
from qa_api.inference.backends import OpenVinoBackend, load_backend, run_steps

# Two windows padded to one width: the second one's padding is masked.
IDS = np.array(
    [[2, 104, 627, 35, 3, 512, 2402, 2541, 437, 817, 3], [2, 88, 19, 3, 715, 96, 3, 0, 0, 0, 0]],
    dtype=np.int64,
)
MASK = (IDS != 0).astype(np.int64)
TYPES = np.array([[0] * 5 + [1] * 6, [0] * 4 + [1] * 3 + [0] * 4], dtype=np.int64)


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.getbasetemp() / "onnx-cache"


def whole(ir_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """The same IR compiled uncut, as the backend did before it was split."""
    import openvino as ov

    out = ov.Core().compile_model(str(ir_path), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})(
        {"input_ids": IDS, "attention_mask": MASK, "token_type_ids": TYPES}
    )
    return out["start_logits"], out["end_logits"]


def test_int8_runs_whole(tiny_model_dir: Path, cache: Path) -> None:
    """Cut, NNCF's int8 graph took 8x the memory of the whole model (BETO-shaped, 2026-11-30)."""
    backend = load_backend(tiny_model_dir, "openvino-int8", "cpu", 1, cache)
    assert not backend.steps_by_layer  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "name",
    [
        "openvino-fp32",
        pytest.param(
            "openvino-bf16",
            marks=pytest.mark.skipif(
                not hardware.cpu_has_native_bf16(), reason="the CPU has no native bf16"
            ),
        ),
    ],
)
def test_one_step_per_encoder_layer_with_the_whole_models_logits(
    tiny_model_dir: Path, cache: Path, name: str
) -> None:
    from transformers import AutoConfig

    from qa_api.inference.openvino_export import converted_model

    backend = load_backend(tiny_model_dir, name, "cpu", 1, cache)  # type: ignore[arg-type]
    assert isinstance(backend, OpenVinoBackend)
    assert backend.steps_by_layer
    steps = backend.forward_steps(IDS, MASK, TYPES)
    pauses = 0
    while True:
        try:
            next(steps)
            pauses += 1
        except StopIteration as stop:
            start, end = stop.value
            break
    assert pauses == AutoConfig.from_pretrained(tiny_model_dir).num_hidden_layers
    expected_start, expected_end = whole(converted_model(tiny_model_dir, "fp32", cache))
    tolerance = 1e-5 if name.endswith("fp32") else 0.05  # bf16: each part rounds its own way
    np.testing.assert_allclose(start, expected_start, atol=tolerance)
    np.testing.assert_allclose(end, expected_end, atol=tolerance)


def test_a_paused_batch_keeps_its_state_while_another_runs(
    tiny_model_dir: Path, cache: Path
) -> None:
    backend = load_backend(tiny_model_dir, "openvino-fp32", "cpu", 1, cache)
    alone = backend.forward(IDS, MASK, TYPES)
    paused = backend.forward_steps(IDS, MASK, TYPES)  # type: ignore[attr-defined]
    next(paused)
    next(paused)
    other = IDS[:, ::-1].copy()
    backend.forward(other, np.ones_like(other), np.zeros_like(other))  # every part's buffers
    resumed = run_steps(paused)
    np.testing.assert_array_equal(resumed[0], alone[0])
    np.testing.assert_array_equal(resumed[1], alone[1])


def test_a_model_without_bert_layer_names_runs_whole(tiny_model_dir: Path, tmp_path: Path) -> None:
    """DistilBERT's layers are `transformer.layer.N`: served in one step, same logits as torch."""
    from transformers import DistilBertConfig, DistilBertForQuestionAnswering

    model_dir = tmp_path / "distilbert"
    config = DistilBertConfig(vocab_size=4000, dim=32, n_layers=2, n_heads=2, hidden_dim=37)
    DistilBertForQuestionAnswering(config).eval().save_pretrained(model_dir)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(tiny_model_dir / name, model_dir / name)
    ids, mask = IDS[:1], MASK[:1]
    torch_backend = load_backend(model_dir, "torch-fp32", "cpu", 1, tmp_path)
    openvino_backend = load_backend(model_dir, "openvino-fp32", "cpu", 1, tmp_path)
    assert not torch_backend.steps_by_layer  # type: ignore[attr-defined]
    assert not openvino_backend.steps_by_layer  # type: ignore[attr-defined]
    expected = torch_backend.forward(ids, mask, np.zeros_like(ids))
    got = openvino_backend.forward(ids, mask, np.zeros_like(ids))
    np.testing.assert_allclose(got[0], expected[0], atol=1e-4)
    np.testing.assert_allclose(got[1], expected[1], atol=1e-4)

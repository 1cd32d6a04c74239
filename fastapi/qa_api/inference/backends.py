"""Model backends: one forward pass over a padded batch of windows: torch, ONNX Runtime, OpenVINO.

Every backend takes int64 arrays (batch, seq) and returns float32 start/end logits (batch, seq).
"""

from __future__ import annotations

import logging
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, NamedTuple, Protocol, TypeVar

import numpy as np

from qa_api.inference import hardware
from qa_api.inference.openvino_layers import LOGITS, Part, split_by_layer, whole_model

logger = logging.getLogger(__name__)

BackendName = Literal[
    "auto",
    "torch-fp32",
    "torch-bf16",
    "torch-fp16",
    "onnx-fp32",
    "onnx-int8",
    "openvino-fp32",
    "openvino-bf16",
    "openvino-int8",
]
Logits = tuple[np.ndarray, np.ndarray]
T = TypeVar("T")


class ModelBackend(Protocol):
    """A backend; one that can pause between encoder layers also has `forward_steps`
    (a generator: one `yield` before each layer, returning the logits), `steps_by_layer`, and
    `steps_compiled_apart` when that path needs its own warm-up."""

    name: str
    device: str
    dtype: str

    def forward(
        self, input_ids: np.ndarray, attention_mask: np.ndarray, token_type_ids: np.ndarray
    ) -> Logits: ...


def run_steps(steps: Generator[None, None, T]) -> T:
    """Run a stepped computation (a forward_steps generator) to its end, never pausing."""
    while True:
        try:
            next(steps)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]


# `auto` on CPU, by how the CPU computes bf16: the fastest non-int8 backend measured on that kind
# of CPU (bench/results-*.json; figures and answer agreement in the README's "Speed" section).
# int8 is never chosen silently: it changes more answers and is opt-in.
AUTO_CPU: dict[hardware.Bf16Units, BackendName] = {
    "amx": "torch-bf16",  # Intel Xeon with AMX: measured there; OpenVINO not yet measured on AMX
    "avx512_bf16": "openvino-bf16",  # AMD EPYC (Zen 4/5): ahead of torch bf16 at every shape
    "none": "openvino-fp32",  # no native bf16: fp32, ahead of ONNX Runtime and torch
}


def resolve_backend(requested: BackendName, device: str) -> BackendName:
    """The backend to load: `requested`, or for `auto` fp16 on CUDA and AUTO_CPU on CPUs."""
    if requested != "auto":
        if requested == "torch-fp16" and device != "cuda":
            raise ValueError("torch-fp16 needs a CUDA device; use openvino-* or torch-bf16 on CPU")
        if requested.startswith("openvino-") and device != "cpu":
            raise ValueError(f"{requested} runs on CPU only; use QA_DEVICE=cpu or torch-fp16")
        if requested == "openvino-bf16" and not hardware.cpu_has_native_bf16():
            raise ValueError(
                "openvino-bf16 needs a CPU with native bf16 (avx512_bf16 or amx_bf16); "
                "use openvino-fp32"
            )
        return requested
    if device == "cuda":
        return "torch-fp16"
    return AUTO_CPU[hardware.bf16_units()]


def cpu_backends() -> tuple[BackendName, ...]:
    """Every backend this CPU can run, each precision where it pays off (bf16 only if native)."""
    names: tuple[BackendName, ...] = ("torch-fp32", "onnx-fp32", "onnx-int8", "openvino-fp32")
    bf16: tuple[BackendName, ...] = ("torch-bf16", "openvino-bf16")
    return (*names, *(bf16 if hardware.cpu_has_native_bf16() else ()), "openvino-int8")


def resolve_device(requested: str) -> str:
    if requested == "auto":
        return "cuda" if hardware.cuda_available() else "cpu"
    if requested == "cuda" and not hardware.cuda_available():
        raise ValueError("QA_DEVICE=cuda but no CUDA device is available")
    return requested


@dataclass
class TorchBackend:
    """AutoModelForQuestionAnswering in fp32, bf16 (CPU with native bf16 / CUDA) or fp16 (CUDA)."""

    model: object
    name: str
    device: str
    dtype: str

    @classmethod
    def load(cls, model_dir: Path, name: str, device: str) -> TorchBackend:
        import torch
        from transformers import AutoModelForQuestionAnswering

        dtype = {"torch-fp32": torch.float32, "torch-bf16": torch.bfloat16}.get(name, torch.float16)
        model = AutoModelForQuestionAnswering.from_pretrained(model_dir, dtype=dtype)
        model.to(device).eval()
        return cls(model, name, device, str(dtype).removeprefix("torch."))

    def forward(
        self, input_ids: np.ndarray, attention_mask: np.ndarray, token_type_ids: np.ndarray
    ) -> Logits:
        import torch

        def tensor(array: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(array).to(self.device, non_blocking=True)

        with torch.inference_mode():
            out = self.model(  # type: ignore[operator]
                input_ids=tensor(input_ids),
                attention_mask=tensor(attention_mask),
                token_type_ids=tensor(token_type_ids),
            )
        return (
            out.start_logits.float().cpu().numpy(),
            out.end_logits.float().cpu().numpy(),
        )

    @property
    def steps_by_layer(self) -> bool:
        return hasattr(self.model, "bert") and hasattr(self.model, "qa_outputs")

    def forward_steps(
        self, input_ids: np.ndarray, attention_mask: np.ndarray, token_type_ids: np.ndarray
    ) -> Generator[None, None, Logits]:
        """`forward` one encoder layer per step, so a scheduler may pause it between layers.

        BERT QA models only (`steps_by_layer`); others run in one step (`forward`).
        """
        import torch
        from transformers.masking_utils import create_bidirectional_mask

        bert, head = self.model.bert, self.model.qa_outputs  # type: ignore[attr-defined]

        def tensor(array: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(array).to(self.device, non_blocking=True)

        # inference_mode per step: a mode held across a yield would leak into the caller's code.
        with torch.inference_mode():
            hidden = bert.embeddings(
                input_ids=tensor(input_ids), token_type_ids=tensor(token_type_ids)
            )
            mask = create_bidirectional_mask(
                config=bert.config, inputs_embeds=hidden, attention_mask=tensor(attention_mask)
            )
        for layer in bert.encoder.layer:
            yield
            with torch.inference_mode():
                hidden = layer(hidden, mask)
        with torch.inference_mode():
            start, end = head(hidden).split(1, dim=-1)
        return start.squeeze(-1).float().cpu().numpy(), end.squeeze(-1).float().cpu().numpy()


@dataclass
class OnnxBackend:
    """ONNX Runtime session over an exported (and optionally int8-quantized) model."""

    session: object
    name: str
    device: str
    dtype: str

    @classmethod
    def load(cls, onnx_path: Path, name: str, device: str, threads: int) -> OnnxBackend:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        providers = ["CPUExecutionProvider"]
        if device == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        session = ort.InferenceSession(str(onnx_path), options, providers=providers)
        return cls(session, name, device, name.removeprefix("onnx-"))

    def forward(
        self, input_ids: np.ndarray, attention_mask: np.ndarray, token_type_ids: np.ndarray
    ) -> Logits:
        start, end = self.session.run(  # type: ignore[attr-defined]
            ["start_logits", "end_logits"],
            {
                "input_ids": input_ids,
                "attention_mask": attention_mask,
                "token_type_ids": token_type_ids,
            },
        )
        return start.astype(np.float32, copy=False), end.astype(np.float32, copy=False)


class CompiledPart(NamedTuple):
    request: object  # openvino.InferRequest
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]


@dataclass
class OpenVinoBackend:
    """An OpenVINO CPU model (IR converted once, dynamic shapes): fp32, bf16 or NNCF int8.

    Compiled whole for `forward`, and in parts, one per encoder layer (openvino_layers), for
    `forward_steps`, which a scheduler may pause between layers like torch; parts cost about 5%
    more per pass, so the scheduler steps only batches that a newcomer could overtake. A model
    whose layers cannot be found, and int8 (see `load`), have no parts. One stream and `threads`
    threads with the latency hint: the inference worker runs one batch at a time, so all cores go
    to that batch.
    INFERENCE_PRECISION_HINT is set explicitly, since OpenVINO computes in bf16 by default on
    CPUs that have it.
    """

    whole: CompiledPart
    parts: list[CompiledPart]  # empty, or [embeddings, layer 0, ..., head]
    name: str
    device: str
    dtype: str

    @classmethod
    def load(cls, ir_path: Path, name: str, threads: int) -> OpenVinoBackend:
        import openvino as ov

        core = ov.Core()
        config = {
            "PERFORMANCE_HINT": "LATENCY",
            "NUM_STREAMS": "1",
            "INFERENCE_NUM_THREADS": str(threads),
            "INFERENCE_PRECISION_HINT": "bf16" if name == "openvino-bf16" else "f32",
        }
        model = core.read_model(ir_path)

        def compiled(part: Part) -> CompiledPart:
            # the ov.Model is dropped once compiled: it holds the IR's fp32 weights
            request = core.compile_model(part.model, "CPU", config).create_infer_request()
            return CompiledPart(request, part.inputs, part.outputs)

        # int8 runs whole: its parts took 4.7 GB after warm-up against 0.6 GB whole (NNCF's
        # quantized graph, cut), so it switches requests between batches (QA_MAX_STEP_TOKENS)
        parts = None if name == "openvino-int8" else split_by_layer(model)
        return cls(
            compiled(whole_model(model)),
            [compiled(part) for part in parts] if parts else [],
            name,
            "cpu",
            name.removeprefix("openvino-"),
        )

    @property
    def steps_by_layer(self) -> bool:
        return bool(self.parts)

    @property
    def steps_compiled_apart(self) -> bool:
        """The parts are programs of their own, so warm-up runs them too (torch's layers are the
        whole model's own modules: warming the whole model warms them)."""
        return self.steps_by_layer

    def forward(
        self, input_ids: np.ndarray, attention_mask: np.ndarray, token_type_ids: np.ndarray
    ) -> Logits:
        return run_steps(self._run([self.whole], input_ids, attention_mask, token_type_ids))

    def forward_steps(
        self, input_ids: np.ndarray, attention_mask: np.ndarray, token_type_ids: np.ndarray
    ) -> Generator[None, None, Logits]:
        """`forward` one encoder layer per step: embeddings and head run with the first / last."""
        return self._run(self.parts, input_ids, attention_mask, token_type_ids)

    def _run(
        self,
        parts: list[CompiledPart],
        input_ids: np.ndarray,
        attention_mask: np.ndarray,
        token_type_ids: np.ndarray,
    ) -> Generator[None, None, Logits]:
        values = {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "token_type_ids": token_type_ids,
        }
        for index, part in enumerate(parts):
            if 0 < index < len(parts) - 1:
                yield
            # share_inputs: OpenVINO reads the arrays in place. Outputs are copied: a batch
            # paused here may see another batch run this part's request before it resumes.
            out = part.request.infer(  # type: ignore[attr-defined]
                {name: values[name] for name in part.inputs}, share_inputs=True
            )
            values.update(zip(part.outputs, out.to_tuple(), strict=True))
        start, end = LOGITS
        return values[start], values[end]


def load_backend(
    model_dir: Path, name: BackendName, device: str, threads: int, onnx_cache_dir: Path
) -> ModelBackend:
    """Load `model_dir` with the given (already resolved) backend name."""
    if name.startswith("openvino-"):
        from qa_api.inference.openvino_export import Precision, converted_model

        precision: Precision = "int8" if name == "openvino-int8" else "fp32"  # bf16: at compile
        return OpenVinoBackend.load(
            converted_model(model_dir, precision, onnx_cache_dir), name, threads
        )
    import torch

    torch.set_num_threads(threads)
    if name.startswith("torch-"):
        return TorchBackend.load(model_dir, name, device)
    from qa_api.inference.onnx_export import exported_model

    onnx_path = exported_model(model_dir, quantized=name == "onnx-int8", cache_dir=onnx_cache_dir)
    return OnnxBackend.load(onnx_path, name, device, threads)

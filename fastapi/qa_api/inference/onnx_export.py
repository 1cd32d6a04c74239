"""Export a Hugging Face QA model to ONNX once, optimize it for BERT, optionally quantize to int8.

Cached on disk under a key derived from the model files, so later starts only load; the export
runs in a child process (see export_cache).
"""

from __future__ import annotations

import argparse
import logging
import shutil
import tempfile
from importlib import metadata
from pathlib import Path

from qa_api.inference.export_cache import convert_once, model_key, traceable_model

logger = logging.getLogger(__name__)

OPSET = 17
FORMAT_VERSION = "1"  # bump when the export recipe changes


def exported_model(model_dir: Path, quantized: bool, cache_dir: Path) -> Path:
    """Path of the cached ONNX model (fp32 or int8) for model_dir, exporting it if needed."""
    args = [str(model_dir), str(cache_dir), *(["--int8"] if quantized else [])]
    return convert_once(_target(model_dir, quantized, cache_dir), __name__, args, "ONNX")


def _target(model_dir: Path, quantized: bool, cache_dir: Path) -> Path:
    versions = [metadata.version(p) for p in ("torch", "transformers", "onnxruntime")]
    target_dir = cache_dir / f"{model_dir.name}-{model_key(model_dir, *versions, FORMAT_VERSION)}"
    return target_dir / ("model-int8.onnx" if quantized else "model-fp32.onnx")


def export(model_dir: Path, quantized: bool, cache_dir: Path) -> Path:
    """Export (and quantize) into the cache, in this process."""
    target = _target(model_dir, quantized, cache_dir)
    target_dir = target.parent
    target_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target_dir) as tmp:
        work = Path(tmp)
        fp32 = target_dir / "model-fp32.onnx"
        if not fp32.exists():
            _export_fp32(model_dir, work / "export.onnx")
            _optimize(work / "export.onnx", work / "model-fp32.onnx")
            shutil.move(work / "model-fp32.onnx", fp32)
        if quantized:
            _quantize(fp32, work / "model-int8.onnx")
            shutil.move(work / "model-int8.onnx", target)
    return target


def _export_fp32(model_dir: Path, out: Path) -> None:
    import torch

    logger.info("exporting %s to ONNX", model_dir)
    dummy = torch.ones((1, 16), dtype=torch.int64)
    axes = {0: "batch", 1: "sequence"}
    torch.onnx.export(
        traceable_model(model_dir),
        (dummy, dummy, torch.zeros_like(dummy)),
        str(out),
        input_names=["input_ids", "attention_mask", "token_type_ids"],
        output_names=["start_logits", "end_logits"],
        dynamic_axes={
            "input_ids": axes,
            "attention_mask": axes,
            "token_type_ids": axes,
            "start_logits": axes,
            "end_logits": axes,
        },
        opset_version=OPSET,
        dynamo=False,
    )


def _optimize(src: Path, out: Path) -> None:
    """Fuse attention, GELU and LayerNorm with ONNX Runtime's BERT optimizer."""
    from onnxruntime.transformers import optimizer

    optimized = optimizer.optimize_model(str(src), model_type="bert", num_heads=0, hidden_size=0)
    optimized.save_model_to_file(str(out))


def _quantize(src: Path, out: Path) -> None:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    logger.info("quantizing %s to int8 (dynamic, once; cached afterwards)", src)
    # The fused BERT ops defeat shape inference; their outputs are float tensors.
    quantize_dynamic(
        str(src),
        str(out),
        weight_type=QuantType.QInt8,
        extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
    )


def main() -> None:
    parser = argparse.ArgumentParser(description="Export a QA model to ONNX into the cache.")
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("cache_dir", type=Path)
    parser.add_argument("--int8", action="store_true", help="also quantize to int8")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    export(args.model_dir, args.int8, args.cache_dir)


if __name__ == "__main__":
    main()

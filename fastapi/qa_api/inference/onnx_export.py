"""Export a Hugging Face QA model to ONNX once, optimize it for BERT, optionally quantize to int8.

Results are cached on disk under a key derived from the model files, so later starts only load.
Writes go to a temporary folder renamed into place, so concurrent replicas never see half a file.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

logger = logging.getLogger(__name__)

OPSET = 17
EXPORT_FORMAT_VERSION = "1"  # bump when the export recipe changes


def cache_key(model_dir: Path) -> str:
    """Stable key for the model files: resolved path plus name, size and mtime of each file."""
    import onnxruntime
    import torch

    digest = hashlib.sha256(str(model_dir.resolve()).encode())
    for path in sorted(p for p in model_dir.iterdir() if p.is_file()):
        stat = path.stat()
        digest.update(f"{path.name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    digest.update(f"{torch.__version__}:{onnxruntime.__version__}:{EXPORT_FORMAT_VERSION}".encode())
    return digest.hexdigest()[:16]


def exported_model(model_dir: Path, quantized: bool, cache_dir: Path) -> Path:
    """Path of the cached ONNX model (fp32 or int8) for model_dir, exporting it if needed.

    The export runs in a child process: it needs several GiB that the server should not keep.
    """
    target = _target(model_dir, quantized, cache_dir)
    if target.exists():
        logger.info("using cached ONNX model %s", target)
        return target
    command = [sys.executable, "-m", __name__, str(model_dir), str(cache_dir)]
    done = subprocess.run(
        [*command, "--int8"] if quantized else command, capture_output=True, text=True
    )
    if done.returncode != 0 or not target.exists():
        raise RuntimeError(f"ONNX export failed: {done.stderr.strip()[-1000:]}")
    return target


def _target(model_dir: Path, quantized: bool, cache_dir: Path) -> Path:
    target_dir = cache_dir / f"{model_dir.name}-{cache_key(model_dir)}"
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
    from transformers import AutoModelForQuestionAnswering

    logger.info("exporting %s to ONNX (once; cached afterwards)", model_dir)
    model = AutoModelForQuestionAnswering.from_pretrained(model_dir, dtype=torch.float32).eval()

    class Logits(torch.nn.Module):
        """Plain-tuple outputs for the exporter."""

        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, token_type_ids):  # type: ignore[no-untyped-def]
            out = self.model(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            )
            return out.start_logits, out.end_logits

    dummy = torch.ones((1, 16), dtype=torch.int64)
    axes = {0: "batch", 1: "sequence"}
    torch.onnx.export(
        Logits(),
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

"""Convert a Hugging Face QA model to OpenVINO IR once: fp32, and int8 quantized with NNCF.

`ov.convert_model` traces the loaded torch model (dynamic batch and sequence length); the IR keeps
fp32 weights, and bf16 is a compile-time choice (INFERENCE_PRECISION_HINT), so fp32 and bf16 share
one file. int8 is NNCF post-training quantization of that IR, calibrated on the SQuAD-es
question/context pairs shipped in data/calibration-squad-es.json. Cached beside the ONNX exports
(see export_cache); the conversion runs in a child process. NNCF is an optional install
(requirements-int8.txt): fp32 and bf16 never need it.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import tempfile
from collections.abc import Iterator
from importlib import metadata, util
from pathlib import Path
from typing import Literal

import numpy as np

from qa_api.inference.export_cache import convert_once, model_key, traceable_model

logger = logging.getLogger(__name__)

Precision = Literal["fp32", "int8"]
FORMAT_VERSION = "1"  # bump when the conversion recipe changes
CALIBRATION_FILE = Path(__file__).resolve().parent / "data" / "calibration-squad-es.json"
INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")
OUTPUT_NAMES = ("start_logits", "end_logits")


INT8_INSTALL = (
    "QA_BACKEND=openvino-int8 needs NNCF to quantize the model, and it is not installed: "
    "pip install -r fastapi/requirements-int8.txt (the backend image: build it with "
    "--build-arg WITH_INT8=1), or choose openvino-bf16, openvino-fp32 or onnx-int8"
)


def converted_model(model_dir: Path, precision: Precision, cache_dir: Path) -> Path:
    """Path of the cached IR (.xml) for model_dir in `precision`, converting it first if needed.

    int8 without NNCF installed raises ModuleNotFoundError saying what to install.
    """
    args = [str(model_dir), str(cache_dir), "--precision", precision]
    return convert_once(_target(model_dir, precision, cache_dir), __name__, args, "OpenVINO IR")


def _target(model_dir: Path, precision: Precision, cache_dir: Path) -> Path:
    """One folder per model and converter versions; the int8 file also names the NNCF version
    (so the fp32 IR, and its cache key, do not depend on whether NNCF is installed)."""
    versions = [metadata.version(p) for p in ("torch", "transformers", "openvino")]
    folder = (
        cache_dir / f"{model_dir.name}-openvino-{model_key(model_dir, *versions, FORMAT_VERSION)}"
    )
    if precision == "fp32":
        return folder / "model-fp32.xml"
    return folder / f"model-int8-nncf{_nncf_version()}.xml"


def _nncf_version() -> str:
    # find_spec, not import: importing NNCF patches torch and takes seconds.
    if util.find_spec("nncf") is None:
        raise ModuleNotFoundError(INT8_INSTALL, name="nncf")
    return metadata.version("nncf")


def convert(model_dir: Path, precision: Precision, cache_dir: Path) -> Path:
    """Convert (and quantize) into the cache, in this process."""
    import openvino as ov

    target = _target(model_dir, precision, cache_dir)
    fp32 = _target(model_dir, "fp32", cache_dir)
    target.parent.mkdir(parents=True, exist_ok=True)
    if not fp32.exists():
        _save(_convert_fp32(model_dir), fp32)
    if precision == "int8":
        _save(_quantize(ov.Core().read_model(fp32), model_dir), target)
    return target


def _convert_fp32(model_dir: Path) -> object:
    import openvino as ov
    import torch

    logger.info("converting %s to OpenVINO IR", model_dir)
    example = torch.ones((2, 16), dtype=torch.int64)
    model = ov.convert_model(
        traceable_model(model_dir),
        example_input=dict(
            zip(INPUT_NAMES, (example, example, torch.zeros_like(example)), strict=True)
        ),
    )
    for output, name in zip(model.outputs, OUTPUT_NAMES, strict=True):
        output.get_tensor().set_names({name})
    return model


def calibration_inputs(model_dir: Path) -> Iterator[dict[str, np.ndarray]]:
    """The shipped SQuAD-es pairs as model inputs, one window each (batch 1, unpadded)."""
    from transformers import AutoConfig, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    max_length = AutoConfig.from_pretrained(model_dir).max_position_embeddings
    for pair in json.loads(CALIBRATION_FILE.read_text(encoding="utf-8"))["pairs"]:
        encoded = tokenizer(
            pair["question"], pair["context"], truncation="only_second", max_length=max_length
        )
        yield {name: np.array([encoded[name]], dtype=np.int64) for name in INPUT_NAMES}


def _quantize(model: object, model_dir: Path) -> object:
    import nncf

    logger.info("quantizing %s to int8 with NNCF", model_dir)
    inputs = list(calibration_inputs(model_dir))
    return nncf.quantize(
        model,
        nncf.Dataset(inputs),
        model_type=nncf.ModelType.TRANSFORMER,
        subset_size=len(inputs),
    )


def _save(model: object, target: Path) -> None:
    """Write the .xml/.bin pair under a temporary name; the .xml (what readers look for) last."""
    import openvino as ov

    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        work = Path(tmp) / target.name
        ov.save_model(model, work, compress_to_fp16=False)
        shutil.move(work.with_suffix(".bin"), target.with_suffix(".bin"))
        shutil.move(work, target)


def main() -> None:
    parser = argparse.ArgumentParser(description="Convert a QA model to OpenVINO IR (cached).")
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("cache_dir", type=Path)
    parser.add_argument("--precision", choices=["fp32", "int8"], default="fp32")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    convert(args.model_dir, args.precision, args.cache_dir)


if __name__ == "__main__":
    main()

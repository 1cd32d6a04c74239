"""Run transformers 4.57.6's pipeline("question-answering") on a request file; record every window.

Runs in bench/.venv-baseline (transformers 4.x), so it imports nothing from this repository.
Usage: reference.py REQUEST.json OUT.json, where the request holds model_dir, inputs (question,
context, max_seq_len, doc_stride) and options (the keyword arguments to try on each input, plus
`cls_boost`: a constant added to the [CLS] start and end logits after the recorded forward pass).
"""

from __future__ import annotations

import json
import sys
from typing import Any

import numpy as np
import tokenizers
import torch
import transformers
from transformers import pipeline


def float32_list(tensor: torch.Tensor) -> list[float]:
    """Shortest decimals that read back as the same float32 values."""
    return [float(str(value)) for value in tensor.detach().to(torch.float32).numpy()]


def run(request: dict[str, Any]) -> dict[str, Any]:
    qa = pipeline("question-answering", model=request["model_dir"], framework="pt", device=-1)
    windows: list[dict[str, Any]] = []
    boost = {"cls": 0.0}
    forward = qa._forward

    def recording_forward(inputs: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        output = forward(inputs, **kwargs)
        windows.append(
            {
                "input_ids": inputs["input_ids"][0].tolist(),
                "start_logits": float32_list(output["start"][0]),
                "end_logits": float32_list(output["end"][0]),
            }
        )
        if boost["cls"]:
            for key in ("start", "end"):
                output[key] = output[key].clone()
                output[key][0, 0] += boost["cls"]
        return output

    qa._forward = recording_forward
    results = []
    for n, item in enumerate(request["inputs"]):
        if n % 20 == 0:
            print(f"input {n}/{len(request['inputs'])}", file=sys.stderr, flush=True)
        first: list[dict[str, Any]] | None = None
        runs = []
        for options in request["options"]:
            windows.clear()
            boost["cls"] = options["cls_boost"]
            answers = qa(
                question=item["question"],
                context=item["context"],
                max_seq_len=item["max_seq_len"],
                doc_stride=item["doc_stride"],
                **{k: v for k, v in options.items() if k != "cls_boost"},
            )
            if first is None:
                first = list(windows)
            elif windows != first:
                raise RuntimeError(f"the logits changed between runs of {item['question']!r}")
            answers = answers if isinstance(answers, list) else [answers]
            runs.append({"options": options, "answers": answers})
        results.append({**item, "windows": first, "runs": runs})
    return {
        "versions": {
            "transformers": transformers.__version__,
            "tokenizers": tokenizers.__version__,
            "torch": torch.__version__,
            "numpy": np.__version__,
        },
        "inputs": results,
    }


def main() -> None:
    request_path, out_path = sys.argv[1:3]
    with open(request_path, encoding="utf-8") as f:
        result = run(json.load(f))
    with open(out_path, "w", encoding="utf-8") as f:
        json.dump(result, f, ensure_ascii=False)


if __name__ == "__main__":
    main()

"""A peer: the transformers 4.57 QA pipeline on a faster runtime, served without blocking.

What a user who wants speed would build instead of our backend: Hugging Face Optimum's model for
ONNX Runtime (`ORTModelForQuestionAnswering`) or OpenVINO (optimum-intel's
`OVModelForQuestionAnswering`), each with its library defaults, in the same
`pipeline("question-answering")`, in a FastAPI app with one uvicorn worker. The pipeline runs on
one worker thread, so the event loop stays free; one thread, because a pipeline and its fast
tokenizer are not safe to enter from two threads at once (and the runtime already uses every core).

Runs only in its own virtual environment (bench/.venv-peer-*). Environment: PEER_RUNTIME
(onnxruntime | openvino), PEER_MODEL_DIR, PEER_CACHE_DIR (the converted model, kept between runs).
`python server.py` converts the model into PEER_CACHE_DIR and exits (the benchmark runs it before
timing cold start, as our ONNX/OpenVINO conversions are cached too).
"""

import asyncio
import os
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

RUNTIME = os.environ["PEER_RUNTIME"]
MODEL_DIR = Path(os.environ["PEER_MODEL_DIR"])
CACHE_DIR = Path(os.environ["PEER_CACHE_DIR"])


def model_class() -> type:
    if RUNTIME == "onnxruntime":
        from optimum.onnxruntime import ORTModelForQuestionAnswering

        return ORTModelForQuestionAnswering
    if RUNTIME == "openvino":
        from optimum.intel import OVModelForQuestionAnswering

        return OVModelForQuestionAnswering
    raise ValueError(f"PEER_RUNTIME must be onnxruntime or openvino, not {RUNTIME!r}")


def convert() -> None:
    """Export the model with the library's own exporter into CACHE_DIR (once)."""
    if (CACHE_DIR / "config.json").exists():
        return
    CACHE_DIR.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=CACHE_DIR.parent))  # renamed into place when complete
    model_class().from_pretrained(MODEL_DIR, export=True).save_pretrained(work)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(MODEL_DIR / name, work / name)
    work.rename(CACHE_DIR)


if __name__ == "__main__":
    convert()
else:
    from fastapi import FastAPI
    from transformers import AutoTokenizer, pipeline

    nlp = pipeline(
        "question-answering",
        model=model_class().from_pretrained(CACHE_DIR),
        tokenizer=AutoTokenizer.from_pretrained(CACHE_DIR),
    )
    worker = ThreadPoolExecutor(max_workers=1)
    app = FastAPI()

    @app.post("/qas/")
    async def qas(context: str, question: str) -> str:
        # The same windowing as the baseline and our backend.
        ask = partial(nlp, question=question, context=context, max_seq_len=384, doc_stride=128)
        result = await asyncio.get_running_loop().run_in_executor(worker, ask)
        return result["answer"]

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

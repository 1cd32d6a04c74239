"""The naive design the benchmark compares against, built exactly as the original demo was.

A transformers 4.x `pipeline("question-answering")` created at import, called synchronously
inside an `async def` endpoint (so it blocks the event loop), one uvicorn worker, fp32 torch.
Runs only in bench/.venv-baseline. Model directory: env BASELINE_MODEL_DIR.
"""

import os

from fastapi import FastAPI
from transformers import pipeline

MODEL_DIR = os.environ["BASELINE_MODEL_DIR"]

nlp = pipeline("question-answering", model=MODEL_DIR, tokenizer=MODEL_DIR)
app = FastAPI()


@app.post("/qas/")
async def qas(context: str, question: str) -> str:
    # The pipeline defaults, spelled out: the same windowing as the backend's limits.
    result = nlp(question=question, context=context, max_seq_len=384, doc_stride=128)
    return result["answer"]


@app.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}

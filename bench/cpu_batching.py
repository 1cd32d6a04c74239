"""Does batching pay on this CPU? The batches 8 busy clients make, run three ways, side by side.

At 8 closed-loop clients the scheduler forms batches from what is waiting when the last batch ends
(the clients it answered have not asked again yet): led by the oldest request, filled in arrival
order with windows that fit (pipeline.fits), up to QA_MAX_BATCH_SIZE, padded to a multiple of
QA_PAD_TO_MULTIPLE_OF. This script replays that on real SQuAD-es windows (the serving benchmark's
requests, encoded by our pipeline) and times, through the backend's own forward pass:

- batched: each batch as the server runs it (one padded pass on all threads);
- alone: every window in a pass of its own (batch 1, padded only to the multiple);
- streams (OpenVINO only): a batch's windows one by one on parallel streams of one thread each,
  which is how OpenVINO's throughput hint spends the cores.

The ways alternate (A B C A B C) so that other work on a shared machine hits each alike.

    .venv/bin/python bench/cpu_batching.py --backend openvino-bf16 --rounds 3
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent / "fastapi"))

import run  # noqa: E402
import workload  # noqa: E402

CLIENTS = 8
BATCHES = 60

Windows = Sequence[Sequence[int]]  # one batch: each row a window's length in tokens


def replay_batches(lengths: list[int], max_batch_size: int, fits: Callable) -> list[list[int]]:
    """The batches 8 closed-loop clients of single-window requests get, in order."""
    arrivals = iter(lengths * (1 + BATCHES * max_batch_size // len(lengths)))
    waiting = [next(arrivals) for _ in range(CLIENTS)]
    batches: list[list[int]] = []
    while len(batches) < BATCHES:
        rows: list[int] = []
        for length in waiting:
            if len(rows) < max_batch_size and (not rows or fits(rows, length)):
                rows.append(length)
        for length in rows:
            waiting.remove(length)
        if batches:  # the clients the last batch answered ask again while this one runs
            waiting += [next(arrivals) for _ in batches[-1]]
        batches.append(rows)
    return batches


def inputs(rows: Sequence[int], width: int) -> dict[str, np.ndarray]:
    ids = np.full((len(rows), width), 5, dtype=np.int64)  # any token: the cost is the shape
    mask = np.zeros_like(ids)
    for row, length in enumerate(rows):
        mask[row, :length] = 1
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}


def streams_runner(backend_name: str, threads: int, padded: Callable[[int], int]) -> Callable:
    """A batch's windows, one per infer request, over `threads` single-thread OpenVINO streams."""
    import openvino as ov

    from qa_api.inference.openvino_export import converted_model

    precision = "int8" if backend_name == "openvino-int8" else "fp32"
    core = ov.Core()
    compiled = core.compile_model(
        core.read_model(converted_model(run.MODEL_DIR, precision, run.ONNX_CACHE)),
        "CPU",
        {
            "PERFORMANCE_HINT": "THROUGHPUT",
            "NUM_STREAMS": str(threads),
            "INFERENCE_NUM_THREADS": str(threads),
            "INFERENCE_PRECISION_HINT": "bf16" if backend_name == "openvino-bf16" else "f32",
        },
    )
    queue = ov.AsyncInferQueue(compiled, threads)

    def run_batch(rows: Sequence[int]) -> None:
        for length in rows:
            queue.start_async(inputs([length], padded(length)), share_inputs=True)
        queue.wait_all()

    return run_batch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", default="openvino-bf16")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--pairs", type=int, default=200)
    args = parser.parse_args()

    from transformers import AutoTokenizer

    from qa_api.config import Settings
    from qa_api.inference.backends import load_backend
    from qa_api.inference.pipeline import Pipeline, fits
    from qa_api.inference.types import QAQuery

    settings = Settings(models={"beto": str(run.ensure_model())}, backend=args.backend)
    backend = load_backend(run.MODEL_DIR, args.backend, "cpu", settings.threads, run.ONNX_CACHE)
    pipeline = Pipeline(
        "beto",
        AutoTokenizer.from_pretrained(run.MODEL_DIR),
        backend,
        settings.max_question_len,
        settings.pad_to_multiple_of,
    )
    options = settings.decoding_defaults()
    lengths = [
        len(window)
        for pair in workload.load_pairs(args.pairs)
        for window in pipeline.encode(QAQuery(pair.question, pair.context, options)).windows
    ]
    batches = replay_batches(lengths, settings.max_batch_size, fits)

    def one_pass(rows: Sequence[int]) -> None:
        backend.forward(**inputs(rows, pipeline.padded_length(max(rows))))

    ways: dict[str, Callable[[Sequence[int]], None]] = {
        "batched": one_pass,
        "alone": lambda rows: [one_pass([length]) for length in rows],  # type: ignore[func-returns-value]
    }
    if args.backend.startswith("openvino-"):
        ways["streams"] = streams_runner(args.backend, settings.threads, pipeline.padded_length)

    print(f"CPU: {run.cpu_model()}, {settings.threads} threads; {', '.join(run.cpu_features())}")
    mean_batch = statistics.fmean(map(len, batches))
    print(
        f"{args.backend}: {len(batches)} batches, {sum(map(len, batches))} windows of "
        f"{args.pairs} requests' lengths (mean batch {mean_batch:.2f}, max "
        f"{settings.max_batch_size}, padding to {settings.pad_to_multiple_of})"
    )
    padded_tokens = {
        "batched": sum(len(r) * pipeline.padded_length(max(r)) for r in batches),
        "alone": sum(pipeline.padded_length(n) for r in batches for n in r),
    }
    padded_tokens["streams"] = padded_tokens["alone"]
    for way in ways.values():  # every shape once per way before timing (first passes set up)
        for rows in batches:
            way(rows)
    seconds: dict[str, list[float]] = {name: [] for name in ways}
    for _ in range(args.rounds):
        for name, way in ways.items():
            started = time.perf_counter()
            for rows in batches:
                way(rows)
            seconds[name].append(time.perf_counter() - started)
    windows = sum(map(len, batches))
    reference = statistics.median(seconds["batched"])
    print(f"{'way':<8} {'tokens':>7} {'median s':>9} {'ms/window':>10} {'vs batched':>11}")
    for name, times in seconds.items():
        median = statistics.median(times)
        print(
            f"{name:<8} {padded_tokens[name]:>7} {median:>9.2f} {median / windows * 1000:>10.1f} "
            f"{median / reference:>10.3f}x  (rounds: {', '.join(f'{t:.2f}' for t in times)})"
        )


if __name__ == "__main__":
    main()

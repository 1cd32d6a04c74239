"""The benchmark's requests: real SQuAD-es question/context pairs and their token lengths."""

from __future__ import annotations

import json
import random
import statistics
from dataclasses import dataclass
from pathlib import Path

DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "data"
DATASET = "squad-es-v2.0-dev-small.json"
MAX_SEQ_LEN = 384
DOC_STRIDE = 128


@dataclass(frozen=True)
class Pair:
    question: str
    context: str


@dataclass(frozen=True)
class LengthProfile:
    """Token lengths of the windows the model sees for the requests (same windowing as served)."""

    median_tokens: int
    p90_tokens: int
    max_tokens: int
    mean_windows: float
    share_multi_window: float


def load_pairs(count: int, seed: int = 0, data_dir: Path = DATA_DIR) -> list[Pair]:
    """A fixed random sample of question/context pairs (the same for every server and run)."""
    squad = json.loads((data_dir / DATASET).read_text(encoding="utf-8"))
    pairs = [
        Pair(qa["question"], paragraph["context"])
        for article in squad["data"]
        for paragraph in article["paragraphs"]
        for qa in paragraph["qas"]
    ]
    return random.Random(seed).sample(pairs, count)


def length_profile(pairs: list[Pair], model_dir: Path) -> tuple[LengthProfile, list[int]]:
    """Window lengths after tokenization with max_seq_len/doc_stride windowing, and per-request."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    window_lengths: list[int] = []
    request_tokens: list[int] = []
    windows_per_request: list[int] = []
    for pair in pairs:
        encoded = tokenizer(
            pair.question,
            pair.context,
            truncation="only_second",
            max_length=MAX_SEQ_LEN,
            stride=DOC_STRIDE,
            return_overflowing_tokens=True,
        )
        lengths = [len(ids) for ids in encoded["input_ids"]]
        window_lengths.extend(lengths)
        request_tokens.append(sum(lengths))
        windows_per_request.append(len(lengths))
    profile = LengthProfile(
        median_tokens=int(statistics.median(window_lengths)),
        p90_tokens=int(statistics.quantiles(window_lengths, n=10)[-1]),
        max_tokens=max(window_lengths),
        mean_windows=statistics.fmean(windows_per_request),
        share_multi_window=sum(n > 1 for n in windows_per_request) / len(pairs),
    )
    return profile, request_tokens

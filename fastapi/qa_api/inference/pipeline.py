"""One model's pipeline: encode, batch, forward, decode. Plain calls over data: no threads, queues.

The scheduler (scheduler.py) decides what runs when and on which thread; everything here runs on
the caller's thread and returns what it computed.

Batches hold windows of similar length (the shortest at least `MIN_LENGTH_RATIO` of the longest)
and are padded to a multiple of `pad_to_multiple_of` (16 by default): CPU kernels cache their
setup per input shape (about 10 ms for a new shape in bf16), and a few known shapes, all warmed up
at start, cost less than a few padding tokens.
"""

from __future__ import annotations

import time
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from qa_api.inference import contexts, decoding, features
from qa_api.inference.backends import Logits, ModelBackend, run_steps
from qa_api.inference.contexts import ContextCache
from qa_api.inference.types import QAQuery

# A batch-mate may be this much shorter than the longest window of its batch (padding waste cap).
MIN_LENGTH_RATIO = 0.8
MAX_POSITIONS = 512  # padding never goes past BERT's position table
WARM_UP_TIMED_PASSES = 3

Forward = Generator[None, None, list[Logits]]


@dataclass(frozen=True, slots=True)
class WarmUp:
    """What warm-up measured: tokens run and the seconds they took (a first throughput figure)."""

    tokens: int
    seconds: float


def fits(lengths: Sequence[int], length: int) -> bool:
    """Whether a window of `length` tokens may join a batch of windows of `lengths` tokens."""
    longest, shortest = max(length, *lengths), min(length, *lengths)
    return shortest >= MIN_LENGTH_RATIO * longest


class Pipeline:
    """A model's tokenizer and backend behind plain calls; the caller picks the thread."""

    def __init__(
        self,
        name: str,
        tokenizer: Any,
        backend: ModelBackend,
        max_question_len: int,
        pad_to_multiple_of: int,
        contexts: ContextCache | None = None,
    ) -> None:
        self.name = name
        self.tokenizer = tokenizer
        self.backend = backend
        self.max_question_len = max_question_len
        self.pad_to_multiple_of = pad_to_multiple_of
        self.contexts = contexts

    def encode(self, query: QAQuery) -> features.EncodedQuery:
        """The query's windows (raises InvalidInputError for a query that cannot be windowed).

        With `bm25_top_n`, only the windows BM25 ranks first, from the context's cached tokens.
        """
        options = query.options
        if options.bm25_top_n is None:
            return features.encode(
                self.tokenizer, query.question, query.context, options, self.max_question_len
            )
        tokenize = partial(contexts.tokenize_context, self.tokenizer)
        context = (
            self.contexts.get(self.name, query.context, tokenize)
            if self.contexts is not None
            else tokenize(query.context)
        )
        return contexts.encode_best(
            self.tokenizer,
            query.question,
            context,
            options,
            self.max_question_len,
            options.bm25_top_n,
        )

    def padded_length(self, longest: int) -> int:
        """A batch's length: its longest window rounded up to the multiple, within BERT's table."""
        step = self.pad_to_multiple_of
        return max(longest, min(-(-longest // step) * step, MAX_POSITIONS))

    @property
    def steps_by_layer(self) -> bool:
        """Whether the backend can pause between encoder layers or runs a batch in one step."""
        return bool(getattr(self.backend, "steps_by_layer", False))

    def forward(self, windows: Sequence[features.Window], pausable: bool = True) -> Forward:
        """One padded forward pass over `windows`, in steps: one per encoder layer if `pausable`
        and the backend can pause (`steps_by_layer`), else one. Returns their logits."""
        width = self.padded_length(max(len(w) for w in windows))
        input_ids = np.zeros((len(windows), width), dtype=np.int64)
        token_type_ids = np.zeros_like(input_ids)
        attention_mask = np.zeros_like(input_ids)
        for row, window in enumerate(windows):
            n = len(window)
            input_ids[row, :n] = window.input_ids
            token_type_ids[row, :n] = window.token_type_ids
            attention_mask[row, :n] = 1
        if pausable and self.steps_by_layer:
            steps = self.backend.forward_steps  # type: ignore[attr-defined]
            start, end = yield from steps(input_ids, attention_mask, token_type_ids)
        else:
            yield
            start, end = self.backend.forward(input_ids, attention_mask, token_type_ids)
        return [(start[row, : len(w)], end[row, : len(w)]) for row, w in enumerate(windows)]

    def decode(
        self, query: QAQuery, encoded: features.EncodedQuery, logits: Sequence[Logits]
    ) -> decoding.Decoded:
        """Answers from every window's logits: the one call into span decoding."""
        starts = [start for start, _ in logits]
        ends = [end for _, end in logits]
        return decoding.decode(encoded, query.context, starts, ends, query.options)

    def warm_up(self, max_seq_len: int) -> WarmUp:
        """One forward pass at every padded length a request can have (before serving), whole
        and, where the backend compiles its layers apart (OpenVINO), layer by layer.

        Then a few more at the longest, timed: a full window alone, the slowest tokens there are
        (first passes pay each shape's setup, which says nothing about the steady speed).
        """
        lengths = sorted({self.padded_length(n) for n in range(1, max_seq_len + 1)})
        for length in lengths:
            ids = np.ones((1, length), dtype=np.int64)
            self.backend.forward(ids, ids, np.zeros_like(ids))
            if getattr(self.backend, "steps_compiled_apart", False):
                run_steps(self.backend.forward_steps(ids, ids, np.zeros_like(ids)))  # type: ignore[attr-defined]
        seconds = []
        for _ in range(WARM_UP_TIMED_PASSES):  # the median: one pass may meet a stalled core
            started = time.perf_counter()
            self.backend.forward(ids, ids, np.zeros_like(ids))
            seconds.append(time.perf_counter() - started)
        return WarmUp(lengths[-1], sorted(seconds)[len(seconds) // 2])

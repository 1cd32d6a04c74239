"""Turn a (question, context) pair into model windows, as the transformers QA pipeline did.

A long context is split into overlapping windows of at most `max_seq_len` tokens
(`[CLS] question [SEP] context-part [SEP]`), consecutive windows sharing `doc_stride` tokens.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from qa_api.inference.errors import InvalidInputError
from qa_api.inference.types import QAOptions

SPECIAL_TOKENS_IN_PAIR = 3  # [CLS] q [SEP] c [SEP]


@dataclass(frozen=True, slots=True)
class Window:
    input_ids: np.ndarray  # (seq,) int64
    token_type_ids: np.ndarray  # (seq,) int64
    context_mask: np.ndarray  # (seq,) bool: token belongs to the context
    word_ids: np.ndarray  # (seq,) int64: context word index, -1 elsewhere

    def __len__(self) -> int:
        return int(self.input_ids.shape[0])


@dataclass(frozen=True, slots=True)
class EncodedQuery:
    windows: list[Window]
    token_starts: list[np.ndarray]  # per window: character start of each token in the context
    token_ends: list[np.ndarray]
    word_spans: np.ndarray  # (num_words, 2): character span of each whole context word


def question_length(tokenizer: Any, question: str) -> int:
    return len(tokenizer(question, add_special_tokens=False)["input_ids"])


def check_window_fits(question_tokens: int, options: QAOptions, max_question_len: int) -> None:
    """Raise InvalidInputError when the question leaves no room for overlapping context windows."""
    if question_tokens > max_question_len:
        raise InvalidInputError(
            f"The question is {question_tokens} tokens long; the limit is {max_question_len} "
            "tokens. Shorten the question."
        )
    room = options.max_seq_len - question_tokens - SPECIAL_TOKENS_IN_PAIR
    if options.doc_stride >= room:
        raise InvalidInputError(
            f"doc_stride ({options.doc_stride}) must be smaller than the room left for the "
            f"context in a window ({room} tokens = max_seq_len {options.max_seq_len} - question "
            f"{question_tokens} - {SPECIAL_TOKENS_IN_PAIR}). Lower doc_stride or raise max_seq_len."
        )


def encode(
    tokenizer: Any, question: str, context: str, options: QAOptions, max_question_len: int
) -> EncodedQuery:
    """Tokenize into windows and keep, per token, its character offsets and whole-word span."""
    check_window_fits(question_length(tokenizer, question), options, max_question_len)
    batch = tokenizer(
        question,
        context,
        truncation="only_second",
        max_length=options.max_seq_len,
        stride=options.doc_stride,
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
        return_token_type_ids=True,
        padding=False,
    )
    windows: list[Window] = []
    token_starts: list[np.ndarray] = []
    token_ends: list[np.ndarray] = []
    word_bounds: dict[int, tuple[int, int]] = {}
    for i, input_ids in enumerate(batch["input_ids"]):
        sequence_ids = batch.sequence_ids(i)
        word_ids = batch.word_ids(i)
        offsets = batch["offset_mapping"][i]
        in_context = np.array([s == 1 for s in sequence_ids], dtype=bool)
        words = np.array(
            [
                w if (s == 1 and w is not None) else -1
                for s, w in zip(sequence_ids, word_ids, strict=True)
            ],
            dtype=np.int64,
        )
        starts = np.array([o[0] for o in offsets], dtype=np.int64)
        ends = np.array([o[1] for o in offsets], dtype=np.int64)
        for token in np.flatnonzero(in_context):
            word = int(words[token])
            lo, hi = word_bounds.get(word, (int(starts[token]), int(ends[token])))
            word_bounds[word] = (min(lo, int(starts[token])), max(hi, int(ends[token])))
        windows.append(
            Window(
                input_ids=np.asarray(input_ids, dtype=np.int64),
                token_type_ids=np.asarray(batch["token_type_ids"][i], dtype=np.int64),
                context_mask=in_context,
                word_ids=words,
            )
        )
        token_starts.append(starts)
        token_ends.append(ends)
    if not word_bounds:
        raise InvalidInputError("The context has no readable text. Send a non-empty context.")
    word_spans = np.zeros((max(word_bounds) + 1, 2), dtype=np.int64)
    for word, (lo, hi) in word_bounds.items():
        word_spans[word] = (lo, hi)
    return EncodedQuery(windows, token_starts, token_ends, word_spans)

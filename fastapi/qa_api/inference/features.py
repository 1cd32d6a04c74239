"""Turn a (question, context) pair into model windows, as the transformers QA pipeline did.

A long context is split into overlapping windows of at most `max_seq_len` tokens
(`[CLS] question [SEP] context-part [SEP]`), consecutive windows sharing `doc_stride` tokens:
the tokenizer call of `QuestionAnsweringPipeline.preprocess` (transformers 4.57.6) for a
right-padding tokenizer, without padding. Word spans are per window, as the pipeline's
`Encoding.word_to_chars` sees them: a word cut by a window's edge spans only its tokens there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from qa_api.inference.errors import InvalidInputError
from qa_api.inference.types import QAOptions, Selection

SPECIAL_TOKENS_IN_PAIR = 3  # [CLS] q [SEP] c [SEP]


@dataclass(frozen=True, slots=True)
class Window:
    input_ids: np.ndarray  # (seq,) int64
    token_type_ids: np.ndarray  # (seq,) int64
    context_mask: np.ndarray  # (seq,) bool: token belongs to the context
    word_ids: np.ndarray  # (seq,) int64: context word index, -1 elsewhere
    # (seq,) bool: tokens in the softmax, the pipeline's p_mask == 0: the context and every [CLS]
    softmax_mask: np.ndarray

    def __len__(self) -> int:
        return int(self.input_ids.shape[0])


@dataclass(frozen=True, slots=True)
class EncodedQuery:
    windows: list[Window]
    token_starts: list[np.ndarray]  # per window: character start of each token in the context
    token_ends: list[np.ndarray]
    # per window, per token: character span of the token's whole word within that window
    word_starts: list[np.ndarray]
    word_ends: list[np.ndarray]
    selection: Selection | None = None  # the windows are a BM25 choice (contexts.encode_best)


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
    if options.doc_stride >= room and room <= options.max_seq_len // 2:
        # The question takes half the window or more: lowering doc_stride is not the fix.
        left = f"{room} tokens" if room > 0 else "no room"
        raise InvalidInputError(
            f"The question does not fit in max_seq_len ({options.max_seq_len} tokens): it is "
            f"{question_tokens} tokens long, plus {SPECIAL_TOKENS_IN_PAIR} special tokens, which "
            f"leaves {left} for the context, and a window needs more than doc_stride "
            f"({options.doc_stride}). Raise max_seq_len or shorten the question."
        )
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
    word_starts: list[np.ndarray] = []
    word_ends: list[np.ndarray] = []
    for i, input_ids in enumerate(batch["input_ids"]):
        sequence_ids = batch.sequence_ids(i)
        offsets = batch["offset_mapping"][i]
        ids = np.asarray(input_ids, dtype=np.int64)
        in_context = np.array([s == 1 for s in sequence_ids], dtype=bool)
        words = np.array(
            [
                w if (s == 1 and w is not None) else -1
                for s, w in zip(sequence_ids, batch.word_ids(i), strict=True)
            ],
            dtype=np.int64,
        )
        starts = np.array([o[0] for o in offsets], dtype=np.int64)
        ends = np.array([o[1] for o in offsets], dtype=np.int64)
        softmax_mask = in_context.copy()
        if tokenizer.cls_token_id is not None:
            softmax_mask |= ids == tokenizer.cls_token_id
        windows.append(
            Window(
                input_ids=ids,
                token_type_ids=np.asarray(batch["token_type_ids"][i], dtype=np.int64),
                context_mask=in_context,
                word_ids=words,
                softmax_mask=softmax_mask,
            )
        )
        token_starts.append(starts)
        token_ends.append(ends)
        first, last = _word_spans(words, starts, ends)
        word_starts.append(first)
        word_ends.append(last)
    if not any(window.context_mask.any() for window in windows):
        raise InvalidInputError("The context has no readable text. Send a non-empty context.")
    return EncodedQuery(windows, token_starts, token_ends, word_starts, word_ends)


def _word_spans(
    words: np.ndarray, starts: np.ndarray, ends: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per token, the start of its word's first token and the end of its last one in the window."""
    word_start, word_end = starts.copy(), ends.copy()
    first: dict[int, int] = {}
    last: dict[int, int] = {}
    in_words = np.flatnonzero(words >= 0)
    for token in in_words:
        first.setdefault(int(words[token]), int(starts[token]))
        last[int(words[token])] = int(ends[token])
    for token in in_words:
        word_start[token], word_end[token] = first[int(words[token])], last[int(words[token])]
    return word_start, word_end

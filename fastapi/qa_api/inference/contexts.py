"""A context tokenized once, then cut into windows for any question; and the cache that keeps it.

`features.encode` tokenizes question and context together, so every question re-tokenizes the
context. Here the context is tokenized alone (`tokenize_context`) and each question's windows are
assembled from it (`encode_windows`): `[CLS] question [SEP] context[a:b] [SEP]`, with the fast
tokenizer's own overflow rule (window k starts at k * (room - doc_stride) context tokens, room =
max_seq_len - question - 3; the last one ends at the context's end). The result is the same
`EncodedQuery` as `features.encode`'s, array for array (a unit test holds them together), so the
decoder cannot tell them apart; only the windows asked for are built.

What the cache keeps depends on the context text and the tokenizer only: the question and
max_seq_len/doc_stride change the windows' layout, not the context's tokens, so one entry serves
every follow-up question and every window setting.
"""

from __future__ import annotations

import hashlib
import math
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from qa_api.inference.errors import InvalidInputError
from qa_api.inference.features import (
    SPECIAL_TOKENS_IN_PAIR,
    EncodedQuery,
    Window,
    check_window_fits,
)
from qa_api.inference.passages import Terms, analyse, rank_windows
from qa_api.inference.types import QAOptions, Selection


@dataclass(eq=False, slots=True)
class ContextTokens:
    """The context's tokens: ids, character offsets, and the run of tokens of each one's word."""

    ids: np.ndarray  # (n,) int64
    starts: np.ndarray  # (n,) int64
    ends: np.ndarray  # (n,) int64
    word_ids: np.ndarray  # (n,) int64, -1 for a token of no word
    word_first: np.ndarray  # (n,) int64: index of the first token of the token's word
    word_last: np.ndarray  # (n,) int64: index of its last token
    text: str = field(repr=False)
    _terms: Terms | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    @property
    def terms(self) -> Terms:
        """The BM25 terms of the text, analysed on first use."""
        if self._terms is None:
            self._terms = analyse(self.text)
        return self._terms

    @property
    def nbytes(self) -> int:
        """Memory held, for the cache's budget: the BM25 terms count at a generous estimate
        (about 2 bytes per character measured on SQuAD-es) whether analysed yet or not."""
        arrays = (self.ids, self.starts, self.ends, self.word_ids, self.word_first, self.word_last)
        return sum(a.nbytes for a in arrays) + 4 * len(self.text) + len(self.text.encode())


def tokenize_context(tokenizer: Any, context: str) -> ContextTokens:
    """Tokenize the context alone (no special tokens), keeping offsets and word ids."""
    encoding = tokenizer(
        context, add_special_tokens=False, return_offsets_mapping=True, return_attention_mask=False
    )
    offsets = np.asarray(encoding["offset_mapping"], dtype=np.int64).reshape(-1, 2)
    word_ids = np.fromiter(
        (-1 if w is None else w for w in encoding.word_ids()), np.int64, len(offsets)
    )
    if not (word_ids >= 0).any():
        raise InvalidInputError("The context has no readable text. Send a non-empty context.")
    # A word's tokens are consecutive: runs of equal word ids (a token of no word is its own run).
    n = len(word_ids)
    new_run = np.ones(n, dtype=bool)
    new_run[1:] = (word_ids[1:] != word_ids[:-1]) | (word_ids[1:] < 0)
    run = np.cumsum(new_run) - 1
    run_starts = np.flatnonzero(new_run)
    run_ends = np.r_[run_starts[1:], n] - 1
    return ContextTokens(
        np.asarray(encoding["input_ids"], dtype=np.int64),
        offsets[:, 0].copy(),
        offsets[:, 1].copy(),
        word_ids,
        run_starts[run],
        run_ends[run],
        context,
    )


def window_ranges(num_tokens: int, room: int, stride: int) -> list[tuple[int, int]]:
    """Context token ranges of the windows, as the fast tokenizer's overflow cuts them."""
    step = room - stride
    ranges = []
    for start in range(0, max(num_tokens, 1), step):
        ranges.append((start, min(start + room, num_tokens)))
        if start + room >= num_tokens:
            break
    return ranges


@dataclass(frozen=True, slots=True)
class QuestionTokens:
    ids: np.ndarray  # (q,) int64
    starts: np.ndarray  # character offsets in the question
    ends: np.ndarray


def tokenize_question(tokenizer: Any, question: str) -> QuestionTokens:
    encoding = tokenizer(
        question, add_special_tokens=False, return_offsets_mapping=True, return_attention_mask=False
    )
    offsets = np.asarray(encoding["offset_mapping"], dtype=np.int64).reshape(-1, 2)
    return QuestionTokens(
        np.asarray(encoding["input_ids"], dtype=np.int64), offsets[:, 0], offsets[:, 1]
    )


def layout(
    question: QuestionTokens, context: ContextTokens, options: QAOptions, max_question_len: int
) -> list[tuple[int, int]]:
    """The windows' context token ranges for this question (after the room check)."""
    check_window_fits(len(question.ids), options, max_question_len)
    room = options.max_seq_len - len(question.ids) - SPECIAL_TOKENS_IN_PAIR
    return window_ranges(len(context), room, options.doc_stride)


def char_spans(context: ContextTokens, ranges: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """Each window's character span in the context: first token's start to last token's end."""
    return [(int(context.starts[a]), int(context.ends[b - 1])) for a, b in ranges]


def encode_windows(
    tokenizer: Any,
    question: QuestionTokens,
    context: ContextTokens,
    ranges: Sequence[tuple[int, int]],
) -> EncodedQuery:
    """The windows over the given context token ranges, as `features.encode` builds them."""
    cls, sep = tokenizer.cls_token_id, tokenizer.sep_token_id
    q = len(question.ids)
    head_ids = np.r_[[cls], question.ids, [sep]].astype(np.int64)
    head_starts = np.r_[[0], question.starts, [0]].astype(np.int64)
    head_ends = np.r_[[0], question.ends, [0]].astype(np.int64)
    encoded = EncodedQuery([], [], [], [], [])
    for a, b in ranges:
        n = b - a
        ids = np.r_[head_ids, context.ids[a:b], [sep]]
        in_context = np.r_[np.zeros(q + 2, bool), np.ones(n, bool), [False]]
        starts = np.r_[head_starts, context.starts[a:b], [0]]
        ends = np.r_[head_ends, context.ends[a:b], [0]]
        # A word cut by the window's edge spans only its tokens inside the window.
        first = np.clip(context.word_first[a:b], a, b - 1)
        last = np.clip(context.word_last[a:b], a, b - 1)
        encoded.windows.append(
            Window(
                input_ids=ids,
                token_type_ids=np.r_[np.zeros(q + 2, np.int64), np.ones(n + 1, np.int64)],
                context_mask=in_context,
                word_ids=np.r_[np.full(q + 2, -1, np.int64), context.word_ids[a:b], [-1]],
                softmax_mask=in_context | (ids == cls),
            )
        )
        encoded.token_starts.append(starts)
        encoded.token_ends.append(ends)
        encoded.word_starts.append(np.r_[head_starts, context.starts[first], [0]])
        encoded.word_ends.append(np.r_[head_ends, context.ends[last], [0]])
    return encoded


def encode_best(
    tokenizer: Any,
    question: str,
    context: ContextTokens,
    options: QAOptions,
    max_question_len: int,
    top_n: int,
) -> EncodedQuery:
    """Only the `top_n` windows most similar to the question (BM25), or `options.bm25_share` of
    them if more, in text order; its `selection` says which windows those were, of how many."""
    q = tokenize_question(tokenizer, question)
    ranges = layout(q, context, options, max_question_len)
    top_n = max(top_n, math.ceil(options.bm25_share * len(ranges)))
    ranked = rank_windows(context.terms, char_spans(context, ranges), question, top_n)
    chosen = sorted(r.index for r in ranked)
    encoded = encode_windows(tokenizer, q, context, [ranges[i] for i in chosen])
    return replace(encoded, selection=Selection(len(ranges), tuple(ranked)))


def text_key(text: str) -> str:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


class ContextCache:
    """Tokenized contexts by (model, text hash), least recently used out past `max_bytes`.

    Thread-safe; `hits`/`misses` count lookups (the metrics read them). A context bigger than
    the whole budget is tokenized and used, but not kept.
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.hits = 0
        self.misses = 0
        self._entries: OrderedDict[tuple[str, str], tuple[ContextTokens, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    @property
    def nbytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, model: str, text: str, build: Callable[[str], ContextTokens]) -> ContextTokens:
        """The cached tokens of `text` for `model`, or `build(text)`'s, kept for next time."""
        key = (model, text_key(text))
        with self._lock:
            kept = self._entries.get(key)
            if kept is not None and kept[0].text == text:  # equal text, not only equal hash
                self._entries.move_to_end(key)
                self.hits += 1
                return kept[0]
            self.misses += 1
        entry = build(text)
        self._put(key, entry)
        return entry

    def _put(self, key: tuple[str, str], entry: ContextTokens) -> None:
        size = entry.nbytes
        with self._lock:
            if size > self.max_bytes or key in self._entries:
                return
            self._entries[key] = (entry, size)
            self._bytes += size
            while self._bytes > self.max_bytes:
                _, (_, evicted) = self._entries.popitem(last=False)
                self._bytes -= evicted

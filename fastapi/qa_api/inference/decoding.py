"""Span decoding with the semantics of the transformers question-answering pipeline.

Per window: softmax over the context tokens plus [CLS]; the null score is p_start[CLS] * p_end[CLS];
span scores are p_start[i] * p_end[j] for context tokens i <= j < i + max_answer_len. Across
windows the null score is the minimum (the window most sure there is an answer decides), spans
are merged, aligned to whole words, deduplicated by character span and ranked.
"""

from __future__ import annotations

import numpy as np

from qa_api.inference.features import EncodedQuery
from qa_api.inference.types import Answer, QAOptions

CLS_INDEX = 0
MASKED_LOGIT = -10000.0


def _softmax(logits: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    masked = np.where(allowed, logits.astype(np.float64), MASKED_LOGIT)
    exp = np.exp(masked - masked.max())
    return exp / exp.sum()


def best_spans(
    p_start: np.ndarray, p_end: np.ndarray, candidates: np.ndarray, top_k: int, max_answer_len: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Top-k (start, end, score) over candidate tokens, start <= end < start + max_answer_len."""
    scores = np.outer(p_start, p_end)
    scores = np.tril(np.triu(scores), max_answer_len - 1)
    scores[~candidates, :] = 0.0
    scores[:, ~candidates] = 0.0
    flat = scores.ravel()
    k = min(top_k, int(np.count_nonzero(flat)))
    if k == 0:
        empty = np.array([], dtype=np.int64)
        return empty, empty, np.array([], dtype=np.float64)
    top = np.argpartition(-flat, k - 1)[:k]
    top = top[np.argsort(-flat[top], kind="stable")]
    starts, ends = np.unravel_index(top, scores.shape)
    return starts, ends, flat[top]


def decode(
    encoded: EncodedQuery,
    context: str,
    start_logits: list[np.ndarray],
    end_logits: list[np.ndarray],
    options: QAOptions,
) -> tuple[list[Answer], float]:
    """Return the ranked answers (null excluded) and the no-answer probability."""
    null_score = 1.0
    by_span: dict[tuple[int, int], float] = {}
    for w, window in enumerate(encoded.windows):
        allowed = window.context_mask.copy()
        allowed[CLS_INDEX] = True
        p_start = _softmax(start_logits[w], allowed)
        p_end = _softmax(end_logits[w], allowed)
        null_score = min(null_score, float(p_start[CLS_INDEX] * p_end[CLS_INDEX]))
        starts, ends, scores = best_spans(
            p_start, p_end, window.context_mask, options.top_k, options.max_answer_len
        )
        for s, e, score in zip(starts, ends, scores, strict=True):
            char_start, char_end = _align_to_words(encoded, w, int(s), int(e))
            key = (char_start, char_end)
            by_span[key] = max(by_span.get(key, 0.0), float(score))
    ranked = sorted(by_span.items(), key=lambda item: (-item[1], item[0]))[: options.top_k]
    answers = [Answer(context[s:e], score, s, e) for (s, e), score in ranked]
    return answers, null_score


def _align_to_words(encoded: EncodedQuery, window: int, start: int, end: int) -> tuple[int, int]:
    """Widen a token span to the whole words it touches (character offsets in the context)."""
    word_ids = encoded.windows[window].word_ids
    first, last = int(word_ids[start]), int(word_ids[end])
    if first < 0 or last < 0:
        return int(encoded.token_starts[window][start]), int(encoded.token_ends[window][end])
    return int(encoded.word_spans[first][0]), int(encoded.word_spans[last][1])

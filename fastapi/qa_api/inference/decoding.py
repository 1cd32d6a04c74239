"""Span decoding, step for step as transformers 4.57.6's question-answering pipeline.

`QuestionAnsweringPipeline.postprocess` with `select_starts_ends` and `decode_spans`, in float32
with the same numpy calls (so near-ties break the same way). The rules, and the two places where
we deliberately differ, are listed in docs/api.md ("Decoding rules").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qa_api.inference.features import EncodedQuery
from qa_api.inference.types import Answer, QAOptions

CLS_INDEX = 0
MASKED_LOGIT = -10000.0  # what the pipeline writes over tokens outside the softmax


@dataclass(frozen=True, slots=True)
class Decoded:
    """Ranked answers (the null answer left out), whether the null won, and its probability."""

    answers: list[Answer]
    no_answer: bool
    no_answer_probability: float


def candidates_per_window(top_k: int) -> int:
    """Spans taken per window before word alignment and merging can remove some."""
    return top_k * 2 + 10


def probabilities(logits: np.ndarray, softmax_mask: np.ndarray) -> np.ndarray:
    """float32 softmax over the allowed tokens, shape (1, seq), as `select_starts_ends`."""
    masked = np.where(~softmax_mask[None, :], MASKED_LOGIT, np.asarray(logits, np.float32)[None, :])
    exp = np.exp(masked - masked.max(axis=-1, keepdims=True))
    return exp / exp.sum()


def best_spans(
    p_start: np.ndarray, p_end: np.ndarray, top_k: int, max_answer_len: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The top_k (start, end, score) of the whole span matrix, as `decode_spans` ranks them.

    Spans with end < start or longer than max_answer_len tokens score 0; so do spans touching a
    token outside the softmax. The caller drops what it cannot answer with.
    """
    outer = np.matmul(np.expand_dims(p_start, -1), np.expand_dims(p_end, 1))
    candidates = np.tril(np.triu(outer), max_answer_len - 1)
    scores_flat = candidates.flatten()
    if top_k == 1:
        idx_sort = np.array([np.argmax(scores_flat)])
    elif len(scores_flat) < top_k:
        idx_sort = np.argsort(-scores_flat)
    else:
        idx = np.argpartition(-scores_flat, top_k)[0:top_k]
        idx_sort = idx[np.argsort(-scores_flat[idx])]
    starts, ends = np.unravel_index(idx_sort, candidates.shape)[1:]
    return starts, ends, candidates[0, starts, ends]


@dataclass(slots=True)
class _Candidate:
    text: str
    score: float
    start: int
    end: int
    is_null: bool = False


def decode(
    encoded: EncodedQuery,
    context: str,
    start_logits: list[np.ndarray],
    end_logits: list[np.ndarray],
    options: QAOptions,
) -> Decoded:
    """Rank the answer spans of every window, merge same-text ones, let the null answer compete."""
    null_score = 1.0
    found: list[_Candidate] = []
    by_text: dict[str, _Candidate] = {}
    pre_top_k = candidates_per_window(options.top_k)
    for w, window in enumerate(encoded.windows):
        p_start = probabilities(start_logits[w], window.softmax_mask)
        p_end = probabilities(end_logits[w], window.softmax_mask)
        null_score = min(null_score, (p_start[0, CLS_INDEX] * p_end[0, CLS_INDEX]).item())
        p_start[0, CLS_INDEX] = p_end[0, CLS_INDEX] = 0.0
        starts, ends, scores = best_spans(p_start, p_end, pre_top_k, options.max_answer_len)
        usable = window.context_mask[starts] & window.context_mask[ends] & (scores > 0)
        for s, e, score in zip(starts[usable], ends[usable], scores[usable], strict=True):
            start, end = int(encoded.word_starts[w][s]), int(encoded.word_ends[w][e])
            text = context[start:end]
            same = by_text.get(text.lower())
            if same is not None:
                same.score += score.item()
            else:
                candidate = _Candidate(text, score.item(), start, end)
                by_text[text.lower()] = candidate
                found.append(candidate)
    if options.handle_impossible_answer:
        found.append(_Candidate("", null_score, 0, 0, is_null=True))
    ranked = sorted(found, key=lambda c: c.score, reverse=True)[: options.top_k]
    return Decoded(
        answers=[Answer(c.text, c.score, c.start, c.end) for c in ranked if not c.is_null],
        no_answer=bool(ranked) and ranked[0].is_null,
        no_answer_probability=null_score,
    )

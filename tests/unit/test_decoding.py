"""Span decoding on hand-made logits, over real windows from the tiny model's tokenizer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from transformers import AutoTokenizer

from qa_api.inference import decoding, features
from qa_api.inference.errors import InvalidInputError
from qa_api.inference.types import QAOptions

HIGH, LOW = 10.0, -10.0
ACCENTED = (
    "¿Sabías que el pingüino emperador vive en la Antártida? ¡Sí! Allí también está el ñandú."
)


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir: Path):  # type: ignore[no-untyped-def]
    return AutoTokenizer.from_pretrained(tiny_model_dir)


def encode(tokenizer, context: str, **options: object) -> tuple[features.EncodedQuery, QAOptions]:  # type: ignore[no-untyped-def]
    opts = QAOptions(**options)  # type: ignore[arg-type]
    return features.encode(tokenizer, "¿Dónde?", context, opts, max_question_len=64), opts


def flat_logits(encoded: features.EncodedQuery) -> tuple[list[np.ndarray], list[np.ndarray]]:
    starts = [np.full(len(w), LOW, dtype=np.float32) for w in encoded.windows]
    ends = [np.full(len(w), LOW, dtype=np.float32) for w in encoded.windows]
    return starts, ends


def token_of(encoded: features.EncodedQuery, window: int, context: str, word: str) -> int:
    """Index, in a window, of the first context token that starts where `word` starts."""
    char = context.index(word)
    w = encoded.windows[window]
    hits = np.flatnonzero(w.context_mask & (encoded.token_starts[window] == char))
    assert hits.size, f"{word!r} is not in window {window}"
    return int(hits[0])


def last_token_of(encoded: features.EncodedQuery, window: int, context: str, word: str) -> int:
    char_end = context.index(word) + len(word)
    w = encoded.windows[window]
    hits = np.flatnonzero(w.context_mask & (encoded.token_ends[window] == char_end))
    assert hits.size, f"end of {word!r} is not in window {window}"
    return int(hits[-1])


def test_span_offsets_are_exact_on_accented_text(tokenizer) -> None:  # type: ignore[no-untyped-def]
    encoded, opts = encode(tokenizer, ACCENTED, top_k=5)
    starts, ends = flat_logits(encoded)
    starts[0][token_of(encoded, 0, ACCENTED, "Antártida")] = HIGH
    ends[0][last_token_of(encoded, 0, ACCENTED, "Antártida")] = HIGH
    answers, null = decoding.decode(encoded, ACCENTED, starts, ends, opts)
    assert answers[0].answer == "Antártida"
    assert (answers[0].start, answers[0].end) == (45, 54)  # counted in characters, not bytes
    for answer in answers:
        assert ACCENTED[answer.start : answer.end] == answer.answer
    assert answers[0].score > 0.9
    assert null < 1e-6


@pytest.mark.parametrize("word", ["pingüino", "ñandú", "¿Sabías", "¡Sí"])
def test_answers_align_to_whole_words(tokenizer, word: str) -> None:  # type: ignore[no-untyped-def]
    """A span that starts or ends inside a word is widened to the whole word."""
    encoded, opts = encode(tokenizer, ACCENTED)
    starts, ends = flat_logits(encoded)
    target = word.lstrip("¿¡")
    first, last = (
        token_of(encoded, 0, ACCENTED, target),
        last_token_of(encoded, 0, ACCENTED, target),
    )
    starts[0][last] = HIGH  # the last sub-token of the word only
    ends[0][last] = HIGH
    (answer,), _ = decoding.decode(encoded, ACCENTED, starts, ends, opts)
    assert answer.answer == target
    assert first <= last


@pytest.mark.parametrize(("cls_logit", "no_answer"), [(HIGH + 5, True), (LOW, False)])
def test_null_score_competes_with_the_best_span(
    tokenizer, cls_logit: float, no_answer: bool
) -> None:  # type: ignore[no-untyped-def]
    context = "El río Ebro nace en Fontibre y desemboca en el Mediterráneo."
    encoded, opts = encode(tokenizer, context)
    starts, ends = flat_logits(encoded)
    starts[0][token_of(encoded, 0, context, "Fontibre")] = HIGH
    ends[0][last_token_of(encoded, 0, context, "Fontibre")] = HIGH
    starts[0][0] = ends[0][0] = cls_logit
    answers, null = decoding.decode(encoded, context, starts, ends, opts)
    best = answers[0]
    assert best.answer == "Fontibre"
    assert (null > best.score) is no_answer


LONG_CONTEXT = " ".join(f"Frase número {i} del documento sobre Madrid." for i in range(120))


def test_long_context_is_split_into_overlapping_windows(tokenizer) -> None:  # type: ignore[no-untyped-def]
    encoded, _ = encode(tokenizer, LONG_CONTEXT, max_seq_len=64, doc_stride=16)
    assert len(encoded.windows) > 5
    assert all(len(w) <= 64 for w in encoded.windows)
    # consecutive windows share exactly doc_stride context tokens
    first_end = encoded.token_ends[0][encoded.windows[0].context_mask]
    second_start = encoded.token_starts[1][encoded.windows[1].context_mask]
    assert np.sum(second_start < first_end.max()) == 16


def test_best_span_is_chosen_across_windows(tokenizer) -> None:  # type: ignore[no-untyped-def]
    encoded, opts = encode(tokenizer, LONG_CONTEXT, max_seq_len=64, doc_stride=16, top_k=2)
    starts, ends = flat_logits(encoded)
    last = len(encoded.windows) - 1
    weak, strong = "número 0", "número 119"
    starts[0][token_of(encoded, 0, LONG_CONTEXT, weak)] = 3.0
    ends[0][last_token_of(encoded, 0, LONG_CONTEXT, weak)] = 3.0
    starts[last][token_of(encoded, last, LONG_CONTEXT, strong)] = HIGH
    ends[last][last_token_of(encoded, last, LONG_CONTEXT, strong)] = HIGH
    answers, _ = decoding.decode(encoded, LONG_CONTEXT, starts, ends, opts)
    assert [a.answer for a in answers] == [strong, weak]
    assert LONG_CONTEXT[answers[0].start : answers[0].end] == strong


def test_answer_across_a_window_boundary_comes_from_the_window_holding_it(tokenizer) -> None:  # type: ignore[no-untyped-def]
    """A span cut by the end of window 0 is whole in window 1 (the overlap), and found there."""
    encoded, opts = encode(tokenizer, LONG_CONTEXT, max_seq_len=64, doc_stride=16)
    ctx0 = np.flatnonzero(encoded.windows[0].context_mask)
    boundary_char = int(encoded.token_starts[0][ctx0[-1]])  # last token of window 0
    word_start = LONG_CONTEXT.rfind(" ", 0, boundary_char - 2) + 1
    phrase_end = LONG_CONTEXT.find(" ", boundary_char + 1)
    phrase_end = LONG_CONTEXT.find(" ", phrase_end + 1)
    phrase = LONG_CONTEXT[word_start:phrase_end]
    starts, ends = flat_logits(encoded)
    s1 = int(
        np.flatnonzero(encoded.windows[1].context_mask & (encoded.token_starts[1] == word_start))[0]
    )
    e1 = int(
        np.flatnonzero(encoded.windows[1].context_mask & (encoded.token_ends[1] == phrase_end))[-1]
    )
    starts[1][s1] = HIGH
    ends[1][e1] = HIGH
    (answer,), _ = decoding.decode(encoded, LONG_CONTEXT, starts, ends, opts)
    assert answer.answer == phrase
    assert (answer.start, answer.end) == (word_start, phrase_end)


def test_max_answer_len_limits_span_tokens(tokenizer) -> None:  # type: ignore[no-untyped-def]
    context = "Uno dos tres cuatro cinco seis siete ocho nueve diez."
    encoded, _ = encode(tokenizer, context)
    starts, ends = flat_logits(encoded)
    first = token_of(encoded, 0, context, "Uno")
    short_end = last_token_of(encoded, 0, context, "tres")
    long_end = last_token_of(encoded, 0, context, "diez")
    starts[0][first] = HIGH
    ends[0][long_end] = HIGH  # the best end, but too far for the short limit
    ends[0][short_end] = 5.0
    short_limit = QAOptions(max_answer_len=short_end - first + 1)
    (answer,), _ = decoding.decode(encoded, context, starts, ends, short_limit)
    assert answer.answer == "Uno dos tres"
    long_limit = QAOptions(max_answer_len=long_end - first + 1)
    (answer,), _ = decoding.decode(encoded, context, starts, ends, long_limit)
    assert answer.answer == "Uno dos tres cuatro cinco seis siete ocho nueve diez"


def test_top_k_removes_duplicates_from_overlapping_windows(tokenizer) -> None:  # type: ignore[no-untyped-def]
    encoded, opts = encode(tokenizer, LONG_CONTEXT, max_seq_len=64, doc_stride=32, top_k=3)
    starts, ends = flat_logits(encoded)
    # a word inside the overlap of windows 0 and 1, marked as the answer in both windows
    ctx1 = np.flatnonzero(encoded.windows[1].context_mask)
    word_starts = (int(encoded.token_starts[1][t]) for t in ctx1[2:])
    char = next(c for c in word_starts if LONG_CONTEXT[c - 1] == " ")
    word_end = LONG_CONTEXT.find(" ", char)
    for w in (0, 1):
        in_ctx = encoded.windows[w].context_mask
        starts[w][int(np.flatnonzero(in_ctx & (encoded.token_starts[w] == char))[0])] = HIGH
        ends[w][int(np.flatnonzero(in_ctx & (encoded.token_ends[w] == word_end))[-1])] = HIGH
    answers, _ = decoding.decode(encoded, LONG_CONTEXT, starts, ends, opts)
    spans = [(a.start, a.end) for a in answers]
    assert len(spans) == len(set(spans)) == 3
    assert (answers[0].start, answers[0].end) == (char, word_end)
    assert answers[0].score > 0.9


def test_stride_must_leave_room_for_the_context(tokenizer) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidInputError, match="doc_stride"):
        encode(tokenizer, "Hola.", max_seq_len=32, doc_stride=40)


def test_question_over_the_token_limit_is_refused(tokenizer) -> None:  # type: ignore[no-untyped-def]
    opts = QAOptions()
    with pytest.raises(InvalidInputError, match="Shorten the question"):
        features.encode(tokenizer, "palabra " * 100, "Hola.", opts, max_question_len=64)

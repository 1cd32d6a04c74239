"""Span decoding on hand-made logits, over real windows from the tiny model's tokenizer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from transformers import AutoTokenizer

from qa_api.inference import decoding, features
from qa_api.inference.errors import InvalidInputError
from qa_api.inference.types import QAOptions
from tests.served import served_options

HIGH, LOW = 10.0, -10.0
ACCENTED = (
    "¿Sabías que el pingüino emperador vive en la Antártida? ¡Sí! Allí también está el ñandú."
)


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir: Path):  # type: ignore[no-untyped-def]
    return AutoTokenizer.from_pretrained(tiny_model_dir)


def encode(tokenizer, context: str, **options: object) -> tuple[features.EncodedQuery, QAOptions]:  # type: ignore[no-untyped-def]
    opts = served_options(**options)  # type: ignore[arg-type]
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
    decoded = decoding.decode(encoded, ACCENTED, starts, ends, opts)
    answers = decoded.answers
    assert answers[0].answer == "Antártida"
    assert (answers[0].start, answers[0].end) == (45, 54)  # counted in characters, not bytes
    for answer in answers:
        assert ACCENTED[answer.start : answer.end] == answer.answer
    assert answers[0].score > 0.9
    assert decoded.no_answer_probability < 1e-6
    assert not decoded.no_answer


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
    (answer,) = decoding.decode(encoded, ACCENTED, starts, ends, opts).answers
    assert answer.answer == target
    assert first <= last


@pytest.mark.parametrize(
    ("cls_logit", "handle", "no_answer", "spans"),
    [
        (HIGH + 5, True, True, []),  # the null answer wins and takes the only top_k slot
        (LOW, True, False, ["Fontibre"]),
        (
            HIGH + 5,
            False,
            False,
            ["Fontibre"],
        ),  # without handle_impossible_answer it never competes
    ],
)
def test_null_answer_competes_with_the_spans(
    tokenizer, cls_logit: float, handle: bool, no_answer: bool, spans: list[str]
) -> None:  # type: ignore[no-untyped-def]
    context = "El río Ebro nace en Fontibre y desemboca en el Mediterráneo."
    encoded, opts = encode(tokenizer, context, handle_impossible_answer=handle)
    starts, ends = flat_logits(encoded)
    starts[0][token_of(encoded, 0, context, "Fontibre")] = HIGH
    ends[0][last_token_of(encoded, 0, context, "Fontibre")] = HIGH
    starts[0][0] = ends[0][0] = cls_logit
    decoded = decoding.decode(encoded, context, starts, ends, opts)
    assert [a.answer for a in decoded.answers] == spans
    assert decoded.no_answer is no_answer
    assert (decoded.no_answer_probability > 0.5) is (cls_logit > HIGH)  # reported either way


def test_null_answer_ranked_inside_top_k_takes_a_slot(tokenizer) -> None:  # type: ignore[no-untyped-def]
    """Between the best span and the next ones, the null answer is not shown but counts in top_k."""
    context = "El río Ebro nace en Fontibre y desemboca en el Mediterráneo."
    encoded, opts = encode(tokenizer, context, top_k=3)
    starts, ends = flat_logits(encoded)
    starts[0][token_of(encoded, 0, context, "Fontibre")] = HIGH
    ends[0][last_token_of(encoded, 0, context, "Fontibre")] = HIGH
    starts[0][0] = ends[0][0] = HIGH - 2
    decoded = decoding.decode(encoded, context, starts, ends, opts)
    (best, second) = decoded.answers
    assert best.answer == "Fontibre"
    assert best.score > decoded.no_answer_probability > second.score
    assert not decoded.no_answer


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
    answers = decoding.decode(encoded, LONG_CONTEXT, starts, ends, opts).answers
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
    (answer,) = decoding.decode(encoded, LONG_CONTEXT, starts, ends, opts).answers
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
    short_limit = served_options(max_answer_len=short_end - first + 1)
    (answer,) = decoding.decode(encoded, context, starts, ends, short_limit).answers
    assert answer.answer == "Uno dos tres"
    long_limit = served_options(max_answer_len=long_end - first + 1)
    (answer,) = decoding.decode(encoded, context, starts, ends, long_limit).answers
    assert answer.answer == "Uno dos tres cuatro cinco seis siete ocho nueve diez"


def test_same_answer_from_overlapping_windows_is_merged_by_summing(tokenizer) -> None:  # type: ignore[no-untyped-def]
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
    answers = decoding.decode(encoded, LONG_CONTEXT, starts, ends, opts).answers
    texts = [a.answer.lower() for a in answers]
    assert len(texts) == len(set(texts)) == 3
    assert (answers[0].start, answers[0].end) == (char, word_end)
    assert answers[0].score > 1.9  # about 1 from each window


def test_spans_with_the_same_text_merge_and_their_scores_add_up(tokenizer) -> None:  # type: ignore[no-untyped-def]
    """The issue's example: token spans ending inside one word add up and beat a longer span."""
    context = "Llegó el mánager nuevo del Real Madrid ayer por la tarde."
    encoded, opts = encode(tokenizer, context)
    first, last = (
        token_of(encoded, 0, context, "mánager"),
        last_token_of(encoded, 0, context, "mánager"),
    )
    assert last > first, "the test needs a word made of several tokens"
    starts, ends = flat_logits(encoded)
    starts[0][first] = HIGH
    ends[0][first : last + 1] = 2.0  # each sub-token end alone is weaker than "nuevo"...
    ends[0][last_token_of(encoded, 0, context, "nuevo")] = 2.0 + np.log(last - first + 0.5)
    (answer,) = decoding.decode(encoded, context, starts, ends, opts).answers
    assert answer.answer == "mánager"  # ...but together they win
    assert (answer.start, answer.end) == (9, 16)


def test_merging_ignores_case_and_keeps_the_first_offsets(tokenizer) -> None:  # type: ignore[no-untyped-def]
    context = "Madrid es la capital. La capital de España es MADRID desde 1561."
    encoded, opts = encode(tokenizer, context, top_k=2)
    starts, ends = flat_logits(encoded)
    second = context.index("MADRID")
    starts[0][token_of(encoded, 0, context, "MADRID")] = HIGH  # the stronger one, seen second
    ends[0][last_token_of(encoded, 0, context, "MADRID")] = HIGH
    starts[0][token_of(encoded, 0, context, "Madrid")] = HIGH - 1
    ends[0][last_token_of(encoded, 0, context, "Madrid")] = HIGH - 1
    best = decoding.decode(encoded, context, starts, ends, opts).answers[0]
    assert (best.answer, best.start) == ("MADRID", second)  # ranked first in the window
    strong = 1 / (1 + np.exp(-1.0))  # softmax share of HIGH against HIGH - 1
    assert best.score == pytest.approx(strong**2 + (1 - strong) ** 2, rel=1e-4)


def test_top_k_fills_up_on_a_context_of_few_long_words(tokenizer) -> None:  # type: ignore[no-untyped-def]
    """top_k * 2 + 10 token spans per window leave enough distinct answers after word alignment.

    The three best token spans all start in the first word; only a wider cut also finds the second.
    """
    context = "Extraordinariamente desafortunadamente"
    first_word, second_word = context.split()
    encoded, opts = encode(tokenizer, context, top_k=3, handle_impossible_answer=False)
    tokens = int(encoded.windows[0].context_mask.sum())
    # every span from the first word's start, then the second word's, fit in 3 * 2 + 10
    assert 3 < tokens < decoding.candidates_per_window(3), tokens
    starts, ends = flat_logits(encoded)
    in_context = encoded.windows[0].context_mask
    ends[0][in_context] = 0.0
    starts[0][token_of(encoded, 0, context, first_word)] = HIGH
    starts[0][token_of(encoded, 0, context, second_word)] = HIGH - 3
    answers = decoding.decode(encoded, context, starts, ends, opts).answers
    assert [a.answer for a in answers] == [context, first_word, second_word]


def test_impossible_spans_never_come_back(tokenizer) -> None:  # type: ignore[no-untyped-def]
    """With fewer real spans than candidates, the pipeline pads with score-0 spans; we do not."""
    context = "Sí."
    encoded, opts = encode(tokenizer, context, top_k=10)
    starts, ends = flat_logits(encoded)
    decoded = decoding.decode(encoded, context, starts, ends, opts)
    assert decoded.answers
    for answer in decoded.answers:
        assert answer.score > 0
        assert answer.start < answer.end
        assert context[answer.start : answer.end] == answer.answer


def test_stride_must_leave_room_for_the_context(tokenizer) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidInputError, match="doc_stride"):
        encode(tokenizer, "Hola.", max_seq_len=32, doc_stride=40)


def test_question_over_the_token_limit_is_refused(tokenizer) -> None:  # type: ignore[no-untyped-def]
    opts = served_options()
    with pytest.raises(InvalidInputError, match="Shorten the question"):
        features.encode(tokenizer, "palabra " * 100, "Hola.", opts, max_question_len=64)


def test_a_word_cut_by_a_window_edge_stays_cut_in_that_window(tokenizer) -> None:  # type: ignore[no-untyped-def]
    """As the pipeline's `word_to_chars` on the window's encoding: only the word's tokens there."""
    context = " ".join(["Xzqwykjvb"] * 60)  # rare letters: a word of many tokens
    encoded, opts = encode(tokenizer, context, max_seq_len=40, doc_stride=10)
    for w, window in enumerate(encoded.windows[1:], start=1):
        first = int(np.flatnonzero(window.context_mask)[0])
        token_start = int(encoded.token_starts[w][first])
        if context[token_start - 1] != " ":  # this window starts inside a word
            break
    else:
        pytest.fail("no window starts inside a word")
    starts, ends = flat_logits(encoded)
    starts[w][first] = ends[w][first] = HIGH
    (answer,) = decoding.decode(encoded, context, starts, ends, opts).answers
    word_end = context.find(" ", token_start)
    assert (answer.start, answer.end) == (token_start, word_end)
    assert answer.answer == context[token_start:word_end] != "Xzqwykjvb"

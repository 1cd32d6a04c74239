"""Passage preselection and the tokenized-context cache, with the tiny model's real tokenizer.

Windows assembled from a context tokenized once must equal `features.encode`'s, array for array;
answers decoded from preselected windows must keep exact offsets in the whole document.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from transformers import AutoTokenizer

from qa_api.inference import contexts, decoding, features, passages
from qa_api.inference.errors import InvalidInputError
from qa_api.inference.types import QAOptions
from tests.paths import SQUAD_V1_SAMPLE
from tests.served import served_options

HIGH, LOW = 10.0, -10.0


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir: Path):  # type: ignore[no-untyped-def]
    return AutoTokenizer.from_pretrained(tiny_model_dir)


@pytest.fixture(scope="module")
def article() -> tuple[str, list[dict[str, object]]]:
    """The first SQuAD-es article's paragraphs joined in order, with its questions re-anchored."""
    data = json.loads(SQUAD_V1_SAMPLE.read_text(encoding="utf-8"))["data"][0]
    text, qas = "", []
    for paragraph in data["paragraphs"]:
        offset = len(text) + (2 if text else 0)
        text = f"{text}\n\n{paragraph['context']}" if text else paragraph["context"]
        for qa in paragraph["qas"]:
            answer = qa["answers"][0]
            if not answer["text"]:
                continue
            qas.append(
                {
                    "question": qa["question"],
                    "start": offset + answer["answer_start"],
                    "text": answer["text"],
                }
            )
    assert all(text[int(qa["start"]) :].startswith(str(qa["text"])) for qa in qas)  # type: ignore[call-overload]
    return text, qas


def cached_encode(
    tokenizer, question: str, context: str, options: QAOptions
) -> features.EncodedQuery:  # type: ignore[no-untyped-def]
    ctx = contexts.tokenize_context(tokenizer, context)
    q = contexts.tokenize_question(tokenizer, question)
    return contexts.encode_windows(tokenizer, q, ctx, contexts.layout(q, ctx, options, 64))


def assert_same(a: features.EncodedQuery, b: features.EncodedQuery) -> None:
    assert len(a.windows) == len(b.windows)
    for i, (wa, wb) in enumerate(zip(a.windows, b.windows, strict=True)):
        for name in ("input_ids", "token_type_ids", "context_mask", "word_ids", "softmax_mask"):
            x, y = getattr(wa, name), getattr(wb, name)
            assert x.dtype == y.dtype, name
            np.testing.assert_array_equal(x, y, err_msg=name)
        for name in ("token_starts", "token_ends", "word_starts", "word_ends"):
            x, y = getattr(a, name)[i], getattr(b, name)[i]
            assert x.dtype == y.dtype, name
            np.testing.assert_array_equal(x, y, err_msg=name)


ODD_TEXTS = [
    "Corto.",
    "  El  río\tEbro   nace en\n\nFontibre.  ",
    "¿Sabías que el pingüino emperador vive en la Antártida? ¡Sí! Allí también está el ñandú.",
    "Precio: 1.234,56 € (IVA incl.) — véase §3; e-mail: ana@ejemplo.es 🙂 fin",
    "palabra" + "\u200b" * 3 + "oculta y\u00a0espacio duro " + "x" * 300,
]


@pytest.mark.parametrize("text", ODD_TEXTS)
@pytest.mark.parametrize(("max_seq_len", "doc_stride"), [(384, 128), (64, 16), (48, 30)])
def test_windows_from_cached_tokens_equal_features_encode(
    tokenizer, text: str, max_seq_len: int, doc_stride: int
) -> None:  # type: ignore[no-untyped-def]
    options = served_options(max_seq_len=max_seq_len, doc_stride=doc_stride)
    question = "¿Dónde vive el pingüino emperador?"
    assert_same(
        cached_encode(tokenizer, question, text, options),
        features.encode(tokenizer, question, text, options, 64),
    )


@pytest.mark.parametrize(("max_seq_len", "doc_stride"), [(384, 128), (128, 32), (100, 60)])
def test_long_document_windows_equal_features_encode(
    tokenizer, article, max_seq_len: int, doc_stride: int
) -> None:  # type: ignore[no-untyped-def]
    text, qas = article
    options = served_options(max_seq_len=max_seq_len, doc_stride=doc_stride)
    for qa in qas[:3]:
        expected = features.encode(tokenizer, str(qa["question"]), text, options, 64)
        assert len(expected.windows) > 3
        assert_same(cached_encode(tokenizer, str(qa["question"]), text, options), expected)


def test_cached_path_refuses_what_features_refuses(tokenizer) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidInputError, match="no readable text"):
        contexts.tokenize_context(tokenizer, " \n\t ")
    ctx = contexts.tokenize_context(tokenizer, "Un texto corto.")
    q = contexts.tokenize_question(tokenizer, "¿Qué? " * 10)
    with pytest.raises(InvalidInputError, match="doc_stride"):
        contexts.layout(q, ctx, served_options(max_seq_len=40, doc_stride=20), 64)
    with pytest.raises(InvalidInputError, match="limit is 5 tokens"):
        contexts.layout(q, ctx, served_options(), 5)


def test_window_ranges_follow_the_overflow_rule() -> None:
    assert contexts.window_ranges(5, room=10, stride=3) == [(0, 5)]
    assert contexts.window_ranges(10, room=10, stride=3) == [(0, 10)]
    assert contexts.window_ranges(11, room=10, stride=3) == [(0, 10), (7, 11)]
    assert contexts.window_ranges(24, room=10, stride=3) == [(0, 10), (7, 17), (14, 24)]


def test_answers_from_preselected_windows_keep_document_offsets(tokenizer, article) -> None:  # type: ignore[no-untyped-def]
    text, qas = article
    options = served_options(max_seq_len=128, doc_stride=32, top_k=1)
    qa = qas[-1]  # late in the document: far from window 0
    ctx = contexts.tokenize_context(tokenizer, text)
    q = contexts.tokenize_question(tokenizer, str(qa["question"]))
    ranges = contexts.layout(q, ctx, options, 64)
    start = int(qa["start"])  # type: ignore[call-overload]
    end = start + len(str(qa["text"]))
    holding = next(
        i for i, (a, b) in enumerate(contexts.char_spans(ctx, ranges)) if a <= start and end <= b
    )
    chosen = [0, holding]
    encoded = contexts.encode_windows(tokenizer, q, ctx, [ranges[i] for i in chosen])
    starts = [np.full(len(w), LOW, dtype=np.float32) for w in encoded.windows]
    ends = [np.full(len(w), LOW, dtype=np.float32) for w in encoded.windows]
    tok_starts, tok_ends, mask = (
        encoded.token_starts[1],
        encoded.token_ends[1],
        encoded.windows[1].context_mask,
    )
    starts[1][np.flatnonzero(mask & (tok_starts == start))[0]] = HIGH
    ends[1][np.flatnonzero(mask & (tok_ends == end))[-1]] = HIGH

    answers = decoding.decode(encoded, text, starts, ends, options).answers

    assert (answers[0].start, answers[0].end, answers[0].answer) == (start, end, qa["text"])


def crafted_document(
    tokenizer, needle: str, position: int, paragraphs: int = 30
) -> tuple[str, list[tuple[int, int]], int]:  # type: ignore[no-untyped-def]
    """Filler paragraphs on other topics with `needle` as paragraph `position`; the windows'
    character spans (tiny windows), and the window that holds the needle whole."""
    topics = [
        "la cosecha de trigo en Castilla",
        "los puertos del Cantábrico",
        "la música barroca",
        "el comercio de la lana",
        "las vías romanas",
    ]
    filler = [
        f"Párrafo {i} sobre {topics[i % len(topics)]}: sus fechas, lugares y personas principales se describen aquí con detalle."
        for i in range(paragraphs)
    ]
    filler[position] = needle
    text = "\n\n".join(filler)
    ctx = contexts.tokenize_context(tokenizer, text)
    q = contexts.tokenize_question(tokenizer, "¿Dónde?")
    spans = contexts.char_spans(
        ctx, contexts.layout(q, ctx, served_options(max_seq_len=64, doc_stride=36), 64)
    )
    lo = text.index(needle)
    holding = next(i for i, (a, b) in enumerate(spans) if a <= lo and lo + len(needle) <= b)
    return text, spans, holding


@pytest.mark.parametrize("position", [0, 13, 29])
def test_the_window_holding_the_answer_words_ranks_first(tokenizer, position: int) -> None:  # type: ignore[no-untyped-def]
    needle = "El pingüino emperador bucea en la Antártida hasta quinientos metros de profundidad."
    text, spans, holding = crafted_document(tokenizer, needle, position)
    assert len(spans) > 10

    ranked = passages.rank_windows(
        passages.analyse(text),
        spans,
        "¿Hasta qué profundidad bucean los pingüinos emperadores?",
        top_n=3,
    )

    assert [r.rank for r in ranked] == [1, 2, 3]
    assert ranked[0].index == holding
    assert (ranked[0].start, ranked[0].end) == spans[holding]
    assert ranked[0].score > ranked[1].score >= ranked[2].score


def test_stemming_matches_inflected_forms_and_ignores_stop_words() -> None:
    terms = passages.analyse("Las canciones del cantante. El cantante cantaba canciones tristes.")
    assert set(terms.vocab) == {"cancion", "cantant", "cant", "trist"}
    assert terms.starts.tolist() == [4, 18, 31, 40, 48, 58]


def test_a_question_without_known_words_keeps_text_order() -> None:
    text = "uno dos tres cuatro cinco seis siete ocho"
    spans = [(0, 12), (8, 25), (20, 40)]
    ranked = passages.rank_windows(passages.analyse(text), spans, "¿Qué es xyzzy?", top_n=2)
    assert [(r.index, r.rank, r.score) for r in ranked] == [(0, 1, 0.0), (1, 2, 0.0)]
    assert passages.rank_windows(passages.analyse(text), spans, "tres", top_n=10)[0].index == 0
    assert passages.rank_windows(passages.analyse(text), [], "tres", top_n=3) == []


def test_cache_hits_on_the_same_text_and_model_only(tokenizer) -> None:  # type: ignore[no-untyped-def]
    cache = contexts.ContextCache(max_bytes=10**8)
    built: list[str] = []

    def build(text: str) -> contexts.ContextTokens:
        built.append(text)
        return contexts.tokenize_context(tokenizer, text)

    first = cache.get("beto", "Un texto sobre Cervantes.", build)
    again = cache.get("beto", "Un texto sobre Cervantes.", build)
    other_model = cache.get("otro", "Un texto sobre Cervantes.", build)
    other_text = cache.get("beto", "Un texto sobre Quevedo.", build)

    assert again is first
    assert other_model is not first
    assert other_text is not first
    assert (cache.hits, cache.misses, len(cache), len(built)) == (1, 3, 3, 3)


def test_cache_memory_stays_within_its_budget(tokenizer) -> None:  # type: ignore[no-untyped-def]
    texts = [f"Documento {i}: " + "el río Ebro nace en Fontibre. " * 40 for i in range(12)]
    size = contexts.tokenize_context(tokenizer, texts[0]).nbytes
    cache = contexts.ContextCache(max_bytes=int(size * 3.5))

    for text in texts:
        cache.get("beto", text, lambda t: contexts.tokenize_context(tokenizer, t))

    assert len(cache) == 3
    assert cache.nbytes <= cache.max_bytes
    cache.get("beto", texts[-1], lambda t: contexts.tokenize_context(tokenizer, t))
    assert cache.hits == 1  # the most recent ones stay
    cache.get("beto", texts[0], lambda t: contexts.tokenize_context(tokenizer, t))
    assert cache.misses == 13  # the oldest went

    huge = contexts.ContextCache(max_bytes=size // 2)
    huge.get("beto", texts[0], lambda t: contexts.tokenize_context(tokenizer, t))
    assert (len(huge), huge.nbytes) == (0, 0)


def test_a_longer_document_reads_its_share_of_windows(tokenizer, article) -> None:  # type: ignore[no-untyped-def]
    text, qas = article
    ctx = contexts.tokenize_context(tokenizer, text)
    question = str(qas[0]["question"])
    options = served_options(max_seq_len=64, doc_stride=16)
    plain = contexts.encode_best(tokenizer, question, ctx, options, 64, top_n=2)
    shared = contexts.encode_best(
        tokenizer, question, ctx, replace(options, bm25_share=0.1), 64, top_n=2
    )

    assert plain.selection is not None
    assert shared.selection is not None
    total = plain.selection.num_windows
    assert total > 40
    assert len(plain.windows) == len(plain.selection.read) == 2
    assert len(shared.windows) == len(shared.selection.read) == -(-total // 10)
    assert shared.selection.read[:2] == plain.selection.read  # the same ranking, read further
    starts = [
        int(s[w.context_mask][0]) for s, w in zip(shared.token_starts, shared.windows, strict=True)
    ]
    assert starts == sorted(starts)  # read in text order

"""A tokenizer that lowercases and strips accents: offsets stay exact, answers keep the original text.

The hub's tokenizer_config for the default model sets `do_lower_case`, so the served tokenizer may
normalise the text it reads; the answers must still be cut from the context as the user wrote it.
"""

from __future__ import annotations

import unicodedata
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from transformers import AutoTokenizer

from qa_api.inference import decoding, features
from qa_api.inference.backends import load_backend
from qa_api.inference.types import QAOptions
from qa_api.testing.random_model import build_random_qa_model
from tests.paths import DATA_DIR
from tests.served import served_options

CONTEXT = (
    "¿Cuántos años tenía Ñusta cuando llegó al PERÚ? ¡Según él, veintiún años! "
    "Müller lo confirmó en Córdoba, junto al río Guadalquivir, en otoño."
)
WORDS = ["Cuántos", "años", "Ñusta", "PERÚ", "Según", "él", "veintiún", "Müller", "Córdoba"]


def folded(text: str) -> str:
    """What the tokenizer reads: lowercase, accents stripped."""
    decomposed = unicodedata.normalize("NFD", text.lower())
    return "".join(c for c in decomposed if unicodedata.category(c) != "Mn")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("models") / "tiny-lowercase"
    return build_random_qa_model(out, size="tiny", data_dir=DATA_DIR, lowercase=True)


@pytest.fixture(scope="module")
def tokenizer(model_dir: Path) -> Any:
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    assert tokenizer("Ñandú PERÚ")["input_ids"] == tokenizer("nandu peru")["input_ids"]
    return tokenizer


def encode(tokenizer: Any, **options: Any) -> tuple[features.EncodedQuery, QAOptions]:
    opts = served_options(**options)
    return features.encode(tokenizer, "¿Quién?", CONTEXT, opts, max_question_len=64), opts


def test_offsets_point_at_the_original_characters(tokenizer: Any) -> None:
    encoded, _ = encode(tokenizer)
    window = encoded.windows[0]
    pieces = tokenizer.convert_ids_to_tokens(window.input_ids.tolist())
    checked = 0
    for token in np.flatnonzero(window.context_mask):
        start, end = int(encoded.token_starts[0][token]), int(encoded.token_ends[0][token])
        if pieces[token] != tokenizer.unk_token:
            assert folded(CONTEXT[start:end]) == pieces[token].removeprefix("##"), token
            checked += 1
    assert checked == int(window.context_mask.sum())  # no [UNK]: every token was checked


@pytest.mark.parametrize("word", WORDS)
def test_answers_come_back_in_the_contexts_spelling(tokenizer: Any, word: str) -> None:
    encoded, opts = encode(tokenizer)
    mask, starts_at, ends_at = (
        encoded.windows[0].context_mask,
        encoded.token_starts[0],
        encoded.token_ends[0],
    )
    char = CONTEXT.index(word)
    first = int(np.flatnonzero(mask & (starts_at == char))[0])
    last = int(np.flatnonzero(mask & (ends_at == char + len(word)))[-1])
    start_logits = np.full(len(encoded.windows[0]), -10.0, dtype=np.float32)
    end_logits = start_logits.copy()
    start_logits[first] = end_logits[last] = 10.0
    (answer,) = decoding.decode(encoded, CONTEXT, [start_logits], [end_logits], opts).answers
    assert (answer.answer, answer.start, answer.end) == (word, char, char + len(word))


def test_end_to_end_answers_are_slices_of_the_context(tokenizer: Any, model_dir: Path) -> None:
    """The lowercasing model's own logits: every answer is cut from the context as written."""
    encoded, opts = encode(
        tokenizer, top_k=10, max_seq_len=32, doc_stride=8, handle_impossible_answer=False
    )
    assert len(encoded.windows) > 1
    backend = load_backend(model_dir, "torch-fp32", "cpu", 1, Path("/nonexistent"))
    starts, ends = [], []
    for window in encoded.windows:
        ids = window.input_ids[None, :]
        start, end = backend.forward(ids, np.ones_like(ids), window.token_type_ids[None, :])
        starts.append(start[0])
        ends.append(end[0])
    decoded = decoding.decode(encoded, CONTEXT, starts, ends, opts)
    assert len(decoded.answers) == 10
    for answer in decoded.answers:
        assert CONTEXT[answer.start : answer.end] == answer.answer
        assert answer.answer.strip() == answer.answer != ""

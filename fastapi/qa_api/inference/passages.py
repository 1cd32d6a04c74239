"""Passage preselection: rank a context's windows against the question with BM25.

Scoring is bm25s (Lucene BM25, k1 1.5, b 0.75); the text analysis is Spanish: lowercase words of
two or more letters, NLTK's Spanish stop words (as bm25s ships them) plus the interrogatives a
question starts with, then the Snowball Spanish stemmer (PyStemmer). A context is analysed once
(`analyse`, cacheable: it depends on the text only); each question then scores the windows of its
own layout (`rank_windows`), since a longer question leaves less room per window.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import bm25s
import numpy as np
import Stemmer
from bm25s.stopwords import STOPWORDS_SPANISH

from qa_api.inference.types import ReadWindow

WORD = re.compile(r"(?u)\b\w\w+\b")  # bm25s' own default token pattern
# Accented interrogatives carry no topic; unaccented, most of them are stop words already.
QUESTION_WORDS = frozenset(
    (
        *("qué", "quién", "quiénes", "cuál", "cuáles", "cuándo", "dónde", "adónde", "cómo"),
        *("cuánto", "cuánta", "cuántos", "cuántas"),
    )
)
STOPWORDS = frozenset(STOPWORDS_SPANISH) | QUESTION_WORDS
_STEMMER = Stemmer.Stemmer("spanish")


@dataclass(frozen=True, slots=True)
class Terms:
    """A text's BM25 terms: each kept word's character start and stem id, in text order."""

    starts: np.ndarray  # (n,) int64, ascending
    ids: np.ndarray  # (n,) int32, index into vocab
    vocab: dict[str, int]  # stem -> id

    @property
    def nbytes(self) -> int:
        """Approximate memory held (arrays plus the vocabulary's strings and dict slots)."""
        return self.starts.nbytes + self.ids.nbytes + 100 * len(self.vocab)


def _stems(text: str) -> tuple[list[int], list[str]]:
    """Character starts and stems of the text's words that are not stop words."""
    starts: list[int] = []
    words: list[str] = []
    for match in WORD.finditer(text.lower()):
        word = match.group()
        if word not in STOPWORDS:
            starts.append(match.start())
            words.append(word)
    return starts, _STEMMER.stemWords(words)


def analyse(text: str) -> Terms:
    """The text's terms, for ranking any windows cut from it."""
    starts, stems = _stems(text)
    vocab: dict[str, int] = {}
    ids = np.fromiter((vocab.setdefault(s, len(vocab)) for s in stems), np.int32, len(stems))
    return Terms(np.asarray(starts, dtype=np.int64), ids, vocab)


def rank_windows(
    terms: Terms, spans: Sequence[tuple[int, int]], question: str, top_n: int
) -> list[ReadWindow]:
    """The `top_n` windows most similar to the question, best first.

    `spans` are the windows' character spans in the text `terms` was built from. Ties (a question
    none of whose words occur, for one) keep text order, so the ranking is deterministic.
    """
    if not spans:
        return []
    bounds = np.asarray(spans, dtype=np.int64)
    first = np.searchsorted(terms.starts, bounds[:, 0], side="left")
    last = np.searchsorted(terms.starts, bounds[:, 1], side="left")
    scores = np.zeros(len(spans), dtype=np.float64)
    query = [terms.vocab[s] for s in _stems(question)[1] if s in terms.vocab]
    if query and len(terms.ids):
        corpus = [terms.ids[a:b].tolist() for a, b in zip(first, last, strict=True)]
        index = bm25s.BM25()
        # A copy: bm25s adds its empty-document token to the vocabulary it is given.
        index.index((corpus, dict(terms.vocab)), show_progress=False)
        scores = index.get_scores(query).astype(np.float64)
    order = np.argsort(-scores, kind="stable")[: max(0, top_n)]
    return [
        ReadWindow(int(i), rank, float(scores[i]), int(bounds[i, 0]), int(bounds[i, 1]))
        for rank, i in enumerate(order, start=1)
    ]

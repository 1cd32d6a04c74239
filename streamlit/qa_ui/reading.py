"""How much of a text the UI asks the model to read: every window, or the passages BM25 ranks
first (the API's `passages` option), decided from the text's length and the served limits."""

from __future__ import annotations

import math
from typing import Literal

from qa_ui.client import ModelLimits

Mode = Literal["all", "bm25"]

# Above this many windows a full read takes seconds on a CPU (about 0.25 s a window), while the
# 8 passages most similar to the question hold the answer 96-98% of the time (bench/RESULTS.md).
BM25_ABOVE_WINDOWS = 16
# Spanish text through a BETO-like WordPiece vocabulary (measured on SQuAD-es: 5.0).
CHARS_PER_TOKEN = 4.5
QUESTION_TOKENS = 16  # a typical question, with [CLS] and the two [SEP]s


def estimated_windows(chars: int, limits: ModelLimits) -> int:
    """About how many windows the backend cuts a text of `chars` characters into."""
    tokens = math.ceil(chars / CHARS_PER_TOKEN)
    room = limits.max_seq_len - QUESTION_TOKENS
    step = max(1, room - limits.doc_stride)
    return 1 if tokens <= room else 1 + math.ceil((tokens - room) / step)


def mode_for(chars: int, limits: ModelLimits, read_all: bool = False) -> Mode:
    """`bm25` for a long text (or one too long to read whole), unless the user asked to read all
    of a text the backend can read whole."""
    if not can_read_all(chars, limits):
        return "bm25"
    if read_all:
        return "all"
    return "bm25" if estimated_windows(chars, limits) > BM25_ABOVE_WINDOWS else "all"


def can_read_all(chars: int, limits: ModelLimits) -> bool:
    """Whether the backend reads a text this long whole (mode `all`)."""
    return chars <= limits.max_context_chars

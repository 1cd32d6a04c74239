"""HTML fragments for results. Every piece of user or model text goes through html.escape."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from html import escape

from qa_ui.client import Answer

# Best answer first; distinct hues that keep dark text readable.
ANSWER_COLOURS: tuple[str, ...] = (
    "#ffd54f",  # amber
    "#81d4fa",  # light blue
    "#a5d6a7",  # green
    "#f48fb1",  # pink
    "#ce93d8",  # purple
    "#ffab91",  # orange
    "#80cbc4",  # teal
    "#e6ee9c",  # lime
    "#bcaaa4",  # brown
    "#b0bec5",  # grey
)

CONTEXT_STYLE = (
    "white-space: pre-wrap; line-height: 1.7; padding: 0.9rem 1.1rem; border-radius: 0.5rem; "
    "border: 1px solid rgba(128,128,128,0.35); font-size: 1rem; max-height: 26rem; "
    "overflow-y: auto;"
)


def colour(rank: int) -> str:
    return ANSWER_COLOURS[rank % len(ANSWER_COLOURS)]


def highlight_context(context: str, answers: Sequence[Answer], score_label: str = "{score}") -> str:
    """The context as escaped HTML with each answer's [start, end) span marked in its colour.

    Spans are placed by the API's character offsets only. Where spans overlap, the better
    ranked answer gives the colour and the tooltip lists every answer covering that text.
    """
    spans = [(rank, a) for rank, a in enumerate(answers) if 0 <= a.start < a.end <= len(context)]
    cuts = sorted({0, len(context)} | {a.start for _, a in spans} | {a.end for _, a in spans})
    pieces: list[str] = []
    for left, right in itertools.pairwise(cuts):
        text = escape(context[left:right])
        covering = [(rank, a) for rank, a in spans if a.start <= left and right <= a.end]
        if not covering:
            pieces.append(text)
            continue
        rank = covering[0][0]
        title = " · ".join(
            f"#{r + 1} " + score_label.format(score=f"{a.score:.3f}") for r, a in covering
        )
        pieces.append(
            f'<mark class="qa-answer qa-answer-{rank}" data-rank="{rank + 1}" '
            f'title="{escape(title)}" style="background:{colour(rank)}; color:#1a1a1a; '
            f'padding:0.1em 0.15em; border-radius:0.25em;">{text}</mark>'
        )
    return f'<div class="qa-context" style="{CONTEXT_STYLE}">{"".join(pieces)}</div>'


def answer_card(answer: str, confidence: str, score: float) -> str:
    """The best answer, large, with its confidence bar."""
    width = max(0.0, min(1.0, score)) * 100
    return (
        '<div class="qa-best" style="border-left: 0.45rem solid '
        f"{colour(0)}; padding: 0.8rem 1.1rem; border-radius: 0.5rem; "
        'background: rgba(255,213,79,0.12); margin-bottom: 0.8rem;">'
        '<div class="qa-best-text" style="font-size: 1.6rem; font-weight: 600;">'
        f"{escape(answer)}</div>"
        f'<div style="margin-top: 0.4rem; opacity: 0.8;">{escape(confidence)}</div>'
        '<div style="height: 0.4rem; background: rgba(128,128,128,0.2); border-radius: 0.2rem; '
        f'margin-top: 0.3rem;"><div style="width: {width:.1f}%; height: 100%; '
        f'background: {colour(0)}; border-radius: 0.2rem;"></div></div></div>'
    )


def no_answer_card(title: str, body: str, probability: str | None) -> str:
    extra = (
        f'<div style="margin-top: 0.4rem; opacity: 0.8;">{escape(probability)}</div>'
        if probability
        else ""
    )
    return (
        '<div class="qa-no-answer" style="border-left: 0.45rem solid #90a4ae; '
        "padding: 0.8rem 1.1rem; border-radius: 0.5rem; background: rgba(144,164,174,0.15); "
        'margin-bottom: 0.8rem;">'
        f'<div style="font-size: 1.4rem; font-weight: 600;">🤷 {escape(title)}</div>'
        f"<div>{escape(body)}</div>{extra}</div>"
    )


def alternatives_list(answers: Sequence[Answer], labels: Sequence[str]) -> str:
    """Ranked answers with their colour swatch and score label."""
    rows = []
    for rank, (a, label) in enumerate(zip(answers, labels, strict=True)):
        rows.append(
            f'<li class="qa-alt" style="margin: 0.25rem 0; list-style: none;">'
            f'<span style="display:inline-block; width:0.9em; height:0.9em; border-radius:0.2em; '
            f'background:{colour(rank)}; margin-right:0.5em; vertical-align:-0.1em;"></span>'
            f'<b>{escape(a.answer)}</b> <span style="opacity:0.75">— {escape(label)}</span></li>'
        )
    return f'<ul style="padding-left: 0;">{"".join(rows)}</ul>'

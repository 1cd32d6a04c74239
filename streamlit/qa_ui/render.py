"""HTML fragments for results. Every piece of user or model text goes through html.escape."""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from html import escape

from qa_ui.client import Answer
from qa_ui.texts import Lang

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


def highlight_context(context: str, answers: Sequence[Answer]) -> str:
    """The context as escaped HTML with each answer's [start, end) span marked in its colour."""
    return _context_box(_marked_text(context, answers))


def _context_box(inner_html: str, css_class: str = "qa-context") -> str:
    return f'<div class="{css_class}" style="{CONTEXT_STYLE}">{inner_html}</div>'


def _marked_text(context: str, answers: Sequence[Answer]) -> str:
    """Escaped text with the answers marked.

    Spans are placed by the API's character offsets only. Where spans overlap, the better
    ranked answer gives the mark its colour, the text it shares with a lower ranked one is
    underlined in that one's colour, and the tooltip lists every answer in the mark.
    """
    spans = [(rank, a) for rank, a in enumerate(answers) if 0 <= a.start < a.end <= len(context)]
    cuts = sorted({0, len(context)} | {a.start for _, a in spans} | {a.end for _, a in spans})
    segments = [
        (left, right, [rank for rank, a in spans if a.start <= left and right <= a.end])
        for left, right in itertools.pairwise(cuts)
    ]
    pieces: list[str] = []
    i = 0
    while i < len(segments):
        left, right, covering = segments[i]
        if not covering:
            pieces.append(escape(context[left:right]))
            i += 1
            continue
        top = covering[0]
        inner: list[str] = []
        ranks: set[int] = set()
        while i < len(segments) and segments[i][2] and segments[i][2][0] == top:
            left, right, covering = segments[i]
            ranks.update(covering)
            text = escape(context[left:right])
            if len(covering) > 1:
                text = (
                    f'<span class="qa-nested" data-rank="{covering[1] + 1}" '
                    f'style="box-shadow: inset 0 -0.3em 0 {colour(covering[1])};">{text}</span>'
                )
            inner.append(text)
            i += 1
        title = " · ".join(f"#{r + 1} {answers[r].score:.3f}" for r in sorted(ranks))
        pieces.append(
            f'<mark class="qa-answer qa-answer-{top}" data-rank="{top + 1}" '
            f'title="{escape(title)}" style="background:{colour(top)}; color:#1a1a1a; '
            f'padding:0.1em 0.15em; border-radius:0.25em;">{"".join(inner)}</mark>'
        )
    return "".join(pieces)


# A sentence ends at . ! ? … before a space, or at a blank line: a single line break is often
# just where a PDF's line wrapped.
SENTENCE_END = re.compile(r"[.!?…](?=\s)|\n[ \t]*\n")


def snippet_span(context: str, answer: Answer, radius: int = 160) -> tuple[int, int]:
    """The sentence (or paragraph) holding the answer, at most `radius` characters each side,
    a cut made at a space where one is near."""
    ends = [
        m.end() for m in SENTENCE_END.finditer(context, max(0, answer.start - radius), answer.start)
    ]
    left = ends[-1] if ends else max(0, answer.start - radius)
    after = SENTENCE_END.search(context, answer.end, min(len(context), answer.end + radius))
    right = after.end() if after else min(len(context), answer.end + radius)
    if left > 0 and not ends:
        space = context.find(" ", left, answer.start)
        left = space + 1 if space >= 0 else left
    if right < len(context) and after is None:
        space = context.rfind(" ", answer.end, right)
        right = space if space >= 0 else right
    while left < answer.start and context[left].isspace():
        left += 1
    while right > answer.end and context[right - 1].isspace():
        right -= 1
    return left, right


def snippet(
    context: str,
    answer: Answer,
    radius: int = 160,
    page_label: str = "",
    css_class: str = "qa-context",
) -> str:
    """The answer in its sentence, marked at its offsets, under an optional page label."""
    left, right = snippet_span(context, answer, radius)
    shifted = Answer(answer.answer, answer.score, answer.start - left, answer.end - left)
    prefix = "…" if left > 0 else ""
    suffix = "…" if right < len(context) else ""
    page = (
        f'<div class="qa-page" style="font-size:0.85rem; opacity:0.75; margin-bottom:0.3rem;">'
        f"{escape(page_label)}</div>"
        if page_label
        else ""
    )
    marked = _marked_text(context[left:right], [shifted])
    return _context_box(f"{page}{prefix}{marked}{suffix}", css_class)


def duration(ms: float, lang: Lang = "es") -> str:
    """A time as people read it: '85 ms', '4,2 ms', '8,4 s', '2 min 05 s' (',' in Spanish)."""
    if ms < 10:
        text, unit = f"{ms:.1f}", "ms"
    elif ms < 1000:
        text, unit = f"{ms:.0f}", "ms"
    elif ms < 60_000:
        text, unit = f"{ms / 1000:.1f}", "s"
    else:
        minutes, seconds = divmod(round(ms / 1000), 60)
        return f"{minutes} min {seconds:02d} s"
    return f"{text.replace('.', ',') if lang == 'es' else text} {unit}"


DOCUMENT_SCRIPT = """
<script>
const box = document.querySelector(".qa-context");
function show(rank) {
  const mark = box.querySelector(`[data-rank="${rank}"]`);
  if (!mark) return;
  const offset = mark.getBoundingClientRect().top - box.getBoundingClientRect().top;
  box.scrollTop += offset - box.clientHeight / 3;
  document.querySelectorAll(".qa-selected").forEach((m) => m.classList.remove("qa-selected"));
  mark.classList.add("qa-selected");
  document.querySelectorAll(".qa-goto").forEach((b) => {
    b.setAttribute("aria-pressed", String(b.dataset.rank === String(rank)));
  });
}
document.querySelectorAll(".qa-goto").forEach((b) => {
  b.addEventListener("click", () => show(b.dataset.rank));
});
// The frame may be laid out after this runs: scroll once the box has a height.
const opened = new ResizeObserver(() => {
  if (box.clientHeight > 0) {
    opened.disconnect();
    show(%d);
  }
});
opened.observe(box);
</script>
"""
DOCUMENT_STYLE = """
<style>
body { margin: 0; font-family: "Source Sans Pro", sans-serif; color: #31333f; }
.qa-context { position: relative; }
.qa-selected { outline: 3px solid #e65100; outline-offset: 1px; }
.qa-goto { margin: 0 0.4rem 0.4rem 0; padding: 0.2rem 0.6rem; border-radius: 0.4rem;
  border: 1px solid rgba(128,128,128,0.5); background: white; cursor: pointer; font-size: 0.9rem; }
.qa-goto[aria-pressed="true"] { border-color: #e65100; }
</style>
"""


def document_view(
    context: str, answers: Sequence[Answer], labels: Sequence[str], selected: int = 0
) -> str:
    """A whole HTML page (for an iframe): the full text with every answer marked, opened scrolled
    to answer `selected`, and one button per answer (`labels`) that scrolls to it."""
    buttons = "".join(
        f'<button class="qa-goto" data-rank="{rank + 1}" '
        f'style="border-left: 0.5rem solid {colour(rank)};">{escape(label)}</button>'
        for rank, label in enumerate(labels)
    )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'>{DOCUMENT_STYLE}</head><body>"
        f'<div class="qa-gotos">{buttons}</div>'
        f"{highlight_context(context, answers)}{DOCUMENT_SCRIPT % (selected + 1)}</body></html>"
    )


def answer_card(answer: str, confidence: str, score: float, size: str = "1.6rem") -> str:
    """The best answer, large, with its confidence bar."""
    width = max(0.0, min(1.0, score)) * 100
    return (
        '<div class="qa-best" style="border-left: 0.45rem solid '
        f"{colour(0)}; padding: 0.8rem 1.1rem; border-radius: 0.5rem; "
        'background: rgba(255,213,79,0.12); margin-bottom: 0.8rem;">'
        f'<div class="qa-best-text" style="font-size: {size}; font-weight: 600;">'
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
        f'<div style="font-size: 1.4rem; font-weight: 600;">{escape(title)}</div>'
        f"<div>{escape(body)}</div>{extra}</div>"
    )


def alternatives_list(answers: Sequence[Answer], labels: Sequence[str]) -> str:
    """Ranked answers with their colour swatch and score label."""
    rows = []
    for rank, (a, label) in enumerate(zip(answers, labels, strict=True)):
        rows.append(
            f'<li class="qa-alt" style="margin: 0.25rem 0; list-style: none;">'
            '<span class="qa-swatch" style="display:inline-block; width:0.9em; height:0.9em; '
            f"border-radius:0.2em; "
            f'background:{colour(rank)}; margin-right:0.5em; vertical-align:-0.1em;"></span>'
            f'<b>{escape(a.answer)}</b> <span style="opacity:0.75">— {escape(label)}</span></li>'
        )
    return f'<ul style="padding-left: 0;">{"".join(rows)}</ul>'

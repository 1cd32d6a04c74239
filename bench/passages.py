"""Passage preselection on long SQuAD-es documents: BM25 recall@N, and time against a full read.

Usage (from the repository root):  .venv/bin/python bench/passages.py [--quick] [--no-timing]

Documents are SQuAD-es articles with all their paragraphs joined in order ("article"), runs of
consecutive articles joined until they make 100+ windows ("long"), and the first articles of the
v1.1 set joined up to the bm25 mode's 1,000,000-character limit ("whole"). A question counts for
recall@N when its gold answer lies wholly inside one of the N windows BM25 ranks first (the
windows the model would read). The timing part asks the BETO-shaped random model of bench/run.py
through the product's runtime: a full read against `bm25` reads of top_n windows, first question
on a text (tokenized and analysed) and a follow-up (from the cache).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import random
import statistics
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(REPO / "fastapi"))

import run  # noqa: E402  (the benchmark's model and machine description)
import workload  # noqa: E402

from qa_api.config import Settings  # noqa: E402
from qa_api.inference import contexts, passages  # noqa: E402
from qa_api.inference.runtime import QARuntime  # noqa: E402
from qa_api.inference.types import QAQuery, QAResult  # noqa: E402

logger = logging.getLogger("bench.passages")

TOP_NS = (1, 4, 8, 16)
SERVED = 0  # the served default: QA_PASSAGES_TOP_N windows, or QA_PASSAGES_SHARE of them if more
READS = (*TOP_NS, SERVED)
FULL_READ = -1
MARKERS = ("<!-- bench:passages -->", "<!-- /bench:passages -->")
NOTES = (
    "Tried and not kept (recall@8 on 600 questions of the long documents, plain BM25 95.8%): "
    "accents folded 95.8%, k1 1.2 / b 0.5 95.8%, windows scored by their best 60-term chunk "
    "95.5%, that mixed with the window's own score 95.5%. Recall falls as a text grows (more "
    "look-alike passages: 96.9% at 22 windows, 93.5% at 770 for 8 windows read), so the served "
    "default reads a share of a long text's windows instead of a fixed count. The model's speed "
    "does not enter recall; the times above are from a machine shared with other work, so their "
    "ratios, taken in one run, are the figures to read."
)
SOURCES = (
    workload.DATA_DIR / "squad-es-v1.1-dev-small.json",
    workload.DATA_DIR / "squad-es-v2.0-dev-small.json",
)
LONG_MIN_WINDOWS = 100
WHOLE_MAX_CHARS = 1_000_000
RESULTS_JSON = BENCH / "passages-results.json"
OPTIONS = Settings().decoding_defaults()  # the served defaults: windows of 384 tokens, stride 128


@dataclass(frozen=True)
class Gold:
    question: str
    start: int
    end: int


@dataclass
class Doc:
    name: str
    text: str
    golds: list[Gold] = field(default_factory=list)


def articles(path: Path) -> Iterator[Doc]:
    """Each article of a SQuAD JSON file as one document, answerable questions re-anchored."""
    for article in json.loads(path.read_text(encoding="utf-8"))["data"]:
        doc = Doc(f"{path.stem}:{article['title']}", "")
        for paragraph in article["paragraphs"]:
            offset = len(doc.text) + (2 if doc.text else 0)
            doc.text = f"{doc.text}\n\n{paragraph['context']}" if doc.text else paragraph["context"]
            for qa in paragraph["qas"]:
                if qa.get("is_impossible") or not qa["answers"]:
                    continue
                answer = qa["answers"][0]
                start = offset + answer["answer_start"]
                # SQuAD-es' translation leaves some answers unaligned (start -1 or other text).
                if answer["answer_start"] >= 0 and doc.text[start:].startswith(answer["text"]):
                    doc.golds.append(Gold(qa["question"], start, start + len(answer["text"])))
        yield doc


def join(docs: Sequence[Doc], name: str) -> Doc:
    out = Doc(name, "")
    for doc in docs:
        offset = len(out.text) + (2 if out.text else 0)
        out.text = f"{out.text}\n\n{doc.text}" if out.text else doc.text
        out.golds += [Gold(g.question, g.start + offset, g.end + offset) for g in doc.golds]
    return out


@dataclass
class Corpus:
    """Documents by group, the tokenizer, and each document's tokens (tokenized once)."""

    tokenizer: Any
    groups: dict[str, list[Doc]]
    tokens: dict[str, contexts.ContextTokens] = field(default_factory=dict)

    def context(self, doc: Doc) -> contexts.ContextTokens:
        if doc.name not in self.tokens:
            self.tokens[doc.name] = contexts.tokenize_context(self.tokenizer, doc.text)
        return self.tokens[doc.name]

    def layout(
        self, doc: Doc, question: str
    ) -> tuple[contexts.QuestionTokens, list[tuple[int, int]]]:
        q = contexts.tokenize_question(self.tokenizer, question)
        return q, contexts.layout(q, self.context(doc), OPTIONS, max_question_len=512)


def windows_of(tokenizer: Any, text: str, question: str = "¿Quién?") -> int:
    ctx = contexts.tokenize_context(tokenizer, text)
    q = contexts.tokenize_question(tokenizer, question)
    return len(contexts.layout(q, ctx, OPTIONS, max_question_len=512))


def build_corpus(tokenizer: Any) -> Corpus:
    corpus = Corpus(tokenizer, {"article": [], "long": [], "whole": []})
    for source in SOURCES:
        docs = list(articles(source))
        corpus.groups["article"] += docs
        run_: list[Doc] = []
        for doc in docs:
            run_.append(doc)
            joined = join(run_, f"{source.stem}:long{len(corpus.groups['long'])}")
            if windows_of(tokenizer, joined.text) >= LONG_MIN_WINDOWS:
                corpus.groups["long"].append(joined)
                run_ = []
    first = list(articles(SOURCES[0]))
    kept: list[Doc] = []
    while first and sum(len(d.text) + 2 for d in [*kept, first[0]]) <= WHOLE_MAX_CHARS:
        kept.append(first.pop(0))
    corpus.groups["whole"].append(join(kept, "whole"))
    return corpus


@dataclass
class RecallRow:
    group: str
    docs: int
    chars_median: int
    windows_median: int
    windows_max: int
    questions: int
    recall: dict[int, float]
    full_recall: float  # answers wholly inside some window at all (the ceiling)
    rank_ms_median: float


def served_top_n(settings: Settings, windows: int) -> int:
    return max(settings.passages_top_n, math.ceil(settings.passages_share * windows))


def recall(
    corpus: Corpus, settings: Settings, group: str, max_questions: int | None, seed: int = 0
) -> RecallRow:
    docs = corpus.groups[group]
    hits = dict.fromkeys(READS, 0)
    full = 0
    asked = 0
    rank_ms: list[float] = []
    windows: list[int] = []
    pairs = [(doc, gold) for doc in docs for gold in doc.golds]
    if max_questions is not None and len(pairs) > max_questions:
        pairs = random.Random(seed).sample(pairs, max_questions)
    for doc in docs:
        windows.append(len(corpus.layout(doc, "¿Quién?")[1]))
    for doc, gold in pairs:
        ctx = corpus.context(doc)
        _, ranges = corpus.layout(doc, gold.question)
        spans = contexts.char_spans(ctx, ranges)
        t0 = time.perf_counter()
        served = served_top_n(settings, len(spans))
        ranked = passages.rank_windows(ctx.terms, spans, gold.question, max(*TOP_NS, served))
        rank_ms.append((time.perf_counter() - t0) * 1000)
        inside = [a <= gold.start and gold.end <= b for a, b in spans]
        full += any(inside)
        for n in READS:
            hits[n] += any(inside[r.index] for r in ranked[: n or served])
        asked += 1
    return RecallRow(
        group=group,
        docs=len(docs),
        chars_median=int(statistics.median(len(d.text) for d in docs)),
        windows_median=int(statistics.median(windows)),
        windows_max=max(windows),
        questions=asked,
        recall={n: hits[n] / asked for n in READS},
        full_recall=full / asked,
        rank_ms_median=statistics.median(rank_ms),
    )


@dataclass
class TimingRow:
    top_n: int  # FULL_READ, SERVED or windows read
    docs: int
    windows_median: int
    first_s: float  # median over documents: first question on the text
    follow_up_s: float  # median of the follow-up questions (tokenized text from the cache)
    read_median: int  # windows read per question


def load_runtime(settings: Settings) -> QARuntime:
    """The served model as the product builds it (registry, scheduler, context cache, warm-up)."""
    registry = settings.model_registry()
    registry.load_all()
    model, runtime = registry.runtime("beto")
    logger.info("model ready: %s on %s (%s)", model.backend, model.device, model.dtype)
    return runtime


def timed(runtime: QARuntime, query: QAQuery) -> tuple[float, QAResult]:
    started = time.perf_counter()
    result = runtime.answer(query)
    return time.perf_counter() - started, result


def timing(
    runtime: QARuntime, settings: Settings, docs: Sequence[Doc], follow_ups: int
) -> list[TimingRow]:
    """Per document: a full read of one question, then for each top_n a first question on a
    fresh copy of the text (a cache miss) and `follow_ups` more questions on it (hits)."""
    rows = []
    full_s, full_read = [], []
    defaults = settings.decoding_defaults()
    per_n: dict[int, tuple[list[float], list[float], list[int]]] = {n: ([], [], []) for n in READS}
    windows = []
    for doc in docs:
        golds = doc.golds[: follow_ups + 1]
        seconds, result = timed(runtime, QAQuery(golds[0].question, doc.text, defaults))
        full_s.append(seconds)
        full_read.append(result.num_windows)
        windows.append(result.num_windows)
        logger.info("%s: full read of %d windows in %.1f s", doc.name, result.num_windows, seconds)
        for n in READS:
            options = (
                replace(defaults, bm25_top_n=n)
                if n
                else replace(
                    defaults, bm25_top_n=settings.passages_top_n, bm25_share=settings.passages_share
                )
            )
            text = f"{doc.text}\n\n[{n}]"  # a text the cache has not seen
            first, follow, read = per_n[n]
            for i, gold in enumerate(golds):
                seconds, result = timed(runtime, QAQuery(gold.question, text, options))
                (first if i == 0 else follow).append(seconds)
                read.append(len(result.passages.read) if result.passages else result.num_windows)
            logger.info(
                "%s top_n %d: first %.2f s, follow-ups %s",
                doc.name,
                n,
                first[-1],
                follow[-len(golds) + 1 :],
            )
    rows.append(
        TimingRow(
            FULL_READ,
            len(docs),
            int(statistics.median(windows)),
            statistics.median(full_s),
            statistics.median(full_s),
            int(statistics.median(full_read)),
        )
    )
    for n, (first, follow, read) in per_n.items():
        rows.append(
            TimingRow(
                n,
                len(docs),
                int(statistics.median(windows)),
                statistics.median(first),
                statistics.median(follow),
                int(statistics.median(read)),
            )
        )
    return rows


def cpu_description() -> dict[str, Any]:
    from qa_api.inference.hardware import cpu_flags, usable_cpus

    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = next(
        (ln.split(":", 1)[1].strip() for ln in cpuinfo.splitlines() if "model name" in ln), "?"
    )
    wanted = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8")
    return {
        "cpu": model,
        "cpus": usable_cpus(),
        "features": [f for f in wanted if f in cpu_flags()],
    }


def read_label(n: int) -> str:
    return {FULL_READ: "all windows (full read)", SERVED: "served default"}.get(n, f"top_n {n}")


def recall_table(rows: Sequence[RecallRow]) -> str:
    head = (
        "| documents | docs | chars (median) | windows median / max | questions | "
        + " | ".join(f"recall@{n}" for n in TOP_NS)
        + " | served default | in some window | rank ms (median) |"
    )
    lines = [head, "|" + "---|" * (9 + len(TOP_NS) - 1)]
    for r in rows:
        lines.append(
            f"| {r.group} | {r.docs} | {r.chars_median:,} | {r.windows_median} / {r.windows_max} | "
            f"{r.questions:,} | "
            + " | ".join(f"{r.recall[n]:.1%}" for n in READS)
            + f" | {r.full_recall:.1%} | {r.rank_ms_median:.1f} |"
        )
    return "\n".join(lines)


def timing_table(rows: Sequence[TimingRow]) -> str:
    full = rows[0]
    lines = [
        "| read | windows read | first question s | follow-up s | speed-up first / follow-up |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {read_label(r.top_n)} | {r.read_median} of {r.windows_median} | {r.first_s:.2f} | "
            f"{r.follow_up_s:.2f} | {full.first_s / r.first_s:.1f}x / "
            f"{full.first_s / r.follow_up_s:.1f}x |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="fewer questions, a check that it runs"
    )
    parser.add_argument("--no-timing", action="store_true", help="recall only (no model runs)")
    parser.add_argument(
        "--report-only", action="store_true", help=f"rewrite the sections from {RESULTS_JSON.name}"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("bm25s").setLevel(logging.WARNING)
    from transformers import AutoTokenizer

    if args.report_only:
        write_section(json.loads(RESULTS_JSON.read_text()), Settings())
        return 0
    machine = cpu_description()
    logger.info(
        "CPU: %s, %d CPUs; %s", machine["cpu"], machine["cpus"], ", ".join(machine["features"])
    )
    model_dir = run.ensure_model()
    corpus = build_corpus(AutoTokenizer.from_pretrained(model_dir))
    limits = {
        "article": 500 if args.quick else None,
        "long": 300 if args.quick else None,
        "whole": 60 if args.quick else 400,
    }
    rows = []
    settings = Settings(models={"beto": str(model_dir)}, onnx_cache_dir=run.ONNX_CACHE)
    for group, limit in limits.items():
        rows.append(recall(corpus, settings, group, limit))
        logger.info("%s", rows[-1])
    print(recall_table(rows))
    results: dict[str, Any] = {"machine": machine, "recall": [r.__dict__ for r in rows]}
    if not args.no_timing:
        runtime = load_runtime(settings)
        long_docs = corpus.groups["long"][: 1 if args.quick else 2]
        timings = timing(runtime, settings, long_docs, follow_ups=1 if args.quick else 2)
        runtime.close()
        print(timing_table(timings))
        results["timing"] = [r.__dict__ for r in timings]
    RESULTS_JSON.write_text(json.dumps(results, indent=2) + "\n")
    if not args.quick and not args.no_timing:
        write_section(results, settings)
    return 0


def section(results: dict[str, Any], settings: Settings) -> str:
    """The Markdown that bench/RESULTS.md and the README show between the passages markers."""
    m = results["machine"]
    recall_rows = [
        RecallRow(**{**r, "recall": {int(k): v for k, v in r["recall"].items()}})
        for r in results["recall"]
    ]
    timing_rows = [TimingRow(**r) for r in results["timing"]]
    return (
        f"Recorded by `python bench/passages.py` on {m['cpu']} ({m['cpus']} CPUs; "
        f"{', '.join(m['features'])}), BETO-shaped random-weight model, windows of "
        f"{settings.max_seq_len} tokens with stride {settings.decoding_defaults().doc_stride}. "
        f"Served default: {settings.passages_top_n} windows, or "
        f"{settings.passages_share:.0%} of them when more (QA_PASSAGES_TOP_N, QA_PASSAGES_SHARE)."
        "\n\nRecall@N: share of answerable SQuAD-es questions whose gold answer lies wholly "
        "inside one of the N windows BM25 ranks first (the windows the model reads).\n\n"
        f"{recall_table(recall_rows)}\n\n"
        "Time per question on the `long` documents through the product's runtime (median; "
        "first question on a text: tokenized and analysed; follow-up: from the cache):\n\n"
        f"{timing_table(timing_rows)}\n\n"
        f"{NOTES}\n"
    )


def write_section(results: dict[str, Any], settings: Settings) -> None:
    start, end = MARKERS
    text = section(results, settings)
    # In RESULTS.md the heading sits inside the markers: bench/run.py keeps only what is there.
    heading = "## Whole documents: passage preselection (bench/passages.py)\n\n"
    for path, head in ((BENCH / "RESULTS.md", heading), (REPO / "README.md", "")):
        current = path.read_text()
        if start not in current or end not in current:
            current = f"{current.rstrip()}\n\n{start}\n{end}\n"
        before, rest = current.split(start, 1)
        path.write_text(f"{before}{start}\n{head}{text}{end}{rest.split(end, 1)[1]}")


if __name__ == "__main__":
    sys.exit(main())

"""The `passages` option over HTTP, in-process with the tiny model: only the chosen windows are
read, the response says which, offsets stay exact in the whole document, limits and the cache."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from qa_api.config import Settings
from tests.paths import SQUAD_V1_SAMPLE
from tests.unit.test_api import assert_error, ready_client

TOP_N = 3


@pytest.fixture(scope="module")
def document() -> str:
    """A few SQuAD-es articles joined in order: long enough for dozens of tiny-model windows."""
    data = json.loads(SQUAD_V1_SAMPLE.read_text(encoding="utf-8"))["data"]
    return "\n\n".join(p["context"] for article in data[:3] for p in article["paragraphs"])


@pytest.fixture(scope="module")
def client(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    with ready_client(
        tiny_model_dir,
        tmp_path_factory.mktemp("onnx"),
        max_context_chars=2000,
        max_document_chars=200_000,
        passages_top_n=TOP_N,
        passages_share=0.0,  # test_passages.py covers the share
        max_seq_len=128,
        doc_stride=32,
    ) as client:
        yield client


def ask(client: TestClient, context: str, question: str, **extra: Any) -> Any:
    response = client.post("/v1/qa", json={"context": context, "question": question, **extra})
    assert response.status_code == 200, response.text
    return response.json()


def test_bm25_reads_the_top_windows_and_says_which(client: TestClient, document: str) -> None:
    body = ask(
        client, document, "¿Qué equipo ganó el Super Bowl 50?", top_k=5, passages={"mode": "bm25"}
    )

    read = body["passages"]["read"]
    assert body["passages"]["mode"] == "bm25"
    assert body["passages"]["matched"] is True
    assert [w["rank"] for w in read] == list(range(1, TOP_N + 1))
    assert body["num_windows"] > 20
    assert len({w["index"] for w in read}) == TOP_N
    assert all(0 <= w["start"] < w["end"] <= len(document) for w in read)
    assert [w["score"] for w in read] == sorted((w["score"] for w in read), reverse=True)
    assert "Super Bowl" in document[read[0]["start"] : read[0]["end"]]
    assert body["answers"]
    for answer in body["answers"]:
        assert document[answer["start"] : answer["end"]] == answer["answer"]
        assert any(w["start"] <= answer["start"] and answer["end"] <= w["end"] for w in read)


def test_ranking_logs_nothing_at_our_log_level(
    client: TestClient, document: str, caplog: pytest.LogCaptureFixture
) -> None:
    """bm25s sets its own logger to DEBUG; a question must not print its lines at INFO."""
    with caplog.at_level("DEBUG", logger="qa_api"):  # our handler takes whatever reaches it
        ask(client, document, "¿Qué equipo ganó el Super Bowl 50?", passages={"mode": "bm25"})
    assert [r.getMessage() for r in caplog.records if r.name.startswith("bm25s")] == []
    assert any(r.name == "qa_api" for r in caplog.records)  # the request's own line came through


def test_a_question_bm25_cannot_rank_says_so(client: TestClient, document: str) -> None:
    """Only stop words: every window scores 0, the first ones are read, and the response says it."""
    body = ask(client, document, "¿Qué es lo que hay?", passages={"mode": "bm25"})
    assert body["passages"]["matched"] is False
    read = body["passages"]["read"]
    assert [w["index"] for w in read] == list(range(TOP_N))
    assert {w["score"] for w in read} == {0.0}


def test_reading_every_window_by_bm25_answers_like_a_full_read(
    client: TestClient, document: str
) -> None:
    context = document[:1900]
    question = "¿Dónde se jugó el partido?"
    full = ask(client, context, question, top_k=3)
    every = ask(client, context, question, top_k=3, passages={"mode": "bm25", "top_n": 100})

    assert full["passages"] is None
    assert len(every["passages"]["read"]) == every["num_windows"] == full["num_windows"]
    assert every["answers"] == full["answers"]
    assert every["no_answer_probability"] == full["no_answer_probability"]


def test_null_passages_mean_the_default(client: TestClient, document: str) -> None:
    """null is the default for every option, passages included (docs/api.md)."""
    context, question = document[:1900], "¿Dónde se jugó el partido?"
    null = ask(client, context, question, passages=None)
    assert null["passages"] is None
    assert null["answers"] == ask(client, context, question)["answers"]


def test_limits_depend_on_the_mode(client: TestClient, document: str) -> None:
    body = {"context": document[:5000], "question": "¿Quién?"}
    assert_error(
        client.post("/v1/qa", json=body),
        413,
        "payload_too_large",
        "QA_MAX_CONTEXT_CHARS",
        '"mode": "bm25"',
    )
    huge = {"context": "palabra " * 30_000, "question": "¿Quién?", "passages": {"mode": "bm25"}}
    assert_error(
        client.post("/v1/qa", json=huge), 413, "payload_too_large", "QA_MAX_DOCUMENT_CHARS"
    )
    for passages in (
        {"mode": "bm25", "top_n": 0},
        {"mode": "todo"},
        {"mode": "bm25", "n": 3},
        {"mode": "bm25", "top_n": "3"},
    ):
        assert_error(
            client.post("/v1/qa", json={**body, "passages": passages}), 422, "validation_error"
        )
    ignored = {**body, "passages": {"mode": "all", "top_n": 3}}  # would read every window
    assert_error(
        client.post("/v1/qa", json=ignored), 422, "validation_error", "top_n applies to mode bm25"
    )


def test_follow_up_questions_reuse_the_tokenized_text(client: TestClient, document: str) -> None:
    def lookups() -> dict[str, float]:
        text = client.get("/metrics").text
        found = {}
        for line in text.splitlines():
            if line.startswith("qa_context_cache_lookups_total"):
                found[line.split('"')[1]] = float(line.rsplit(" ", 1)[1])
        return found

    before = lookups()
    text = document + "\n\nUn párrafo nuevo para que el texto no esté en la caché."
    first = ask(client, text, "¿Quién ganó?", passages={"mode": "bm25"})
    second = ask(client, text, "¿Dónde se jugó el Super Bowl 50?", passages={"mode": "bm25"})
    after = lookups()

    assert after.get("miss", 0) - before.get("miss", 0) == 1
    assert after.get("hit", 0) - before.get("hit", 0) == 1
    assert first["passages"]["read"] != second["passages"]["read"]  # each question its own windows
    assert "qa_context_cache_bytes" in client.get("/metrics").text


def test_batch_and_stream_take_the_option(client: TestClient, document: str) -> None:
    items = [
        {
            "context": document,
            "question": "¿Quién ganó el Super Bowl 50?",
            "passages": {"mode": "bm25", "top_n": 2},
        },
        {"context": document[:1500], "question": "¿Quién ganó?"},
    ]
    results = client.post("/v1/qa/batch", json={"requests": items}).json()["results"]
    assert [len(r["passages"]["read"]) if r["passages"] else None for r in results] == [2, None]

    with client.stream("POST", "/v1/qa/stream", json=items[0]) as response:
        assert response.status_code == 200
        events = [line for line in response.iter_lines() if line.startswith("data:")]
    final = json.loads(events[-1][len("data:") :])
    assert [w["rank"] for w in final["passages"]["read"]] == [1, 2]


def test_models_list_the_passage_limits(client: TestClient) -> None:
    limits = client.get("/v1/models").json()["models"][0]["limits"]
    assert (limits["max_document_chars"], limits["passages_top_n"]) == (200_000, TOP_N)


def test_the_default_body_limit_fits_a_document_of_the_default_limit() -> None:
    settings = Settings()
    accented = ("El niño comió una piña en el cañón; ¿qué más? Está allí. " * 20_000)[
        : settings.max_document_chars
    ]
    body = json.dumps({"context": accented, "question": "¿Qué?", "passages": {"mode": "bm25"}})
    assert len(body.encode()) < settings.max_body_bytes

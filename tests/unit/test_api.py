"""Every endpoint and error path of the HTTP API, in-process (the real model path, tiny model)."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from qa_api.config import Settings
from qa_api.main import create_app
from qa_api.testing.random_model import build_random_qa_model
from tests.paths import DATA_DIR

CONTEXT = "Miguel de Cervantes nació en Alcalá de Henares en 1547 y escribió Don Quijote."
QUESTION = "¿Dónde nació Cervantes?"
ERROR_KEYS = {"error", "code", "request_id"}

MakeClient = Callable[..., TestClient]


def wait_ready(client: TestClient, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while client.get("/health/ready").status_code != 200:
        assert time.monotonic() < deadline, client.get("/health/ready").json()
        time.sleep(0.05)


@pytest.fixture
def make_client(tiny_model_dir: Path, tmp_path: Path) -> Iterator[MakeClient]:
    clients: list[TestClient] = []

    def make(wait: bool = True, **overrides: Any) -> TestClient:
        settings = Settings(
            models=overrides.pop("models", {"tiny": str(tiny_model_dir)}),
            backend="torch-fp32",
            onnx_cache_dir=tmp_path / "onnx",
            **overrides,
        )
        client = TestClient(create_app(settings))
        client.__enter__()
        clients.append(client)
        if wait:
            wait_ready(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client: MakeClient) -> TestClient:
    return make_client(max_context_chars=2000, max_question_chars=200)


@contextmanager
def ready_client(model_dir: Path, onnx_dir: Path, **overrides: Any) -> Iterator[TestClient]:
    """The app serving the tiny model as "tiny" (torch fp32), once it is ready; `overrides` are
    other settings. For module-scoped clients: each app loads the model."""
    settings = Settings(
        models={"tiny": str(model_dir)}, backend="torch-fp32", onnx_cache_dir=onnx_dir, **overrides
    )
    with TestClient(create_app(settings)) as client:
        wait_ready(client)
        yield client


@pytest.fixture(scope="module")
def shared_client(
    tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TestClient]:
    """One app for the many cheap requests of the input-rule tables."""
    with ready_client(tiny_model_dir, tmp_path_factory.mktemp("onnx")) as client:
        yield client


def assert_error(response: Any, status: int, code: str, *words: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert body.keys() >= ERROR_KEYS
    assert body["code"] == code
    assert body["request_id"] == response.headers["x-request-id"]
    for word in words:
        assert word in body["error"], body["error"]
    assert "Traceback" not in response.text
    return body


def test_answer_has_offsets_scores_and_timings(client: TestClient) -> None:
    response = client.post("/v1/qa", json={"context": CONTEXT, "question": QUESTION, "top_k": 3})
    assert response.status_code == 200
    body = response.json()
    assert body.keys() == {
        "model", "answers", "no_answer", "no_answer_probability", "num_windows", "timings",
        "passages",
    }  # fmt: skip
    assert body["passages"] is None  # every window read
    assert body["model"] == "tiny"
    assert body["num_windows"] == 1
    assert 1 <= len(body["answers"]) <= 3
    for answer in body["answers"]:
        assert CONTEXT[answer["start"] : answer["end"]] == answer["answer"]
        assert 0 <= answer["score"] <= 1
    scores = [a["score"] for a in body["answers"]]
    assert scores == sorted(scores, reverse=True)
    assert 0 <= body["no_answer_probability"] <= 1
    timings = body["timings"]
    assert timings.keys() == {"queue_ms", "tokenize_ms", "inference_ms", "decode_ms", "total_ms"}
    assert timings["total_ms"] >= timings["inference_ms"] > 0


def test_no_answer_switch(client: TestClient) -> None:
    on = client.post("/v1/qa", json={"context": CONTEXT, "question": QUESTION}).json()
    off = client.post(
        "/v1/qa",
        json={"context": CONTEXT, "question": QUESTION, "handle_impossible_answer": False},
    ).json()
    assert off["no_answer"] is False
    assert on["no_answer"] == (on["no_answer_probability"] > on["answers"][0]["score"])


def test_long_context_uses_several_windows(client: TestClient) -> None:
    context = " ".join([CONTEXT] * 20)
    body = client.post(
        "/v1/qa",
        json={"context": context, "question": QUESTION, "max_seq_len": 128, "doc_stride": 32},
    ).json()
    assert body["num_windows"] > 3
    answer = body["answers"][0]
    assert context[answer["start"] : answer["end"]] == answer["answer"]


def test_batch_keeps_order(client: TestClient) -> None:
    contexts = [CONTEXT, "El río Ebro nace en Fontibre.", "La Alhambra está en Granada."]
    response = client.post(
        "/v1/qa/batch",
        json={"requests": [{"context": c, "question": "¿Dónde?"} for c in contexts]},
    )
    assert response.status_code == 200
    results = response.json()["results"]
    assert len(results) == 3
    for context, result in zip(contexts, results, strict=True):
        answer = result["answers"][0]
        assert context[answer["start"] : answer["end"]] == answer["answer"]


@pytest.mark.parametrize(
    ("bad", "status", "code", "words"),
    [
        ({"model": "gpt"}, 404, "model_not_found", ["item 1: Unknown model 'gpt'"]),
        ({"context": "x" * 2001}, 413, "payload_too_large", ["item 1: The context has 2001"]),
        ({"top_k": 11}, 422, "validation_error", ["item 1: top_k is 11"]),
    ],
)
def test_batch_errors_name_the_item(
    client: TestClient, bad: dict[str, Any], status: int, code: str, words: list[str]
) -> None:
    good = {"context": CONTEXT, "question": QUESTION}
    response = client.post("/v1/qa/batch", json={"requests": [good, {**good, **bad}, good]})
    assert_error(response, status, code, *words)


def test_predict_tf_serving_style(client: TestClient) -> None:
    response = client.post(
        "/v1/models/tiny:predict",
        json={"instances": [{"context": CONTEXT, "question": QUESTION}] * 2},
    )
    assert response.status_code == 200
    predictions = response.json()["predictions"]
    assert len(predictions) == 2
    assert predictions[0]["answers"] == predictions[1]["answers"]
    unknown = client.post(
        "/v1/models/nope:predict", json={"instances": [{"context": "a", "question": "b"}] * 2}
    )
    body = assert_error(unknown, 404, "model_not_found", "nope", "tiny")
    assert not body["error"].startswith("item")  # the path names the model, not an item
    assert set(unknown.json()) >= {"error"}


def test_qas_accepts_query_and_multipart(client: TestClient) -> None:
    from requests_toolbelt.multipart.encoder import MultipartEncoder

    best = client.post("/v1/qa", json={"context": CONTEXT, "question": QUESTION}).json()
    expected = "" if best["no_answer"] else best["answers"][0]["answer"]
    by_query = client.post("/qas/", params={"context": CONTEXT, "question": QUESTION})
    assert by_query.status_code == 200
    assert by_query.json() == expected
    form = MultipartEncoder(fields={"context": CONTEXT, "question": QUESTION})
    by_form = client.post(
        "/qas/", content=form.to_string(), headers={"Content-Type": form.content_type}
    )
    assert by_form.json() == expected
    missing = client.post("/qas/", params={"context": CONTEXT})
    assert_error(missing, 422, "validation_error", "question")
    for blank in ("", "   "):  # sent empty is not "missing": the readable-text rule says so
        form = MultipartEncoder(fields={"context": CONTEXT, "question": blank})
        for empty in (
            client.post("/qas/", data={"context": CONTEXT, "question": blank}),
            client.post(
                "/qas/", content=form.to_string(), headers={"Content-Type": form.content_type}
            ),
        ):
            assert_error(empty, 422, "validation_error", "question")
            assert "Field required" not in empty.json()["error"], empty.json()


def test_models_describe_state_and_limits(client: TestClient) -> None:
    listing = client.get("/v1/models").json()
    assert listing["default"] == "tiny"
    (model,) = listing["models"]
    assert (model["status"], model["ready"], model["error"]) == ("ready", True, None)
    assert model["revision"] == "local"
    assert (model["backend"], model["device"], model["dtype"]) == ("torch-fp32", "cpu", "float32")
    assert model["limits"]["max_context_chars"] == 2000
    assert model["limits"]["doc_stride"] == 128
    assert client.get("/v1/models/tiny").json() == model
    assert_error(client.get("/v1/models/otro"), 404, "model_not_found", "otro")


def test_health_and_metrics(client: TestClient) -> None:
    assert client.get("/health/live").json() == {"status": "alive"}
    for path in ("/health/live", "/health/ready"):  # probes that send HEAD
        head = client.head(path)
        assert (head.status_code, head.content) == (200, b"")
    assert client.get("/health/ready").json() == {
        "status": "ready", "models": {"tiny": "ready"}, "reason": None
    }  # fmt: skip
    client.post("/v1/qa", json={"context": CONTEXT, "question": QUESTION})
    text = client.get("/metrics").text
    for metric in (
        'qa_http_requests_total{method="POST",route="/v1/qa",status="200"}',
        "qa_http_request_seconds_bucket",
        'qa_inference_seconds_count{model="tiny"}',
        'qa_batch_windows_bucket{le="1.0",model="tiny"}',
        'qa_queue_depth{model="tiny"} 0.0',
        'qa_model_ready{model="tiny"} 1.0',
        'qa_model_load_seconds{model="tiny"}',
        'qa_answers_total{model="tiny",outcome=',
    ):
        assert metric in text, metric


@pytest.mark.parametrize(
    ("body", "status", "code", "words"),
    [
        ({"context": "", "question": QUESTION}, 422, "validation_error", ["context"]),
        ({"context": CONTEXT, "question": "   "}, 422, "validation_error", ["question", "whitespace"]),
        ({"context": 5, "question": QUESTION}, 422, "validation_error", ["context", "string"]),
        ({"context": CONTEXT}, 422, "validation_error", ["question", "required"]),
        ({"context": CONTEXT, "question": QUESTION, "top_k": 0}, 422, "validation_error", ["top_k"]),
        ({"context": CONTEXT, "question": QUESTION, "top_k": 11}, 422, "validation_error", ["top_k", "10"]),
        ({"context": CONTEXT, "question": QUESTION, "topk": 2}, 422, "validation_error", ["topk"]),
        ({"context": "x" * 2001, "question": QUESTION}, 413, "payload_too_large", ["2000", "QA_MAX_CONTEXT_CHARS"]),
        ({"context": CONTEXT, "question": "x" * 201}, 413, "payload_too_large", ["QA_MAX_QUESTION_CHARS"]),
        ({"context": CONTEXT, "question": QUESTION, "model": "gpt"}, 404, "model_not_found", ["gpt", "tiny"]),
        (
            {"context": CONTEXT, "question": QUESTION, "max_seq_len": 32, "doc_stride": 30},
            422, "validation_error", ["doc_stride", "max_seq_len"],
        ),
        ({"context": CONTEXT, "question": "x y " * 40}, 422, "validation_error", ["Shorten"]),
        (
            {"context": CONTEXT, "question": "x y " * 20, "max_seq_len": 32},
            422, "validation_error", ["question does not fit", "max_seq_len (32 tokens)", "40 tokens", "no room"],
        ),
    ],
)  # fmt: skip
def test_bad_input_gets_a_clear_4xx(
    client: TestClient, body: dict[str, Any], status: int, code: str, words: list[str]
) -> None:
    assert_error(client.post("/v1/qa", json=body), status, code, *words)
    assert client.get("/health/live").status_code == 200


def test_wrong_bodies(client: TestClient) -> None:
    assert_error(
        client.post("/v1/qa", content=b"\xff\xfe\x00binary", headers={"Content-Type": "application/json"}),
        400, "invalid_body", "valid UTF-8 JSON",
    )  # fmt: skip
    assert_error(
        client.post("/v1/qa", content="context=a", headers={"Content-Type": "text/plain"}),
        415, "unsupported_media_type", "application/json",
    )  # fmt: skip
    assert_error(client.post("/v1/qa", json=[1, 2]), 422, "validation_error")
    cut = client.post(
        "/v1/qa", content=b'{"context":', headers={"Content-Type": "application/json"}
    )
    assert "details" not in assert_error(cut, 400, "invalid_body", "not valid JSON", "character 11")
    assert_error(client.post("/v1/qa/batch", json={"requests": []}), 422, "validation_error")
    too_many = {"requests": [{"context": "a", "question": "b"}] * 33}
    assert_error(client.post("/v1/qa/batch", json=too_many), 413, "payload_too_large", "32")
    assert_error(client.get("/v2/nothing"), 404, "not_found")
    assert_error(client.get("/v1/qa"), 405, "method_not_allowed")


def test_qas_says_what_it_reads(client: TestClient) -> None:
    """/qas/ takes form fields or query parameters: JSON is a 415, and its hints fit it."""
    body = {"context": CONTEXT, "question": QUESTION}
    assert_error(
        client.post("/qas/", json=body), 415, "unsupported_media_type", "form fields", "/v1/qa"
    )
    too_long = client.post("/qas/", data={"context": "x" * 2001, "question": QUESTION})
    assert_error(
        too_long, 413, "payload_too_large", "QA_MAX_CONTEXT_CHARS", "JSON request to /v1/qa"
    )
    # An empty body with a Content-Type (some clients always send one) still reads the query.
    empty = client.post("/qas/", params=body, headers={"Content-Type": "application/json"})
    assert empty.status_code == 200, empty.text


def test_body_over_the_byte_limit_is_refused_before_parsing(make_client: MakeClient) -> None:
    client = make_client(max_body_bytes=1000)
    response = client.post("/v1/qa", json={"context": "x" * 5000, "question": QUESTION})
    assert_error(response, 413, "payload_too_large", "QA_MAX_BODY_BYTES")
    # Texts in the query string (/qas/) are held to the same limit, with their own reason.
    query = client.post("/qas/", params={"context": "x" * 5000, "question": QUESTION})
    assert_error(query, 413, "payload_too_large", "query string", "QA_MAX_BODY_BYTES")
    for form in ({"data": {"context": "x" * 5000}}, {"files": {"context": (None, "x" * 5000)}}):
        assert_error(client.post("/qas/", **form), 413, "payload_too_large", "QA_MAX_BODY_BYTES")


def test_api_key(make_client: MakeClient) -> None:
    client = make_client(api_key="s3creto")
    body = {"context": CONTEXT, "question": QUESTION}
    assert_error(client.post("/v1/qa", json=body), 401, "unauthorized", "X-API-Key")
    assert_error(
        client.post("/v1/qa", json=body, headers={"X-API-Key": "nope"}), 401, "unauthorized"
    )
    assert client.post("/v1/qa", json=body, headers={"X-API-Key": "s3creto"}).status_code == 200
    assert client.get("/health/ready").status_code == 200  # health stays open


def test_cors_is_closed_by_default_and_opens_per_origin(make_client: MakeClient) -> None:
    closed = make_client().get("/v1/models", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in closed.headers
    opened = make_client(cors_origins=["https://app.example"])
    response = opened.get("/v1/models", headers={"Origin": "https://app.example"})
    assert response.headers["access-control-allow-origin"] == "https://app.example"


def test_model_that_fails_to_load_keeps_the_process_up(
    make_client: MakeClient, tmp_path: Path
) -> None:
    broken = tmp_path / "broken-model"
    broken.mkdir()
    (broken / "config.json").write_text("{not json")
    client = make_client(wait=False, models={"roto": str(broken)})
    deadline = time.monotonic() + 30
    while client.get("/v1/models/roto").json()["status"] == "loading":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    ready = client.get("/health/ready")
    assert ready.status_code == 503
    assert ready.json()["status"] == "failed"
    assert "roto" in ready.json()["reason"]
    assert client.get("/health/live").status_code == 200
    body = assert_error(
        client.post("/v1/qa", json={"context": CONTEXT, "question": QUESTION}),
        503, "model_not_ready", "roto",
    )  # fmt: skip
    assert "Error" in body["error"]  # the loading error's reason is passed on


def test_unknown_hub_id_offline_fails_with_reason(
    make_client: MakeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    client = make_client(wait=False, models={"beto": "mrm8488/no-such-model-for-tests"})
    deadline = time.monotonic() + 30
    while (ready := client.get("/health/ready")).json()["status"] == "loading":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert ready.status_code == 503
    assert "beto" in ready.json()["reason"]


def test_openapi_documents_every_route_with_examples(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    paths = schema["paths"]
    for path in ("/v1/qa", "/v1/qa/batch", "/v1/models", "/v1/models/{name}",
                 "/v1/models/{name}:predict", "/qas/", "/health/live", "/health/ready", "/metrics"):  # fmt: skip
        assert path in paths, path
    assert "¿Dónde nació Cervantes?" in str(schema["components"]["schemas"]["QARequest"])
    assert client.get("/docs").status_code == 200


def test_models_side_by_side_share_one_inference_thread(
    make_client: MakeClient, tiny_model_dir: Path, tmp_path: Path
) -> None:
    """Two models in one process: each request is answered by the model it names, batches may
    mix them, and a single inference thread runs both (runtime.py says why)."""
    other_dir = build_random_qa_model(tmp_path / "other", size="tiny", data_dir=DATA_DIR, seed=1)
    before = sum(t.name == "qa-inference" for t in threading.enumerate())
    client = make_client(models={"chico": str(tiny_model_dir), "otro": str(other_dir)})
    assert sum(t.name == "qa-inference" for t in threading.enumerate()) == before + 1

    def ask(model: str) -> dict[str, Any]:
        body = {"context": CONTEXT, "question": QUESTION, "model": model, "top_k": 3}
        response = client.post("/v1/qa", json=body)
        assert response.status_code == 200, response.text
        return response.json()

    alone = {name: ask(name) for name in ("chico", "otro")}
    assert alone["chico"]["answers"] != alone["otro"]["answers"]  # different weights
    mixed = client.post(
        "/v1/qa/batch",
        json={
            "requests": [
                {"context": CONTEXT, "question": QUESTION, "model": name, "top_k": 3}
                for name in ("otro", "chico", "otro")
            ]
        },
    )
    assert mixed.status_code == 200, mixed.text
    for name, result in zip(("otro", "chico", "otro"), mixed.json()["results"], strict=True):
        assert result["model"] == name
        assert [a["start"] for a in result["answers"]] == [
            a["start"] for a in alone[name]["answers"]
        ]
        assert result["timings"]["inference_ms"] > 0


# Texts with nothing to read: one rule (schemas.has_readable_text) for every text field.
INVISIBLE = {
    "zero-width-spaces": "\u200b\u200b",
    "bom-word-joiner": "\ufeff\u2060",
    "direction-marks": "\u200f\u202e\u2067",
    "nul-and-controls": "\x00\x07\x1b\x7f",
    "unicode-whitespace": " \u3000\n\t\u2028",
    "combining-accents-alone": "\u0301\u0308",
    "hangul-filler": "\u3164\u115f",
    "replacement-char": "\ufffd",
}


def _send(client: TestClient, endpoint: str, fields: dict[str, str]) -> Any:
    """POST fields to one of the endpoints that take a context and a question."""
    if endpoint == "qa":
        return client.post("/v1/qa", json=fields)
    if endpoint == "batch":
        return client.post("/v1/qa/batch", json={"requests": [fields]})
    if endpoint == "predict":
        return client.post("/v1/models/tiny:predict", json={"instances": [fields]})
    if endpoint == "qas-query":
        return client.post("/qas/", params=fields)
    if endpoint == "qas-urlencoded":
        return client.post("/qas/", data=fields)
    assert endpoint == "qas-multipart"
    return client.post("/qas/", files={k: (None, v) for k, v in fields.items()})


ENDPOINTS = ["qa", "batch", "predict", "qas-query", "qas-urlencoded", "qas-multipart"]


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("field", ["context", "question"])
@pytest.mark.parametrize("text", INVISIBLE.values(), ids=INVISIBLE.keys())
def test_text_without_anything_to_read_is_refused_everywhere(
    shared_client: TestClient, endpoint: str, field: str, text: str
) -> None:
    fields = {"context": CONTEXT, "question": QUESTION, field: text}
    body = assert_error(
        _send(shared_client, endpoint, fields), 422, "validation_error", field, "readable"
    )
    assert "Traceback" not in body["error"]


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_invisible_characters_around_readable_text_are_fine(
    shared_client: TestClient, endpoint: str
) -> None:
    fields = {"context": "\u200f" + CONTEXT + "\u200b", "question": "\u200b¿Dónde\u0301?\ufeff"}
    response = _send(shared_client, endpoint, fields)
    assert response.status_code == 200, response.text


def test_max_seq_len_alone_brings_the_pipeline_stride(shared_client: TestClient) -> None:
    """The transformers pipeline's rule: doc_stride = min(max_seq_len // 2, 128) when unset."""
    context = " ".join([CONTEXT] * 20)

    def ask(**options: int) -> Any:
        return shared_client.post(
            "/v1/qa", json={"context": context, "question": QUESTION, **options}
        )

    implicit = ask(max_seq_len=128)  # the reported case: 422 while the stride stayed 128
    assert implicit.status_code == 200, implicit.text
    explicit = ask(max_seq_len=128, doc_stride=64)
    assert explicit.status_code == 200, explicit.text
    assert implicit.json()["num_windows"] == explicit.json()["num_windows"] > 1
    assert implicit.json()["answers"] == explicit.json()["answers"]
    assert ask(max_seq_len=256).json()["num_windows"] == ask(max_seq_len=256, doc_stride=128).json()["num_windows"]  # fmt: skip
    # An explicit doc_stride is still checked against the window.
    assert_error(ask(max_seq_len=128, doc_stride=128), 422, "validation_error", "doc_stride")


def test_settings_without_doc_stride_follow_the_same_rule(make_client: MakeClient) -> None:
    client = make_client(max_seq_len=192)  # a fixed stride of 128 would not fit here
    assert client.get("/v1/models/tiny").json()["limits"]["doc_stride"] == 96
    with pytest.raises(ValueError, match="QA_DOC_STRIDE"):
        Settings(max_seq_len=192, doc_stride=128)


def test_top_k_default_is_the_setting_served_and_applied(make_client: MakeClient) -> None:
    """QA_TOP_K is the one default: /v1/models serves it, a request without top_k gets it."""
    client = make_client(top_k=3, max_context_chars=2000)
    assert client.get("/v1/models/tiny").json()["limits"]["top_k"] == 3
    body = {"context": "Uno dos tres cuatro cinco seis siete ocho.", "question": "¿Qué?"}
    for sent in (body, {**body, "top_k": None}):
        response = client.post("/v1/qa", json=sent)
        assert response.status_code == 200
        assert len(response.json()["answers"]) == 3
    with pytest.raises(ValueError, match="QA_TOP_K"):
        Settings(top_k=11, max_top_k=10)


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"QA_MODELS": "{}"}, "no model is named; for example: QA_MODELS='{"),
        ({"QA_MODELS": '{"a/b": "x"}'}, "QA_MODELS: the model name 'a/b' goes into URLs"),
        ({"QA_MODELS": '{"x:predict": "x"}'}, "the model name 'x:predict' goes into URLs"),
        (
            {"QA_MAX_SEQ_LEN": "128"},
            "QA_MAX_SEQ_LEN (128) must be more than QA_MAX_QUESTION_LEN (64) + 3 special tokens "
            "+ QA_DOC_STRIDE (64, from QA_MAX_SEQ_LEN when unset) = 131: raise QA_MAX_SEQ_LEN",
        ),
        ({"QA_LOG_LEVEL": "LOUD"}, "QA_LOG_LEVEL: Input should be 'CRITICAL', 'ERROR', "),
    ],
)
def test_a_bad_setting_stops_the_start_saying_what_to_change(
    monkeypatch: pytest.MonkeyPatch, variables: dict[str, str], message: str
) -> None:
    from qa_api.config import ConfigurationError, get_settings

    for variable, value in variables.items():
        monkeypatch.setenv(variable, value)
    get_settings.cache_clear()
    with pytest.raises(ConfigurationError) as refused:
        get_settings()
    get_settings.cache_clear()
    assert message in str(refused.value)


def test_an_empty_variable_is_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    """`QA_X=` in an .env file keeps the default, as .env.example says (unset = the default)."""
    for variable in ("QA_BACKEND", "QA_CORS_ORIGINS", "QA_TOP_K", "QA_API_KEY", "QA_MODELS"):
        monkeypatch.setenv(variable, "")
    settings = Settings()
    assert (settings.backend, settings.cors_origins, settings.top_k) == ("auto", [], 1)
    assert settings.api_key is None
    assert list(settings.models) == ["beto"]


def test_unknown_variables_are_named_with_the_setting_they_look_like() -> None:
    from qa_api.config import unknown_variables

    environ = {"QA_BACKENDS": "torch-fp32", "QA_BACKEND": "auto", "QA_UI_TOP_K": "3", "HOME": "/"}
    assert unknown_variables(environ) == [
        "QA_BACKENDS is not a setting of the backend, ignored; did you mean QA_BACKEND?"
    ]
    assert unknown_variables({"QA_ZZZ": "1"}) == ["QA_ZZZ is not a setting of the backend, ignored"]


def test_an_empty_api_key_is_no_key_and_log_levels_take_any_case(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    """`QA_API_KEY=` in an .env file means no key, as the UI takes it (it sends none)."""
    assert Settings(log_level="debug").log_level == "DEBUG"
    assert Settings(api_key="").api_key is None
    with pytest.raises(ValueError, match="only spaces"):  # meant as a key: never an open API
        Settings(api_key="  ")
    with ready_client(tiny_model_dir, tmp_path, api_key="") as client:
        response = client.post("/v1/qa", json={"context": "Hola, mundo.", "question": "¿Qué?"})
        assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    ("variable", "value", "example"),
    [
        ("QA_MODELS", "beto", """QA_MODELS='{"beto": """),
        ("QA_CORS_ORIGINS", "http://x", """QA_CORS_ORIGINS='["http://localhost:8501"]'"""),
    ],
)
def test_a_setting_that_is_not_json_says_so_with_an_example(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, example: str
) -> None:
    from pydantic_settings import SettingsError

    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError, match=f"^{variable} must be JSON") as refused:
        Settings()
    assert example in str(refused.value)


def test_unknown_paths_and_methods_say_what_the_api_takes(shared_client: TestClient) -> None:
    missing = assert_error(shared_client.post("/v1/answer"), 404, "not_found", "/v1/answer")
    assert "/docs" in missing["error"]
    wrong = assert_error(shared_client.get("/v1/qa"), 405, "method_not_allowed")
    assert wrong["error"] == "/v1/qa takes POST, not GET. See /docs."
    predict = shared_client.get("/v1/models/tiny:predict")
    assert_error(predict, 405, "method_not_allowed", "/v1/models/tiny:predict takes POST, not GET")
    assert predict.headers["allow"] == "POST"


def test_an_empty_model_name_is_refused_not_taken_for_the_default(
    shared_client: TestClient,
) -> None:
    body = {"context": "Hola.", "question": "¿Qué?", "model": ""}
    assert_error(shared_client.post("/v1/qa", json=body), 422, "validation_error", "model")
    assert shared_client.post("/v1/qa", json={**body, "model": None}).status_code == 200


def test_lone_surrogates_are_a_4xx_that_names_the_field(shared_client: TestClient) -> None:
    """Valid JSON may escape half a UTF-16 pair; it is not text and must never cost a 500."""
    headers = {"Content-Type": "application/json"}
    for field in ("model", "context", "question"):
        raw = json.dumps({"context": "Hola.", "question": "¿Qué?", field: "ab\ud83dcd"})
        assert "\\ud83d" in raw  # JSON's escape: the body is valid UTF-8 JSON
        response = shared_client.post("/v1/qa", content=raw.encode(), headers=headers)
        assert_error(response, 422, "validation_error", field, "surrogate")
    unknown_key = shared_client.post("/v1/qa", content=b'{"\\udc00": 1}', headers=headers)
    assert_error(unknown_key, 422, "validation_error")
    # Undecodable bytes in a path come back as U+FFFD, never as a surrogate.
    assert_error(shared_client.get("/v1/models/%ED%A0%BD"), 404, "model_not_found", "\ufffd")


def test_error_messages_echo_only_safe_text() -> None:
    from starlette.requests import Request

    from qa_api.errors import error_response, safe_text

    assert safe_text("a\ud83db\udc00") == "a\ufffdb\ufffd"
    assert safe_text("😀 ñ") == "😀 ñ"
    assert safe_text("a" * 2001) == "a" * 2000 + "… (2001 characters)"
    request = Request({"type": "http", "state": {"request_id": "r-1"}})
    response = error_response(
        request, 404, "model_not_found", "Unknown model '\ud83d'.",
        details=[{"loc": ["body", "\udc00"], "msg": "x\ud800", "type": "t"}],
    )  # fmt: skip
    assert response.body.decode("utf-8") == (
        '{"error":"Unknown model \'\ufffd\'.","code":"model_not_found","request_id":"r-1",'
        '"details":[{"loc":["body","\ufffd"],"msg":"x\ufffd","type":"t"}]}'
    )


def test_a_million_mistakes_are_refused_fast_and_listed_briefly(shared_client: TestClient) -> None:
    """A 4 MiB body can hold a million items or keys; the limit answers before item validation,
    and a validation error lists the first problems, not all of them."""
    items: list[dict[str, str]] = [{}] * 1_000_000
    for path, field in (("/v1/qa/batch", "requests"), ("/v1/models/tiny:predict", "instances")):
        # A 413, not the 422 that validating a million empty items (20 s and more) would give.
        response = shared_client.post(path, json={field: items})
        assert_error(response, 413, "payload_too_large", "1000000 items", "QA_MAX_BATCH_ITEMS")
    keys = {f"k{i}": 1 for i in range(100_000)}
    body = assert_error(
        shared_client.post("/v1/qa", json=keys), 422, "validation_error", "more problems"
    )
    assert len(body["details"]) == 20


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        ("req-1:a.b_C", True),
        ("x" * 64, True),
        ("x" * 65, False),
        ("fake status=200 user=admin", False),
        ("a\tb", False),
        ("", False),
    ],
)
def test_request_id_is_echoed_only_when_short_and_safe(
    shared_client: TestClient, caplog: pytest.LogCaptureFixture, sent: str, kept: bool
) -> None:
    """A client's id is logged: spaces or line breaks would forge log fields or lines."""
    with caplog.at_level("INFO", logger="qa_api"):
        response = shared_client.post("/v1/qa", json={}, headers={"X-Request-ID": sent})
    echoed = response.headers["x-request-id"]
    assert (echoed == sent) is kept
    if not kept:
        assert re.fullmatch(r"[0-9a-f]{32}", echoed)
    assert response.json()["request_id"] == echoed
    (line,) = [r.getMessage() for r in caplog.records if "/v1/qa" in r.getMessage()]
    assert line.startswith(f"request_id={echoed} POST /v1/qa status=422 ")


def test_long_values_are_echoed_clipped(shared_client: TestClient) -> None:
    """A 50 KB model name or field name costs a short error, not a 50 KB one."""
    name = "m" * 50_000  # httpx sends URLs up to 64 KiB
    for response in (
        shared_client.post(
            "/v1/qa", json={"context": CONTEXT, "question": QUESTION, "model": name}
        ),
        shared_client.get(f"/v1/models/{name}"),
        shared_client.post("/v1/qa", json={"context": CONTEXT, "question": QUESTION, name: 1}),
        shared_client.post("/v1/qa", content=b"{}", headers={"Content-Type": name}),
    ):
        body = response.json()
        assert 400 <= response.status_code < 500
        assert f"{'m' * 80}… (50000 characters)" in body["error"], body["error"][:300]
        assert len(response.content) < 3000


def test_a_model_still_loading_says_when_to_retry(make_client: MakeClient) -> None:
    """503 + Retry-After while the model loads (as for a full queue); none once it has failed."""
    client = make_client()
    model = client.app.state.models.models["tiny"]  # type: ignore[attr-defined]
    runtime, model.runtime, model.status = model.runtime, None, "loading"
    try:
        loading = client.post("/v1/qa", json={"context": CONTEXT, "question": QUESTION})
        assert_error(loading, 503, "model_not_ready", "still loading")
        assert int(loading.headers["retry-after"]) >= 1
        model.status, model.error = "failed", "OSError: gone"
        failed = client.post("/v1/qa", json={"context": CONTEXT, "question": QUESTION})
        assert_error(failed, 503, "model_not_ready", "OSError")
        assert "retry-after" not in failed.headers
    finally:
        model.runtime, model.status, model.error = runtime, "ready", None

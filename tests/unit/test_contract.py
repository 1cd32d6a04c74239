"""One contract, checked at the seam without a server: `create_app().openapi()` is the contract.

- the UI client's requests (paths, methods, JSON bodies, form fields) are ones the API declares;
- responses generated from the backend's response models parse in the UI's models, every field
  the UI reads landing with the value the backend sent (a renamed field fails here);
- the e2e contract stub answers bodies the API's schemas accept;
- every endpoint of the OpenAPI document is in docs/api.md.
"""

from __future__ import annotations

import enum
import itertools
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields, is_dataclass
from typing import Any

import pytest
import requests
from jsonschema import Draft202012Validator
from pydantic import BaseModel
from requests.structures import CaseInsensitiveDict

from qa_api.api.models import model_limits
from qa_api.config import Settings
from qa_api.main import create_app
from qa_api.schemas import ErrorResponse, ModelList, ProgressEvent, QAResponse, Readiness
from qa_ui import actions
from qa_ui.client import BackendError, BackendState, QAClient, QARequest, QAResult
from qa_ui.config import UISettings
from qa_ui.examples import EXAMPLES
from qa_ui.testing import SERVED_LIMITS
from tests.e2e import contract_stub
from tests.paths import DATA_DIR

REPO = DATA_DIR.parents[1]

pytestmark = pytest.mark.unit

OPENAPI: dict[str, Any] = create_app(Settings(warmup=False)).openapi()
SCHEMAS: dict[str, Any] = OPENAPI["components"]["schemas"]
# Models the OpenAPI document does not list by name (the stream's events are text/event-stream).
EXTRA_MODELS: tuple[type[BaseModel], ...] = (ProgressEvent,)
EXTRA_SCHEMAS = {
    m.__name__: m.model_json_schema(ref_template="#/components/schemas/{model}")
    for m in EXTRA_MODELS
}
ALL_SCHEMAS = {**SCHEMAS, **EXTRA_SCHEMAS}

# UI fields the backend does not send (measured or added by the client), and UI names for
# backend fields (dotted path in the backend's body).
UI_ONLY = {"QAResult": {"round_trip_ms", "request_id"}}
RENAMED = {
    ("QAResult", "read_windows"): ("passages", "read"),
    ("QAResult", "passages_matched"): ("passages", "matched"),
}


def validator(schema_name: str) -> Draft202012Validator:
    """A JSON-schema validator for one of the API's schemas (OpenAPI 3.1 = JSON Schema 2020-12)."""
    root = {"$ref": f"#/components/schemas/{schema_name}", "components": {"schemas": ALL_SCHEMAS}}
    return Draft202012Validator(root)


def assert_valid(schema_name: str, body: Any) -> None:
    errors = [
        f"{list(e.absolute_path)}: {e.message}" for e in validator(schema_name).iter_errors(body)
    ]
    assert not errors, f"{schema_name}: {errors}"


def request_schema(method: str, path: str, media: str = "application/json") -> dict[str, Any]:
    operation = OPENAPI["paths"][path][method.lower()]
    return operation["requestBody"]["content"][media]["schema"]


def response_schema_name(method: str, path: str, status: str = "200") -> str:
    schema = OPENAPI["paths"][path][method.lower()]["responses"][status]["content"][
        "application/json"
    ]["schema"]
    return str(schema["$ref"]).rsplit("/", 1)[-1]


# ---------------------------------------------------------------- examples from the schemas


class Example:
    """Builds a body for a schema: `full` fills every optional field, else optional ones are null.

    Every number and string is distinct, so a field read under another name shows up.
    """

    def __init__(self, full: bool) -> None:
        self.full = full
        self.counter = itertools.count(1)

    def __call__(self, schema: Mapping[str, Any], name: str = "value") -> Any:
        if "$ref" in schema:
            return self(ALL_SCHEMAS[str(schema["$ref"]).rsplit("/", 1)[-1]], name)
        if "anyOf" in schema:
            options = [s for s in schema["anyOf"] if s.get("type") != "null"]
            nullable = len(options) < len(schema["anyOf"])
            return None if nullable and not self.full else self(options[0], name)
        if "enum" in schema:
            return schema["enum"][next(self.counter) % len(schema["enum"])]
        if "const" in schema:
            return schema["const"]
        kind = schema.get("type")
        if kind == "object":
            properties = schema.get("properties", {})
            if not properties:
                extra = schema.get("additionalProperties", {})
                value = self(extra, name) if isinstance(extra, dict) and extra else "x"
                return {f"{name}-key": value}
            return {key: self(sub, key) for key, sub in properties.items()}
        if kind == "array":
            return [self(schema["items"], name) for _ in range(2)]
        if kind == "string":
            return f"{name}-{next(self.counter)}"
        if kind == "integer":
            return int(schema.get("minimum", 0)) + next(self.counter)
        if kind == "number":
            return next(self.counter) + 0.25
        if kind == "boolean":
            return self.full
        raise AssertionError(f"no example for schema {schema}")


def examples(schema_name: str) -> Iterator[Any]:
    """A full and a sparse body of the schema, each accepted by the schema itself."""
    for full in (True, False):
        body = Example(full)(ALL_SCHEMAS[schema_name], schema_name)
        assert_valid(schema_name, body)
        yield body


def assert_mirrors(ui: Any, backend: Any, where: str) -> None:
    """Every field of the UI's object holds the value the backend sent under that name."""
    if is_dataclass(ui) and not isinstance(ui, type):
        assert isinstance(backend, Mapping), f"{where}: the backend sent {backend!r}"
        kind = type(ui).__name__
        for field in fields(ui):
            if field.name in UI_ONLY.get(kind, ()):
                continue
            value: Any = backend
            for key in RENAMED.get((kind, field.name), (field.name,)):
                assert value is None or key in value, (
                    f"{where}.{field.name}: the backend has no {key!r}"
                )
                value = None if value is None else value[key]
            if value is None and isinstance(getattr(ui, field.name), tuple):
                value = []
            assert_mirrors(getattr(ui, field.name), value, f"{where}.{field.name}")
    elif isinstance(ui, tuple | list):
        assert isinstance(backend, list), f"{where}: the backend sent {backend!r}"
        assert len(ui) == len(backend), where
        for i, (u, b) in enumerate(zip(ui, backend, strict=True)):
            assert_mirrors(u, b, f"{where}[{i}]")
    elif isinstance(ui, enum.Enum):
        assert ui.value == backend, where
    else:
        assert ui == backend, f"{where}: the UI read {ui!r}, the backend sent {backend!r}"


# ---------------------------------------------------------------- the client over a recording session


@dataclass
class Sent:
    method: str
    path: str
    json: Any
    form: dict[str, str] | None


def http_response(
    status: int, body: bytes, content_type: str = "application/json"
) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = body
    response._content_consumed = True  # iter_lines() reads _content
    response.headers = CaseInsensitiveDict({"Content-Type": content_type, "X-Request-ID": "req-1"})
    return response


class Session:
    """Stands in for requests.Session: records each request, answers from a script by path."""

    def __init__(self, answers: Mapping[str, requests.Response]) -> None:
        self.answers = answers
        self.sent: list[Sent] = []
        self.trust_env = True

    def request(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        path = "/" + url.split("/", 3)[3]
        encoder = kwargs.get("data")
        form = {k: str(v) for k, v in encoder.fields.items()} if encoder is not None else None
        self.sent.append(Sent(method, path, kwargs.get("json"), form))
        return self.answers[path]


def client_over(answers: Mapping[str, requests.Response]) -> tuple[QAClient, Session]:
    session = Session(answers)
    settings = UISettings(backend_url="http://127.0.0.1:8008")
    return QAClient(settings, session=session), session  # type: ignore[arg-type]


def sse(*events: tuple[str, Any]) -> bytes:
    return "".join(f"event: {name}\ndata: {json.dumps(data)}\n\n" for name, data in events).encode()


UI_REQUESTS = [
    QARequest("Un texto.", "¿Qué?"),
    QARequest(
        "Un texto.",
        "¿Qué?",
        model="beto",
        top_k=3,
        max_answer_len=12,
        handle_impossible_answer=False,
        passages="bm25",
    ),
    QARequest("Un texto.", "¿Qué?", handle_impossible_answer=None, passages="all"),
]


@pytest.mark.parametrize("request_", UI_REQUESTS, ids=["plain", "every-option", "nulls"])
def test_the_ui_requests_are_what_the_api_declares(request_: QARequest) -> None:
    qa = json.dumps(next(examples("QAResponse"))).encode()
    answers = {
        "/health/ready": http_response(200, json.dumps(next(examples("Readiness"))).encode()),
        "/v1/models": http_response(200, json.dumps(next(examples("ModelList"))).encode()),
        "/v1/qa": http_response(200, qa),
        "/v1/qa/stream": http_response(200, sse(("result", json.loads(qa))), "text/event-stream"),
        "/qas/": http_response(200, b'"Cervantes"'),
    }
    client, session = client_over(answers)
    client.health()
    client.models()
    client.ask(request_)
    actions.read_answer(client, request_)
    actions.compare(client, request_, ["beto"])
    client.ask_form(request_.context, request_.question)

    assert {s.path for s in session.sent} == set(answers)
    for sent in session.sent:
        assert sent.method.lower() in OPENAPI["paths"][sent.path], (sent.method, sent.path)
        if sent.json is not None:
            schema = request_schema(sent.method, sent.path)
            name = str(schema["$ref"]).rsplit("/", 1)[-1]
            assert_valid(name, sent.json)
        if sent.form is not None:
            schema = request_schema(sent.method, sent.path, "multipart/form-data")
            assert set(sent.form) == set(schema["properties"])


@pytest.mark.parametrize("full", [True, False], ids=["full", "nulls"])
def test_answers_generated_from_the_backend_parse_in_the_ui(full: bool) -> None:
    qa, models, ready = (
        list(examples(n))[not full] for n in ("QAResponse", "ModelList", "Readiness")
    )
    progress = list(examples("ProgressEvent"))[not full]
    for name, body in (("QAResponse", qa), ("ModelList", models), ("Readiness", ready)):
        model = {"QAResponse": QAResponse, "ModelList": ModelList, "Readiness": Readiness}[name]
        model.model_validate(body)  # the backend's own models accept the example
    ProgressEvent.model_validate(progress)
    client, _ = client_over(
        {
            "/health/ready": http_response(200, json.dumps(ready).encode()),
            "/v1/models": http_response(200, json.dumps(models).encode()),
            "/v1/qa": http_response(200, json.dumps(qa).encode()),
            "/v1/qa/stream": http_response(
                200, sse(("progress", progress), ("result", qa)), "text/event-stream"
            ),
        }
    )
    assert response_schema_name("POST", "/v1/qa") == "QAResponse"
    assert_mirrors(client.ask(QARequest("c", "q")), qa, "QAResult")
    assert response_schema_name("GET", "/v1/models") == "ModelList"
    assert_mirrors(client.models(), models, "ModelsInfo")
    assert response_schema_name("GET", "/health/ready") == "Readiness"
    health = client.health()
    assert health.state is BackendState.READY
    assert_mirrors(health.models, ready["models"], "BackendHealth.models")
    assert health.reason is None  # a ready backend's reason is not shown
    events = list(client.ask_stream(QARequest("c", "q")))
    assert len(events) == 2
    assert_mirrors(events[0], progress, "Progress")
    assert isinstance(events[1], QAResult)
    assert_mirrors(events[1], qa, "QAResult")


@pytest.mark.parametrize("status", ["422", "413", "503"])
def test_error_bodies_parse_in_the_ui(status: str) -> None:
    assert response_schema_name("POST", "/v1/qa", status) == "ErrorResponse"
    for body in examples("ErrorResponse"):
        ErrorResponse.model_validate(body)
        client, _ = client_over({"/v1/qa": http_response(int(status), json.dumps(body).encode())})
        with pytest.raises(BackendError) as raised:
            client.ask(QARequest("c", "q"))
        assert (raised.value.message, raised.value.code, raised.value.status) == (
            body["error"],
            body["code"],
            int(status),
        )


def test_the_loading_state_parses_in_the_ui() -> None:
    schema = OPENAPI["paths"]["/health/ready"]["get"]["responses"]["503"]["content"][
        "application/json"
    ]["schema"]
    assert schema["$ref"].endswith("/Readiness")
    body = {"status": "failed", "models": {"beto": "failed"}, "reason": "OSError: no model"}
    assert_valid("Readiness", body)
    client, _ = client_over({"/health/ready": http_response(503, json.dumps(body).encode())})
    health = client.health()
    assert (health.state, health.models, health.reason) == (
        BackendState.FAILED,
        body["models"],
        body["reason"],
    )


def test_the_ui_fakes_serve_the_backends_default_limits() -> None:
    """qa_ui.testing's canned /v1/models limits are what a backend with default settings serves."""
    settings = Settings()
    served = model_limits(settings, settings.decoding_defaults()).model_dump()
    assert_mirrors(SERVED_LIMITS, served, "SERVED_LIMITS")


# ---------------------------------------------------------------- the e2e stub speaks the same contract


def test_the_e2e_stub_answers_what_the_api_declares() -> None:
    assert_valid(response_schema_name("GET", "/health/ready"), contract_stub.readiness())
    assert_valid(response_schema_name("GET", "/v1/models"), contract_stub.models())
    assert_valid("ProgressEvent", contract_stub.PROGRESS)
    assert_valid("ErrorResponse", contract_stub.NOT_FOUND)
    for example, model, top_k in itertools.product(EXAMPLES, contract_stub.MODELS, (1, 3)):
        body = QARequest(example.context, example.question, model=model, top_k=top_k).payload()
        assert_valid("QARequest", body)
        assert_valid(response_schema_name("POST", "/v1/qa"), contract_stub.answer(body, model))


# ---------------------------------------------------------------- the docs name every endpoint


def test_docs_name_every_endpoint() -> None:
    docs = (REPO / "docs" / "api.md").read_text(encoding="utf-8")
    missing = [
        f"{method.upper()} {path}"
        for path, operations in OPENAPI["paths"].items()
        for method in operations
        if not re.search(rf"{method.upper()} {re.escape(path)}(?![\w/{{:])", docs)
    ]
    assert not missing, f"docs/api.md does not describe: {missing}"


def test_docs_json_examples_follow_the_schemas() -> None:
    """The response examples under each endpoint's heading are bodies the API could send."""
    docs = (REPO / "docs" / "api.md").read_text(encoding="utf-8")
    sections = {
        "## POST /v1/qa\n": ["QARequest", "QAResponse"],
        "## GET /v1/models": ["ModelList"],
    }
    for heading, schema_names in sections.items():
        section = docs.split(heading, 1)[1].split("\n## ", 1)[0]
        blocks = re.findall(r"```json\n(.*?)```", section, flags=re.DOTALL)[: len(schema_names)]
        assert len(blocks) == len(schema_names), heading
        for block, name in zip(blocks, schema_names, strict=True):
            assert_valid(name, json.loads(block))

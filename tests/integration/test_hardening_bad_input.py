"""Bad input battery against a real backend: every case gets a fast 4xx that says what to change."""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import httpx
import pytest

from tests.processes import ServiceProcess

# A client timeout turns a hang into a failure; a 4xx must come back far sooner than this.
TIMEOUT_S = 20.0
FAST_S = 5.0
CONTEXT = "Miguel de Cervantes nació en Alcalá de Henares en 1547."
QUESTION = "¿Dónde nació Cervantes?"
JSON_HEADERS = {"Content-Type": "application/json"}
# A body that cannot be parsed: the contract's 400 invalid_body, saying what to send.
BAD_BODY = "invalid_body"


BODY_LIMIT = 4 * 1024 * 1024  # QA_MAX_BODY_BYTES default
URLENCODED = "application/x-www-form-urlencoded"
MULTIPART = "multipart/form-data; boundary=xyz"


def _body(**overrides: Any) -> bytes:
    return json.dumps({"context": CONTEXT, "question": QUESTION, **overrides}).encode()


def _urlencoded(fields: dict[str, str]) -> bytes:
    return urlencode(fields).encode()


def _multipart(fields: dict[str, str], part_headers: bytes = b"") -> bytes:
    """A multipart/form-data body with boundary `xyz`, `part_headers` added to every part."""
    parts = [
        b'--xyz\r\nContent-Disposition: form-data; name="%s"\r\n%s\r\n%s\r\n'
        % (name.encode(), part_headers, value.encode())
        for name, value in fields.items()
    ]
    return b"".join(parts) + b"--xyz--\r\n"


@dataclass(frozen=True)
class Case:
    id: str
    content: bytes
    status: int
    code: str
    mentions: tuple[str, ...]
    """Words the error message must contain (case-insensitive): the field or what to change."""
    path: str = "/v1/qa"
    headers: dict[str, str] = field(default_factory=lambda: JSON_HEADERS)


CASES = [
    # Empty and whitespace-only fields.
    Case("empty-context", _body(context=""), 422, "validation_error", ("context",)),
    Case("empty-question", _body(question=""), 422, "validation_error", ("question",)),
    Case(
        "whitespace-context",
        _body(context=" \n\t "),
        422,
        "validation_error",
        ("context", "whitespace"),
    ),
    Case(
        "whitespace-question",
        _body(question="\u3000 \n"),
        422,
        "validation_error",
        ("question", "whitespace"),
    ),
    # The reported case: a question of two zero-width spaces was answered 200.
    Case(
        "invisible-question",
        _body(question="\u200b\u200b"),
        422,
        "validation_error",
        ("question", "readable"),
    ),
    Case(
        "invisible-context",
        _body(context="\u200f\u200b\x00\u0301"),
        422,
        "validation_error",
        ("context", "readable"),
    ),
    Case("missing-fields", b"{}", 422, "validation_error", ("context", "question")),
    Case("empty-body", b"", 422, "validation_error", ("body",)),
    # Huge context, question and body.
    Case(
        "huge-context",
        _body(context="palabra " * 6251),
        413,
        "payload_too_large",
        ("context", "QA_MAX_CONTEXT_CHARS"),
    ),
    Case(
        "huge-question",
        _body(question="¿" + "q" * 1000 + "?"),
        413,
        "payload_too_large",
        ("question", "QA_MAX_QUESTION_CHARS"),
    ),
    Case(
        "huge-body",
        _body(context="palabra " * 600_000),
        413,
        "payload_too_large",
        ("QA_MAX_BODY_BYTES",),
    ),
    # Bodies that are not JSON text.
    Case("binary-body", bytes(range(256)) * 4, 400, BAD_BODY, ("JSON",)),
    Case(
        "invalid-utf8",
        b'{"context": "\xff\xfe Cervantes \xc3\x28", "question": "x"}',
        400,
        BAD_BODY,
        ("UTF-8", "JSON"),
    ),
    Case("truncated-json", b'{"context": "a", "question": ', 400, BAD_BODY, ("JSON",)),
    Case("cut-json", b'{"context":', 400, BAD_BODY, ("not valid JSON", "character 11")),
    # Limits of the JSON reader itself: named, never a generic 400.
    Case(
        "deeply-nested-json",
        b"[" * 100_000 + b"]" * 100_000,
        413,
        "payload_too_large",
        ("JSON", "nests"),
    ),
    Case(
        "number-with-too-many-digits",
        b'{"context": "a", "question": "b", "top_k": ' + b"7" * 5000 + b"}",
        413,
        "payload_too_large",
        ("digits",),
    ),
    Case(
        "lone-surrogate",
        b'{"context": "Cervantes \\ud800 naci\\u00f3", "question": "x"}',
        422,
        "validation_error",
        ("context", "surrogate"),
    ),
    # The reported case: a lone surrogate in `model` was a 500 (the echo could not be encoded).
    Case(
        "lone-surrogate-model",
        _body(model="\ud83d"),
        422,
        "validation_error",
        ("model", "surrogate"),
    ),
    # Wrong content types.
    Case(
        "text-plain",
        _body(),
        415,
        "unsupported_media_type",
        ("application/json",),
        headers={"Content-Type": "text/plain"},
    ),
    Case(
        "text-json",  # FastAPI would not parse it: refused for its type, not for its fields
        _body(),
        415,
        "unsupported_media_type",
        ("application/json",),
        headers={"Content-Type": "text/json"},
    ),
    Case(
        "form-urlencoded",
        b"context=a&question=b",
        415,
        "unsupported_media_type",
        ("application/json",),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    ),
    Case(
        "no-content-type",
        _body(),
        415,
        "unsupported_media_type",
        ("application/json",),
        headers={},
    ),
    # Wrong JSON types.
    Case("context-number", _body(context=123), 422, "validation_error", ("context", "string")),
    Case("question-list", _body(question=["a"]), 422, "validation_error", ("question",)),
    Case("top_k-string", _body(top_k="tres"), 422, "validation_error", ("top_k",)),
    Case("top_k-float", _body(top_k=1.5), 422, "validation_error", ("top_k",)),
    # JSON has numbers and booleans: a string or 0/1 in their place is a client bug, not a value.
    Case("top_k-numeric-string", _body(top_k="3"), 422, "validation_error", ("top_k",)),
    Case(
        "handle_impossible-number",
        _body(handle_impossible_answer=0),
        422,
        "validation_error",
        ("handle_impossible_answer",),
    ),
    Case(
        "top_k-nan",
        b'{"context": "a", "question": "b", "top_k": NaN}',
        422,
        "validation_error",
        ("top_k",),
    ),
    Case("body-list", b"[]", 422, "validation_error", ("object",)),
    Case("body-string", b'"hola"', 422, "validation_error", ("object",)),
    Case("unknown-field", _body(contxt="x"), 422, "validation_error", ("contxt",)),
    Case(
        "handle_impossible-string",
        _body(handle_impossible_answer="quizás"),
        422,
        "validation_error",
        ("handle_impossible_answer",),
    ),
    # Unknown model names.
    Case("unknown-model", _body(model="gpt-17"), 404, "model_not_found", ("gpt-17", "tiny")),
    Case(
        "unknown-model-predict",
        json.dumps({"instances": [{"context": CONTEXT, "question": QUESTION}]}).encode(),
        404,
        "model_not_found",
        ("nope", "tiny"),
        path="/v1/models/nope:predict",
    ),
    # Options out of range.
    Case("top_k-zero", _body(top_k=0), 422, "validation_error", ("top_k",)),
    Case("top_k-negative", _body(top_k=-3), 422, "validation_error", ("top_k",)),
    Case("top_k-over-max", _body(top_k=11), 422, "validation_error", ("top_k", "10")),
    Case("top_k-astronomic", _body(top_k=10**40), 422, "validation_error", ("top_k",)),
    Case("max_seq_len-over", _body(max_seq_len=4096), 422, "validation_error", ("max_seq_len",)),
    Case(
        "doc_stride-too-big",
        _body(doc_stride=500, max_seq_len=64),
        422,
        "validation_error",
        ("doc_stride",),
    ),
    Case(
        "max_answer_len-zero", _body(max_answer_len=0), 422, "validation_error", ("max_answer_len",)
    ),
    # Batch and predict bodies.
    Case(
        "batch-empty",
        b'{"requests": []}',
        422,
        "validation_error",
        ("requests",),
        path="/v1/qa/batch",
    ),
    Case(
        "batch-too-many",
        json.dumps({"requests": [{"context": CONTEXT, "question": QUESTION}] * 33}).encode(),
        413,
        "payload_too_large",
        ("QA_MAX_BATCH_ITEMS",),
        path="/v1/qa/batch",
    ),
    Case(
        "batch-bad-item",
        json.dumps(
            {"requests": [{"context": CONTEXT, "question": QUESTION}, {"context": CONTEXT}]}
        ).encode(),
        422,
        "validation_error",
        ("requests.1.question",),
        path="/v1/qa/batch",
    ),
    Case(
        "predict-whitespace",
        json.dumps({"instances": [{"context": " ", "question": QUESTION}]}).encode(),
        422,
        "validation_error",
        ("instances.0.context",),
        path="/v1/models/tiny:predict",
    ),
    # The original demo endpoint.
    Case(
        "qas-no-fields",
        b"",
        422,
        "validation_error",
        ("context", "question"),
        path="/qas/",
        headers={},
    ),
    Case(
        "qas-truncated-multipart",
        _multipart({"context": CONTEXT, "question": QUESTION})[:-12],
        400,
        BAD_BODY,
        ("cut short", "form fields"),
        path="/qas/",
        headers={"Content-Type": MULTIPART},
    ),
    Case(
        "qas-broken-multipart",
        b"--xyz\r\nnot a part",
        400,
        BAD_BODY,
        ("form fields",),
        path="/qas/",
        headers={"Content-Type": "multipart/form-data; boundary=xyz"},
    ),
    # Size limits whatever the encoding: 413 with the real reason. Starlette's own form limits
    # (1 MiB a part, 1000 fields) and python-multipart's (8 headers a part, 4 KiB a header, 256
    # bytes of boundary) used to answer a generic 400.
    *(
        Case(
            f"qas-{kind}-{name}",
            content,
            413,
            "payload_too_large",
            mentions,
            path="/qas/",
            headers={"Content-Type": content_type},
        )
        for kind, (content_type, encode) in {
            "urlencoded": (URLENCODED, _urlencoded),
            "multipart": (MULTIPART, _multipart),
        }.items()
        for name, content, mentions in [
            ("over-body-limit", encode({"context": "a" * BODY_LIMIT}), ("QA_MAX_BODY_BYTES",)),
            (
                "field-over-1mib",
                encode({"context": "palabra " * 200_000, "question": QUESTION}),
                ("context", "QA_MAX_CONTEXT_CHARS"),
            ),
            ("1001-fields", encode({f"f{i}": "x" for i in range(1001)}), ("fields",)),
            ("17-fields", encode({f"f{i}": "x" for i in range(17)}), ("fields",)),
        ]
    ),
    Case(
        "qas-multipart-9-part-headers",
        _multipart({"context": CONTEXT}, b"".join(b"X-H%d: v\r\n" % i for i in range(8))),
        413,
        "payload_too_large",
        ("headers",),
        path="/qas/",
        headers={"Content-Type": MULTIPART},
    ),
    Case(
        "qas-multipart-5kib-part-header",
        _multipart({"context": CONTEXT}, b"X-Big: " + b"v" * 5000 + b"\r\n"),
        413,
        "payload_too_large",
        ("header", "bytes"),
        path="/qas/",
        headers={"Content-Type": MULTIPART},
    ),
    Case(
        "qas-multipart-300-byte-boundary",
        b"--" + b"b" * 300 + b"--\r\n",
        413,
        "payload_too_large",
        ("boundary",),
        path="/qas/",
        headers={"Content-Type": "multipart/form-data; boundary=" + "b" * 300},
    ),
]


@pytest.fixture(scope="module")
def client(backend_server: ServiceProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=backend_server.url, timeout=TIMEOUT_S) as client:
        yield client


def assert_error(
    response: httpx.Response, status: int, code: str, mentions: tuple[str, ...]
) -> None:
    """The contract's error shape (docs/api.md), with a message that names what to change."""
    body = response.json()
    assert response.status_code == status, response.text
    assert body["code"] == code, body
    assert response.headers["content-type"] == "application/json"
    assert set(body) <= {"error", "code", "request_id", "details"}, body
    assert isinstance(body["error"], str)
    assert body["request_id"] == response.headers["x-request-id"]
    assert "Traceback" not in body["error"]
    for word in mentions:
        assert word.lower() in body["error"].lower(), f"{word!r} not in {body['error']!r}"


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_gets_a_clear_4xx(client: httpx.Client, case: Case) -> None:
    started = time.monotonic()
    response = client.post(case.path, content=case.content, headers=case.headers)
    assert time.monotonic() - started < FAST_S
    assert_error(response, case.status, case.code, case.mentions)
    assert client.get("/health/live").status_code == 200


def test_request_id_is_echoed_on_errors(client: httpx.Client) -> None:
    response = client.post("/v1/qa", content=b"{}", headers={**JSON_HEADERS, "X-Request-ID": "r-1"})
    assert_error(response, 422, "validation_error", ("context",))
    assert response.json()["request_id"] == "r-1"


def test_html_in_the_context_comes_back_as_inert_json_data(client: httpx.Client) -> None:
    context = (
        '<script>alert("xss")</script> <img src=x onerror=alert(1)> Cervantes nació en Alcalá.'
    )
    response = client.post("/v1/qa", content=_body(context=context, top_k=5), headers=JSON_HEADERS)
    assert response.status_code == 200, response.text
    # Served as data, never as a page a browser would render.
    assert response.headers["content-type"] == "application/json"
    answers = response.json()["answers"]
    assert answers
    for answer in answers:
        assert context[answer["start"] : answer["end"]] == answer["answer"]
    reflected = client.post(
        "/v1/qa", content=_body(model="<script>x</script>"), headers=JSON_HEADERS
    )
    assert_error(reflected, 404, "model_not_found", ("<script>x</script>",))


def test_control_characters_are_answered_not_crashing(client: httpx.Client) -> None:
    context = "Cervantes\x00 nació\x07 en\u200b Alcalá 😀 de Henares\r\n."
    response = client.post("/v1/qa", content=_body(context=context), headers=JSON_HEADERS)
    assert response.status_code == 200, response.text
    for answer in response.json()["answers"]:
        assert context[answer["start"] : answer["end"]] == answer["answer"]


def test_url_over_the_http_parsers_limit_is_a_413(backend_server: ServiceProcess) -> None:
    """/qas/ takes its texts from the query string too. httptools refuses a URL over 64 KiB
    before the app runs; the server's protocol class (qa_api.http_protocol) says so as a 413."""
    url = urlsplit(backend_server.url)
    connection = http.client.HTTPConnection(url.hostname or "", url.port, timeout=TIMEOUT_S)
    try:  # http.client, as httpx refuses URLs this long before sending them
        connection.request("POST", f"/qas/?question=q&context={'a' * 100_000}")
        response = connection.getresponse()
        status, headers, body = response.status, response.headers, json.loads(response.read())
    finally:
        connection.close()
    assert (status, body["code"]) == (413, "payload_too_large"), body
    assert "query string" in body["error"]
    assert body["request_id"] == headers["x-request-id"]
    assert headers["content-type"] == "application/json"


def _chunked_413(backend_server: ServiceProcess) -> bytes:
    """Stream a chunked JSON body past the limit; what the server answered (status line on)."""
    url = urlsplit(backend_server.url)
    chunk = b"a" * (1024 * 1024)
    received = b""
    with socket.create_connection((url.hostname, url.port), timeout=TIMEOUT_S) as sock:
        sock.sendall(
            b"POST /v1/qa HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        sent = 0
        # Never send the final chunk: a server that buffers the whole body waits forever.
        with contextlib.suppress(OSError):  # the server may answer and close mid-upload
            while sent <= BODY_LIMIT + len(chunk):
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                sent += len(chunk)
        sock.settimeout(FAST_S)
        with contextlib.suppress(TimeoutError, ConnectionError):
            while not received.endswith(b"}") and (data := sock.recv(4096)):
                received += data
    assert received, f"no answer after {sent} streamed bytes (limit {BODY_LIMIT}): body is buffered"
    return received


def test_streamed_body_over_the_limit_is_cut_off(
    backend_server: ServiceProcess, client: httpx.Client
) -> None:
    """A chunked body has no Content-Length: the limit must hold while it streams in, and say
    the same as when the length is declared (one place answers both)."""
    received = _chunked_413(backend_server)
    assert received.startswith(b"HTTP/1.1 413"), received[:300]
    streamed = json.loads(received.partition(b"\r\n\r\n")[2])
    declared = client.post("/v1/qa", content=_body(context="a" * BODY_LIMIT), headers=JSON_HEADERS)
    assert_error(declared, 413, "payload_too_large", ("QA_MAX_BODY_BYTES",))
    assert streamed["error"] == declared.json()["error"]


# How a lone surrogate travels where JSON's \\ud83d escape does not exist: its UTF-8-style bytes
# (what Python's "surrogatepass" writes), percent-encoded in URLs and forms, raw in multipart.
SURROGATE_BYTES = "\ud83d".encode("utf-8", "surrogatepass")
SAMPLE = {"context": CONTEXT, "question": QUESTION, "model": "tiny", "name": "tiny"}


def _resolve(spec: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = spec["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]]
    options = [o for o in node.get("anyOf", []) if o.get("type") != "null"]
    return _resolve(spec, options[0]) if options else node


def _instance(spec: dict[str, Any], node: dict[str, Any], name: str = "") -> Any:
    """A small valid value for a schema: required properties, one array item, sample strings."""
    node = _resolve(spec, node)
    kind = node.get("type")
    if kind == "object":
        required = node.get("required", list(node.get("properties", {})))
        return {k: _instance(spec, node["properties"][k], k) for k in required}
    if kind == "array":
        return [_instance(spec, node["items"], name)]
    if kind == "string":
        return SAMPLE.get(name, "x")
    return {"integer": 1, "number": 1.0, "boolean": True}.get(str(kind))


def _string_paths(spec: dict[str, Any], node: dict[str, Any]) -> list[tuple[str | int, ...]]:
    """Where strings go in a value of this schema, optional properties included."""
    node = _resolve(spec, node)
    if node.get("type") == "object":
        return [
            (key, *rest)
            for key, child in node.get("properties", {}).items()
            for rest in _string_paths(spec, child)
        ]
    if node.get("type") == "array":
        return [(0, *rest) for rest in _string_paths(spec, node["items"])]
    return [()] if node.get("type") == "string" else []


def _set(value: Any, path: tuple[str | int, ...], leaf: str) -> Any:
    if not path:
        return leaf
    head, *rest = path
    if isinstance(value, list):
        return [_set(value[0] if value else {}, tuple(rest), leaf)]
    return {**value, head: _set(value.get(head, {}), tuple(rest), leaf)}


def _surrogate_requests(spec: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(what, httpx request arguments) with a lone surrogate in one string of one operation."""
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            params = operation.get("parameters", [])
            url = path.replace("{name}", "tiny")
            for param in params:
                if _resolve(spec, param["schema"]).get("type") != "string":
                    continue
                what = f"{method.upper()} {path} {param['in']} {param['name']}"
                if param["in"] == "path":
                    bad_url = path.replace("{" + param["name"] + "}", quote(SURROGATE_BYTES))
                    yield what, {"method": method, "url": bad_url}
                elif param["in"] == "query":
                    query = urlencode({param["name"]: SURROGATE_BYTES})
                    yield what, {"method": method, "url": f"{url}?{query}"}
                elif param["in"] == "header":
                    headers = {param["name"]: SURROGATE_BYTES}
                    yield what, {"method": method, "url": url, "headers": headers}
            for media, content in operation.get("requestBody", {}).get("content", {}).items():
                base = _instance(spec, content["schema"])
                for where in _string_paths(spec, content["schema"]):
                    what = f"{method.upper()} {path} {media} {'.'.join(map(str, where))}"
                    bad = _set(base, where, "ab\ud83dcd")
                    if media == "application/json":
                        body = json.dumps(bad).encode()  # \\ud83d: valid UTF-8 JSON
                    elif media == URLENCODED:
                        body = urlencode(
                            {k: v.encode("utf-8", "surrogatepass") for k, v in bad.items()}
                        ).encode()
                    else:
                        media = MULTIPART
                        body = (
                            b"".join(
                                b'--xyz\r\nContent-Disposition: form-data; name="%s"\r\n\r\n%s\r\n'
                                % (k.encode(), v.encode("utf-8", "surrogatepass"))
                                for k, v in bad.items()
                            )
                            + b"--xyz--\r\n"
                        )
                    yield (
                        what,
                        {
                            "method": method,
                            "url": url,
                            "content": body,
                            "headers": {"Content-Type": media},
                        },
                    )


def test_lone_surrogates_in_every_string_field_of_every_endpoint(client: httpx.Client) -> None:
    """Walks the served OpenAPI schema, so a new endpoint or field is covered as it appears."""
    spec = client.get("/openapi.json").json()
    sent = list(_surrogate_requests(spec))
    assert len(sent) >= 20, [what for what, _ in sent]  # the walk found the API's strings
    failures = []
    for what, request in sent:
        response = client.request(**request)
        if response.status_code >= 500:
            failures.append(f"{what}: {response.status_code} {response.text[:200]}")
        elif response.status_code >= 400:
            body = response.json()  # valid JSON and UTF-8: the echo was made safe
            assert set(body) >= {"error", "code", "request_id"}, (what, body)
        if "application/json" in what and response.status_code != 404:
            # In JSON the surrogate arrives as such: refused, naming the problem.
            assert response.status_code == 422, (what, response.text)
            assert "surrogate" in response.json()["error"], (what, response.text)
    assert not failures, failures


def test_service_answers_normally_after_the_battery(client: httpx.Client) -> None:
    response = client.post("/v1/qa", content=_body(), headers=JSON_HEADERS)
    assert response.status_code == 200, response.text
    assert response.json()["model"] == "tiny"
    assert client.get("/health/ready").json()["status"] == "ready"


def test_invalid_settings_stop_the_process_saying_what_to_fix(
    start_backend_process: Any,
) -> None:
    """A bad environment is the operator's input: one line per setting, no traceback, exit 1."""
    backend = start_backend_process(
        env={"QA_BACKEND": "fastest", "QA_MAX_SEQ_LEN": "many", "QA_TOP_K": "3"}, wait=False
    )
    assert backend.proc.wait(timeout=60) == 1
    log = backend.log()
    assert "Invalid configuration; fix these settings and start again:" in log
    assert "QA_BACKEND: Input should be 'auto'," in log
    assert "(got 'fastest')" in log
    assert "QA_MAX_SEQ_LEN: Input should be a valid integer" in log
    assert "(got 'many')" in log
    assert "QA_TOP_K" not in log  # valid settings are not blamed
    assert "Traceback" not in log


def test_settings_that_contradict_each_other_are_named(start_backend_process: Any) -> None:
    backend = start_backend_process(env={"QA_TOP_K": "50"}, wait=False)
    assert backend.proc.wait(timeout=60) == 1
    assert "QA_TOP_K (50) must be at most QA_MAX_TOP_K (10)" in backend.log()
    assert "Traceback" not in backend.log()


def test_a_mistyped_variable_is_warned_of_at_start(start_backend_process: Any) -> None:
    backend = start_backend_process(env={"QA_MAX_CONTEXT_CHAR": "100"})
    assert (
        "QA_MAX_CONTEXT_CHAR is not a setting of the backend, ignored; "
        "did you mean QA_MAX_CONTEXT_CHARS?" in backend.log()
    )

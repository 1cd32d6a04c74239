"""qa-eval machinery: SQuAD loading, the /v1/qa client (retries, errors), the runner, the report."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from qa_api.evaluation.api_client import ApiPredictor, answer_from_response
from qa_api.evaluation.cli import main
from qa_api.evaluation.dataset import DatasetError, Question, load_squad, parse_squad
from qa_api.evaluation.report import format_table, latency_stats, percentile
from qa_api.evaluation.runner import Answer, PredictionError, run_predictions
from tests.paths import SQUAD_V1_SAMPLE, SQUAD_V2_SAMPLE

pytestmark = pytest.mark.unit


# --- dataset ------------------------------------------------------------------------------------


def test_load_squad_v2_keeps_file_order_and_limit() -> None:
    ds = load_squad(SQUAD_V2_SAMPLE, limit=40)
    assert ds.version == "2.0"
    assert len(ds.questions) == 40
    first = ds.questions[0]
    assert first.qid == "56ddde6b9a695914005b9628"
    assert first.question == "¿En qué país se encuentra Normandía?"
    assert first.answers == ("Francia",) * 4
    assert first.context.startswith("Los normandos")
    raw = json.loads(SQUAD_V2_SAMPLE.read_text(encoding="utf-8"))
    impossible = {
        qa["id"]
        for article in raw["data"]
        for p in article["paragraphs"]
        for qa in p["qas"]
        if qa["is_impossible"]
    }
    unanswerable = {q.qid for q in ds.questions if not q.answers}
    assert unanswerable == impossible & set(ds.gold)
    assert 0 < ds.num_unanswerable == len(unanswerable) < 40


def test_load_squad_v1() -> None:
    ds = load_squad(SQUAD_V1_SAMPLE, limit=5)
    assert (ds.version, len(ds.questions), ds.num_unanswerable) == ("1.1", 5, 0)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"data": [{"paragraphs": [{"context": "c"}]}]}, "missing or malformed field: 'qas'"),
        ({"data": []}, "no questions"),
        ([1, 2], "not a SQuAD JSON file"),
    ],
)
def test_parse_squad_rejects_other_json(raw: Any, message: str) -> None:
    with pytest.raises(DatasetError, match=message):
        parse_squad(raw)


def test_parse_squad_rejects_duplicate_ids() -> None:
    qa = {"id": "x", "question": "q", "answers": []}
    raw = {"data": [{"paragraphs": [{"context": "c", "qas": [qa, qa]}]}]}
    with pytest.raises(DatasetError, match="duplicate question id 'x'"):
        parse_squad(raw)


def test_cli_reports_unreadable_files(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    assert main([str(bad), "--predictions", str(bad)]) == 2
    assert "is not valid JSON" in caplog.text
    assert main([str(tmp_path / "missing.json"), "--predictions", str(bad)]) == 2
    assert "cannot read" in caplog.text


# --- report -------------------------------------------------------------------------------------


def test_percentile_matches_linear_interpolation() -> None:
    values = [float(v) for v in range(1, 101)]  # 1..100
    assert percentile(values, 50) == pytest.approx(50.5)
    assert percentile(values, 90) == pytest.approx(90.1)
    assert percentile(values, 99) == pytest.approx(99.01)
    assert percentile([7.0], 99) == 7.0
    assert latency_stats([3.0, 1.0, 2.0]) == {
        "mean": 2.0,
        "p50": 2.0,
        "p90": pytest.approx(2.8),
        "p99": pytest.approx(2.98),
        "max": 3.0,
    }
    assert latency_stats([])["p50"] is None


# --- /v1/qa client against a scripted HTTP server -----------------------------------------------

Reply = tuple[int, dict[str, Any], dict[str, str]]


class ScriptedServer:
    """A loopback HTTP server answering from `handler(method, path, body, headers)`."""

    def __init__(self, handler: Callable[[str, str, Any, dict[str, str]], Reply]) -> None:
        self.requests: list[tuple[str, str, Any, dict[str, str]]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _reply(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                headers = {k.lower(): v for k, v in self.headers.items()}
                outer.requests.append((self.command, self.path, body, headers))
                status, payload, extra = handler(self.command, self.path, body, headers)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for key, value in extra.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _reply

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> ScriptedServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


MODELS: dict[str, Any] = {
    "default": "beto",
    "models": [
        {
            "name": "beto",
            "model_id": "org/model",
            "status": "ready",
            "ready": True,
            "error": None,
            "backend": "onnx-int8",
            "device": "cpu",
            "dtype": "int8",
        }
    ],
}


def qa_reply(answer: str, no_answer: bool = False, na_prob: float = 0.25) -> dict[str, Any]:
    return {
        "model": "beto",
        "answers": [{"answer": answer, "score": 0.5, "start": 0, "end": len(answer)}],
        "no_answer": no_answer,
        "no_answer_probability": na_prob,
        "num_windows": 1,
        "timings": {"total_ms": 1.0},
    }


def test_answer_from_response_follows_no_answer() -> None:
    assert answer_from_response(qa_reply("Francia")) == Answer("Francia", 0.25)
    assert answer_from_response(qa_reply("Francia", no_answer=True, na_prob=0.9)) == Answer("", 0.9)
    assert answer_from_response({"answers": [], "no_answer": False}) == Answer("", 0.0)


QUESTION = Question("q1", "Los normandos vivían en Francia.", "¿Dónde?", ("Francia",))


def test_api_predictor_retries_overload_then_answers() -> None:
    calls: list[int] = []

    def handler(method: str, path: str, body: Any, headers: dict[str, str]) -> Reply:
        calls.append(1)
        if len(calls) == 1:
            return 503, {"error": "busy", "code": "overloaded"}, {"Retry-After": "0"}
        return 200, qa_reply("Francia"), {}

    with ScriptedServer(handler) as server:
        predictor = ApiPredictor(server.url, model="beto", api_key="k3y")
        assert predictor.predict(QUESTION) == Answer("Francia", 0.25)

    method, path, body, headers = server.requests[-1]
    assert (method, path, len(server.requests)) == ("POST", "/v1/qa", 2)
    assert body == {"context": QUESTION.context, "question": "¿Dónde?", "model": "beto"}
    assert headers["x-api-key"] == "k3y"
    assert headers["x-request-id"] == "qa-eval-q1"


def test_api_predictor_does_not_retry_client_errors() -> None:
    def handler(method: str, path: str, body: Any, headers: dict[str, str]) -> Reply:
        return 404, {"error": "model 'x' is not served", "code": "model_not_found"}, {}

    with ScriptedServer(handler) as server:
        with pytest.raises(PredictionError, match="HTTP 404: model 'x' is not served"):
            ApiPredictor(server.url, model="x").predict(QUESTION)
        assert len(server.requests) == 1


def test_api_predictor_gives_up_on_a_dead_server() -> None:
    with ScriptedServer(lambda *a: (200, {}, {})) as server:
        url = server.url
    with pytest.raises(PredictionError, match="POST /v1/qa"):
        ApiPredictor(url, retries=1).predict(QUESTION)


def test_describe_finds_the_default_model_and_checks_readiness() -> None:
    not_ready = {**MODELS["models"][0], "status": "loading", "ready": False}
    loading = {"default": "beto", "models": [not_ready]}
    replies = iter([MODELS, loading])

    with ScriptedServer(lambda *a: (200, next(replies), {})) as server:
        assert ApiPredictor(server.url).describe()["backend"] == "onnx-int8"
        with pytest.raises(PredictionError, match="'beto' is not ready"):
            ApiPredictor(server.url).describe()


# --- runner and CLI (API mode, scripted server) -------------------------------------------------


class FlakyPredictor:
    def predict(self, question: Question) -> Answer:
        if question.qid == "bad":
            raise PredictionError("boom")
        return Answer(question.qid.upper(), 0.5)


def test_run_predictions_keeps_order_and_records_failures() -> None:
    questions = [Question(qid, "c", "q", ()) for qid in ["a", "bad", "b", "c"]]
    result = run_predictions(FlakyPredictor(), questions, concurrency=3, progress=False)
    assert result.predictions == {"a": "A", "b": "B", "c": "C"}
    assert list(result.latencies_ms) == ["a", "b", "c"]
    assert result.failures == {"bad": "boom"}
    assert result.wall_s > 0


@pytest.fixture
def squad_slice(tmp_path: Path) -> Path:
    raw = json.loads(SQUAD_V2_SAMPLE.read_text(encoding="utf-8"))
    paragraph = raw["data"][0]["paragraphs"][0]
    raw["data"] = [{"title": "Normanos", "paragraphs": [paragraph]}]
    path = tmp_path / "slice.json"
    path.write_text(json.dumps(raw, ensure_ascii=False), encoding="utf-8")
    return path


def test_cli_api_mode_with_scripted_server(
    squad_slice: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A server that answers "Francia" to everything: EM is then known exactly."""
    ds = load_squad(squad_slice)

    def handler(method: str, path: str, body: Any, headers: dict[str, str]) -> Reply:
        if path == "/v1/models":
            return 200, MODELS, {}
        return 200, qa_reply("Francia", na_prob=0.1), {}

    with ScriptedServer(handler) as server:
        rc = main(
            [
                str(squad_slice),
                "--api-url",
                server.url,
                "--concurrency",
                "3",
                "--output",
                str(tmp_path / "preds.json"),
                "--na-prob-output",
                str(tmp_path / "na.json"),
                "--report",
                str(tmp_path / "report.json"),
                "--no-progress",
            ]
        )

    assert rc == 0
    preds = json.loads((tmp_path / "preds.json").read_text(encoding="utf-8"))
    assert preds == {q.qid: "Francia" for q in ds.questions}
    na = json.loads((tmp_path / "na.json").read_text(encoding="utf-8"))
    assert na == {q.qid: 0.1 for q in ds.questions}
    report = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    n = len(ds.questions)
    right = sum(1 for q in ds.questions if "Francia" in q.answers)
    assert right >= 1
    assert report["metrics"]["exact"] == pytest.approx(100 * right / n)
    assert report["metrics"]["NoAns_exact"] == 0.0
    assert report["metrics"]["total"] == n
    assert report["metrics"]["HasAns_total"] + report["metrics"]["NoAns_total"] == n
    assert report["mode"] == "api"
    assert (report["model"], report["backend"]) == ("beto", "onnx-int8 (cpu, int8)")
    assert report["concurrency"] == 3
    assert report["failed"] == 0
    assert report["throughput_qps"] > 0
    assert set(report["latency_ms"]) == {"mean", "p50", "p90", "p99", "max"}
    assert report["latency_ms"]["p50"] <= report["latency_ms"]["p99"]
    out = capsys.readouterr().out
    assert out == format_table(report)
    assert "NoAns_exact" in out
    assert "throughput (q/s)" in out


def test_cli_api_mode_counts_failed_questions(
    squad_slice: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ds = load_squad(squad_slice)
    failing = ds.questions[1].qid

    def handler(method: str, path: str, body: Any, headers: dict[str, str]) -> Reply:
        if path == "/v1/models":
            return 200, MODELS, {}
        if headers["x-request-id"] == f"qa-eval-{failing}":
            return 500, {"error": "Internal error", "code": "internal_error"}, {}
        return 200, qa_reply("", no_answer=True), {}

    report_path = tmp_path / "report.json"
    with ScriptedServer(handler) as server:
        argv = [str(squad_slice), "--api-url", server.url, "--report", str(report_path)]
        assert main([*argv, "--no-progress"]) == 1

    report = json.loads(report_path.read_text(encoding="utf-8"))
    assert report["failed"] == 1
    assert report["failures"] == {failing: "POST /v1/qa: HTTP 500: Internal error"}
    assert report["metrics"]["total"] == len(ds.questions) - 1
    assert re.search(r"^failed questions +1$", capsys.readouterr().out, re.MULTILINE)


def test_cli_api_mode_stops_when_model_is_unknown(
    squad_slice: Path, caplog: pytest.LogCaptureFixture
) -> None:
    def handler(method: str, path: str, body: Any, headers: dict[str, str]) -> Reply:
        return 404, {"error": "model 'nope' is not served", "code": "model_not_found"}, {}

    with ScriptedServer(handler) as server:
        rc = main([str(squad_slice), "--api-url", server.url, "--model", "nope", "--no-progress"])
        assert [r[1] for r in server.requests] == ["/v1/models/nope"]
    assert rc == 2
    assert "model 'nope' is not served" in caplog.text

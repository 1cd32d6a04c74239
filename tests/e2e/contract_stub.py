"""A scripted backend that speaks docs/api.md with the answers a trained model gives.

The tiny test model has random weights, so it never says "no answer" and its spans are noise.
This stub, run as a real process (`python -m tests.e2e.contract_stub PORT`), lets the browser
test check and photograph the answer, alternatives, no-answer and compare views.
"""

from __future__ import annotations

import json
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from qa_api.api.models import model_limits
from qa_api.config import Settings
from qa_ui.examples import EXAMPLES

MODELS = {"beto": 1.0, "beto-onnx-int8": 0.97}
# Other spans a trained model ranks below the expected answer, per example.
RUNNERS_UP = {
    "quijote": ["Cervantes", "Alonso Quijano"],
    "amazonas": ["océano Atlántico", "norte de Brasil"],
    "penicilina": ["septiembre de 1928", "1940"],
    "alhambra": ["nazarí", "Reyes Católicos"],
    "sin_respuesta": ["Andes peruanos"],
}


def answer(body: dict[str, Any], model: str) -> dict[str, Any]:
    context, question = body["context"], body["question"]
    factor = MODELS[model]
    example = next((e for e in EXAMPLES if e.context == context and e.question == question), None)
    spans: list[tuple[str, float]] = []
    no_answer = False
    if example is None or example.expected is None:
        no_answer = bool(body.get("handle_impossible_answer", True))
        spans = [(text, 0.03) for text in RUNNERS_UP["sin_respuesta"] if text in context]
    else:
        spans = [(example.expected, 0.93 * factor)]
        spans += [
            (t, s * factor) for t, s in zip(RUNNERS_UP[example.key], (0.04, 0.02), strict=False)
        ]
    answers = []
    for text, score in spans[: body.get("top_k") or Settings().top_k]:
        start = context.index(text)
        answers.append(
            {"answer": text, "score": round(score, 4), "start": start, "end": start + len(text)}
        )
    inference = 38.2 if model == "beto" else 14.9
    return {
        "model": model,
        "answers": answers,
        "no_answer": no_answer,
        "no_answer_probability": 0.94 if no_answer else 0.02,
        "num_windows": 1,
        "timings": {
            "queue_ms": 0.2,
            "tokenize_ms": 1.4,
            "inference_ms": inference,
            "decode_ms": 0.5,
            "total_ms": round(inference + 2.1, 1),
        },
        "passages": None,
    }


def readiness() -> dict[str, Any]:
    return {"status": "ready", "models": dict.fromkeys(MODELS, "ready"), "reason": None}


def models() -> dict[str, Any]:
    """`GET /v1/models` with the limits a backend with the default settings serves."""
    limits = model_limits(Settings(), Settings().decoding_defaults()).model_dump()
    return {
        "default": "beto",
        "models": [
            {
                "name": name,
                "model_id": f"stub/{name}",
                "revision": "local",
                "status": "ready",
                "ready": True,
                "error": None,
                "backend": "torch",
                "device": "cpu",
                "dtype": "float32",
                "load_time_s": 0.1,
                "default": name == "beto",
                "limits": limits,
            }
            for name in MODELS
        ],
    }


PROGRESS = {"windows_done": 0, "windows_total": 1, "elapsed_s": 0.0, "remaining_s": 0.04}
NOT_FOUND = {"error": "not found", "code": "not_found", "request_id": None}


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass

    def reply(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-Request-ID", self.headers.get("X-Request-ID", "stub"))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path == "/health/live":
            self.reply(200, {"status": "alive"})
        elif self.path == "/health/ready":
            self.reply(200, readiness())
        elif self.path == "/v1/models":
            self.reply(200, models())
        else:
            self.reply(404, NOT_FOUND)

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.path not in ("/v1/qa", "/v1/qa/stream"):
            self.reply(404, NOT_FOUND)
            return
        result = answer(body, body.get("model") or "beto")
        time.sleep(result["timings"]["total_ms"] / 1000)  # so round trips look like real ones
        if self.path == "/v1/qa":
            self.reply(200, result)
            return
        # The stream (docs/api.md, Streaming): one progress event, then the result.
        events = f"event: progress\ndata: {json.dumps(PROGRESS)}\n\n"
        events += f"event: result\ndata: {json.dumps(result)}\n\n"
        data = events.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-Request-ID", self.headers.get("X-Request-ID", "stub"))
        self.end_headers()
        self.wfile.write(data)


if __name__ == "__main__":
    ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()

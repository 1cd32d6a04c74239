"""Requests generated from the backend's own OpenAPI schema: no 5xx, no response off the schema."""

from __future__ import annotations

import re
import subprocess
import sys

import httpx

from tests.processes import ServiceProcess

# schemathesis' pytest plugin does not run under pytest 9 (it rewrites `node._nodeid`), so its
# CLI runs the same engine: every phase (examples, coverage, fuzzing, stateful), bounded. One
# worker: CPython 3.11.7's ast.parse is not thread-safe (python/cpython#106905), and hypothesis
# parses lambdas while describing strategies, so two workers crash it now and then.
MAX_EXAMPLES = 25
# Checks excluded, and why:
# - positive_data_acceptance: the backend rightly rejects some schema-valid input the schema
#   cannot describe (a context of control characters only has no readable text; /qas/ takes
#   context and question from the query or the form, so neither is required on its own).
# - allow_header_conformance: `OPTIONS /v1/models/x:predict` also matches `GET /v1/models/{name}`,
#   so Starlette's 405 lists GET; harmless, and not part of the contract.
EXCLUDED_CHECKS = "positive_data_acceptance,allow_header_conformance"


def test_api_conforms_to_its_schema(backend_server: ServiceProcess) -> None:
    proc = subprocess.run(
        [
            sys.executable, "-m", "schemathesis.cli", "run", f"{backend_server.url}/openapi.json",
            "--checks", "all", "--exclude-checks", EXCLUDED_CHECKS,
            "--max-examples", str(MAX_EXAMPLES), "--generation-deterministic",
            "--request-timeout", "20", "--workers", "1", "--no-color",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-12000:] + proc.stderr[-2000:]
    # Every operation of the schema was exercised (a schema that failed to load tests none).
    selected = re.search(r"Selected: (\d+)/(\d+)", proc.stdout)
    tested = re.search(r"Tested: (\d+)", proc.stdout)
    assert selected is not None, proc.stdout[-2000:]
    assert tested is not None, proc.stdout[-2000:]
    assert int(tested[1]) == int(selected[2]) >= 9


def test_service_still_answers_after_the_fuzzing(backend_server: ServiceProcess) -> None:
    with httpx.Client(base_url=backend_server.url, timeout=20) as client:
        assert client.get("/health/ready").status_code == 200
        response = client.post("/v1/qa", json={"context": "Hola mundo.", "question": "¿Qué?"})
        assert response.status_code == 200, response.text

"""The user-facing stack: ./start.sh builds and starts docker-compose.yml, both services healthy."""

from __future__ import annotations

import json
import subprocess
import textwrap
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.container.stack import CONTEXT, MODEL_NAME, QUESTION, Stack, run, stack_env

pytestmark = pytest.mark.container


@pytest.fixture(scope="module")
def started(docker_engine: None, mounted_models: Path) -> Iterator[tuple[Stack, str]]:
    """The stack started by ./start.sh, and what start.sh printed; torn down afterwards."""
    stack = Stack(stack_env(mounted_models))
    try:
        result = stack.start_sh()
        yield stack, result.stdout
    finally:
        stack.down()


@pytest.fixture(scope="module")
def stack(started: tuple[Stack, str]) -> Stack:
    return started[0]


def test_start_sh_waits_for_health_and_prints_the_urls(started: tuple[Stack, str]) -> None:
    stack, out = started
    assert "fastapi is healthy" in out
    assert "streamlit is healthy" in out
    assert f"http://localhost:{stack.env['STREAMLIT_PORT']}" in out
    assert f"http://localhost:{stack.api_port}/docs" in out


def test_both_services_are_healthy_and_run_unprivileged(stack: Stack) -> None:
    for service in ("fastapi", "streamlit"):
        cid = stack.container(service)
        assert stack.health(cid) == "healthy", service
        uid = run(["docker", "exec", cid, "id", "-u"]).stdout.strip()
        assert uid != "0", f"{service} runs as root"


def test_backend_is_ready_with_the_mounted_model(stack: Stack) -> None:
    ready = httpx.get(f"{stack.api_url}/health/ready", timeout=10)
    assert ready.status_code == 200
    body = ready.json()
    assert (body["status"], body["models"]) == ("ready", {MODEL_NAME: "ready"})
    models = httpx.get(f"{stack.api_url}/v1/models", timeout=10).json()
    assert models["default"] == MODEL_NAME
    (info,) = models["models"]
    assert info["model_id"] == f"/models/{MODEL_NAME}"
    assert info["ready"] is True


def test_a_question_through_the_backend_port_gets_an_answer(stack: Stack) -> None:
    response = httpx.post(
        f"{stack.api_url}/v1/qa",
        json={"context": CONTEXT, "question": QUESTION, "top_k": 3},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"] == MODEL_NAME
    assert 1 <= len(body["answers"]) <= 3
    for answer in body["answers"]:
        assert CONTEXT[answer["start"] : answer["end"]] == answer["answer"]
        assert 0.0 <= answer["score"] <= 1.0
    assert isinstance(body["no_answer"], bool)
    assert body["timings"]["total_ms"] > 0

    legacy = httpx.post(
        f"{stack.api_url}/qas/", data={"context": CONTEXT, "question": QUESTION}, timeout=30
    )
    assert legacy.status_code == 200, legacy.text
    assert isinstance(legacy.json(), str)
    assert legacy.json() == "" or legacy.json() in CONTEXT

    bad = httpx.post(f"{stack.api_url}/v1/qa", json={"context": CONTEXT}, timeout=30)
    assert bad.status_code == 422
    assert bad.json()["code"] == "validation_error"


def test_the_ui_container_reaches_the_backend_by_service_name(stack: Stack) -> None:
    backend = stack.inspect(stack.container("fastapi"))
    networks = backend["NetworkSettings"]["Networks"]
    backend_ip = networks[f"{stack.project}_qa"]["IPAddress"]
    code = textwrap.dedent(
        f"""
        import json, socket
        from qa_ui.client import QAClient, QARequest
        from qa_ui.config import UISettings
        settings = UISettings.from_env()
        client = QAClient(settings)
        result = client.ask(QARequest(context={CONTEXT!r}, question={QUESTION!r}))
        print(json.dumps({{
            "backend_url": settings.backend_url,
            "resolved": sorted({{i[4][0] for i in socket.getaddrinfo("fastapi", 8008)}}),
            "health": client.health().state.value,
            "model": result.model,
            "answers": [a.answer for a in result.answers],
        }}))
        """
    )
    seen = json.loads(stack.exec_python(stack.container("streamlit"), code))
    assert seen["backend_url"] == "http://fastapi:8008"
    assert seen["resolved"] == [backend_ip]
    assert seen["health"] == "ready"
    assert seen["model"] == MODEL_NAME
    assert all(answer in CONTEXT for answer in seen["answers"])


def test_the_ui_is_served_on_its_port(stack: Stack) -> None:
    health = httpx.get(f"{stack.ui_url}/_stcore/health", timeout=10)
    assert (health.status_code, health.text) == (200, "ok")
    page = httpx.get(stack.ui_url, timeout=10)
    assert page.status_code == 200
    assert "<noscript>" in page.text.lower() or "streamlit" in page.text.lower()


def test_images_hold_no_tests_no_model_and_no_dev_tools(stack: Stack) -> None:
    for service in ("fastapi", "streamlit"):
        cid = stack.container(service)
        # -xdev: the image's own filesystem, not the mounted volumes.
        found = run(
            ["docker", "exec", "-u", "0", cid, "sh", "-c",
             "find / -xdev \\( -name tests -o -name conftest.py -o -name '*.safetensors' "
             "-o -name 'pytorch_model.bin' -o -name testing -path '*qa_api*' \\) -print"],
        ).stdout.split()  # fmt: skip
        assert [p for p in found if "site-packages" not in p and "dist-packages" not in p] == []
        for tool in ("pytest", "ruff", "mypy", "gcc"):
            probe = subprocess.run(
                ["docker", "exec", "-u", "0", cid, "sh", "-c", f"command -v {tool}"],
                capture_output=True,
            )
            assert probe.returncode != 0, f"{tool} in the {service} image"


def test_the_model_cache_is_a_named_volume(stack: Stack) -> None:
    mounts = stack.inspect(stack.container("fastapi"))["Mounts"]
    by_target = {m["Destination"]: m for m in mounts}
    assert by_target["/models-cache"]["Type"] == "volume"
    assert by_target["/models-cache"]["Name"] == f"{stack.project}_models-cache"
    assert by_target["/models"]["Type"] == "bind"
    assert by_target["/models"]["RW"] is False


def test_status_then_stop(stack: Stack) -> None:
    status = stack.start_sh("status", timeout=60)
    assert status.stdout.count("healthy") >= 2, status.stdout
    stack.start_sh("stop", timeout=300)
    assert stack.containers("fastapi") == []
    assert stack.containers("streamlit") == []
    volumes = run(["docker", "volume", "ls", "-q"]).stdout.split()
    assert f"{stack.project}_models-cache" in volumes, "stop must keep the model cache"

"""Horizontal scaling: three backend replicas behind one service name, the UI's client spreading
requests over them and riding over the loss of one (killed mid-run) without a failed request."""

from __future__ import annotations

import json
import re
import subprocess
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.container.stack import CONTEXT, QUESTION, Stack, free_port_range, run, stack_env

pytestmark = pytest.mark.container

REPLICAS = 3

# Asks through qa_ui.client inside the UI container; one JSON line per request.
DRIVER = textwrap.dedent(
    f"""
    import json, sys, time
    from qa_ui.client import BackendError, QAClient, QARequest
    from qa_ui.config import UISettings
    client = QAClient(UISettings.from_env())
    count, pause = int(sys.argv[1]), float(sys.argv[2])
    for i in range(count):
        try:
            result = client.ask(QARequest(context={CONTEXT!r}, question={QUESTION!r}))
            print(json.dumps({{"i": i, "ok": True, "model": result.model}}), flush=True)
        except BackendError as exc:
            print(json.dumps({{"i": i, "ok": False, "error": str(exc)}}), flush=True)
        time.sleep(pause)
    """
)
METRICS = (
    "import urllib.request as u; "
    "print(u.urlopen('http://127.0.0.1:8008/metrics', timeout=5).read().decode())"
)
QA_COUNTER = re.compile(r"^qa_http_requests_total\{([^}]*)\}\s+([0-9.e+]+)$", re.MULTILINE)


@pytest.fixture(scope="module")
def scaled(docker_engine: None, mounted_models: Path) -> Iterator[Stack]:
    first, last = free_port_range(REPLICAS)
    stack = Stack(stack_env(mounted_models, FASTAPI_PORT=f"{first}-{last}"))
    try:
        stack.start_sh("--replicas", str(REPLICAS))
        yield stack
    finally:
        stack.down()


def answered_by(stack: Stack, cid: str) -> int:
    """POST /v1/qa requests this replica answered with 200, from its own /metrics."""
    text = stack.exec_python(cid, METRICS)
    return sum(
        int(float(value))
        for labels, value in QA_COUNTER.findall(text)
        if 'route="/v1/qa"' in labels and 'method="POST"' in labels and 'status="200"' in labels
    )


def ask_from_ui(stack: Stack, count: int, pause_s: float) -> subprocess.Popen[str]:
    ui = stack.container("streamlit")
    return subprocess.Popen(
        ["docker", "exec", ui, "python", "-c", DRIVER, str(count), str(pause_s)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_every_replica_is_healthy_and_behind_the_service_name(scaled: Stack) -> None:
    replicas = scaled.containers("fastapi")
    assert len(replicas) == REPLICAS
    ips = set()
    for cid in replicas:
        assert scaled.health(cid) == "healthy"
        networks = scaled.inspect(cid)["NetworkSettings"]["Networks"]
        ips.add(networks[f"{scaled.project}_qa"]["IPAddress"])
    resolved = scaled.exec_python(
        scaled.container("streamlit"),
        "import socket; print(sorted({i[4][0] for i in socket.getaddrinfo('fastapi', 8008)}))",
    )
    assert sorted(ips) == json.loads(resolved.replace("'", '"'))
    assert scaled.health(scaled.container("streamlit")) == "healthy"


def test_requests_reach_all_replicas_and_survive_losing_one(scaled: Stack) -> None:
    replicas = scaled.containers("fastapi")
    before = {cid: answered_by(scaled, cid) for cid in replicas}

    # 1) Spread: every replica answers a share of the UI's requests.
    driver = ask_from_ui(scaled, 30, 0.0)
    out, err = driver.communicate(timeout=300)
    lines = [json.loads(line) for line in out.splitlines()]
    assert driver.returncode == 0, err
    assert [line for line in lines if not line["ok"]] == []
    assert len(lines) == 30
    spread = {cid: answered_by(scaled, cid) - before[cid] for cid in replicas}
    assert sum(spread.values()) == 30, spread
    assert all(n > 0 for n in spread.values()), f"a replica got no request: {spread}"

    # 2) Loss: kill one replica while the UI keeps asking; no request may fail.
    victim, *survivors = replicas
    after_spread = {cid: answered_by(scaled, cid) for cid in survivors}
    driver = ask_from_ui(scaled, 40, 0.1)
    assert driver.stdout is not None
    results = []
    killed_at = None
    for line in driver.stdout:
        results.append(json.loads(line))
        if len(results) == 10:
            run(["docker", "kill", victim])
            killed_at = len(results)
    driver.wait(timeout=300)
    assert driver.returncode == 0, driver.stderr.read() if driver.stderr else ""
    assert killed_at == 10
    assert len(results) == 40
    assert [r for r in results if not r["ok"]] == [], "a request failed when a replica died"
    assert scaled.inspect(victim)["State"]["Running"] is False
    served_after = {cid: answered_by(scaled, cid) - after_spread[cid] for cid in survivors}
    # The survivors answered at least everything asked after the kill.
    assert sum(served_after.values()) >= 40 - killed_at, served_after
    assert all(n > 0 for n in served_after.values()), served_after

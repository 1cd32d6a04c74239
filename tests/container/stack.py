"""The real docker-compose stack as a test object: one isolated compose project per Stack."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.processes import free_port

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILES = "docker-compose.yml:docker-compose.test.yml"
# A first build installs torch and every pinned requirement; later builds hit the layer cache.
START_TIMEOUT_S = 1500
# The model served by every stack of this tier: a tiny random-weight BERT QA model, mounted.
MODEL_NAME = "tiny"
CONTEXT = "Miguel de Cervantes escribió Don Quijote de la Mancha, publicado en 1605 en Madrid."
QUESTION = "¿Quién escribió Don Quijote?"


def compose_command() -> list[str]:
    """`docker compose` (v2) when present, else `docker-compose` (v1), like start.sh."""
    probe = subprocess.run(["docker", "compose", "version"], capture_output=True, check=False)
    return ["docker", "compose"] if probe.returncode == 0 else ["docker-compose"]


def free_port_range(count: int) -> tuple[int, int]:
    """`count` consecutive free ports (for publishing every replica of a scaled service)."""
    for _ in range(200):
        first = free_port()
        ports = range(first, first + count)
        if ports[-1] > 65535:
            continue
        try:
            for port in ports:
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", port))
        except OSError:
            continue
        return first, ports[-1]
    raise RuntimeError(f"no {count} consecutive free ports")


@dataclass
class Stack:
    """One compose project of the real stack, isolated by project name and ports."""

    env: dict[str, str]
    project: str = field(default_factory=lambda: f"qact{uuid.uuid4().hex[:8]}")
    compose_cmd: list[str] = field(default_factory=compose_command)

    def __post_init__(self) -> None:
        self.env = {**self.env, "COMPOSE_PROJECT_NAME": self.project}

    @property
    def api_port(self) -> int:
        return int(self.env["FASTAPI_PORT"].split("-")[0])

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def ui_url(self) -> str:
        return f"http://127.0.0.1:{self.env['STREAMLIT_PORT']}"

    def start_sh(
        self, *args: str, timeout: float = START_TIMEOUT_S, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        return run([str(REPO / "start.sh"), *args], env=self.env, timeout=timeout, check=check)

    def compose(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return run([*self.compose_cmd, *args], env=self.env, timeout=timeout)

    def containers(self, service: str) -> list[str]:
        out = self.compose("ps", "-q", service, timeout=60).stdout
        return [line for line in out.split() if line]

    def container(self, service: str) -> str:
        (cid,) = self.containers(service)
        return cid

    def inspect(self, cid: str) -> dict[str, Any]:
        out = run(["docker", "inspect", cid], timeout=60).stdout
        data: list[dict[str, Any]] = json.loads(out)
        return data[0]

    def health(self, cid: str) -> str:
        state = self.inspect(cid)["State"]
        assert isinstance(state, dict)
        return str(state.get("Health", {}).get("Status"))

    def exec_python(self, cid: str, code: str, timeout: float = 120) -> str:
        """Run Python inside a container; its stdout."""
        return run(["docker", "exec", cid, "python", "-c", code], timeout=timeout).stdout

    def down(self) -> None:
        self.compose("down", "-v", "--remove-orphans", timeout=300)


def stack_env(models_dir: Path, **extra: str) -> dict[str, str]:
    """The environment ./start.sh runs with: test override, tiny mounted model, free ports."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("QA_", "FASTAPI_", "STREAMLIT_", "COMPOSE_", "MODELS_DIR"))
    }
    env.update(
        COMPOSE_FILE=COMPOSE_FILES,
        MODELS_DIR=str(models_dir),
        QA_MODELS=json.dumps({MODEL_NAME: f"/models/{MODEL_NAME}"}),
        FASTAPI_PORT=str(free_port()),
        STREAMLIT_PORT=str(free_port()),
        START_TIMEOUT=str(START_TIMEOUT_S),
    )
    env.update(extra)
    return env


def run(
    cmd: Sequence[str],
    *,
    env: dict[str, str] | None = None,
    timeout: float = 300,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        list(cmd), cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"{' '.join(cmd)} exited {result.returncode}\n"
            f"--- stdout\n{result.stdout[-4000:]}\n--- stderr\n{result.stderr[-4000:]}"
        )
    return result

"""Start the real services as processes on free loopback ports, for integration and e2e tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# ~150 windows of 64 tokens: keeps the tiny model busy for 0.5 s (idle machine) to seconds, so
# the model, not the HTTP layer, is what a test overloads or interrupts.
SLOW_REQUEST = {
    "context": " ".join(
        f"Miguel de Cervantes escribió la obra número {i} en Alcalá de Henares." for i in range(300)
    ),
    "question": "¿Dónde escribió Cervantes?",
    "max_seq_len": 64,
    "doc_stride": 16,
}
BACKEND_DIR = REPO / "fastapi"
UI_DIR = REPO / "streamlit"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http_status(url: str, timeout: float = 2.0) -> int | None:
    """Status code of a GET, or None when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except (OSError, urllib.error.URLError):
        return None


@dataclass
class ServiceProcess:
    url: str
    proc: subprocess.Popen[bytes]
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)

    def wait_for(self, path: str, status: int = 200, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"process exited early:\n{self.log()}")
            if http_status(self.url + path) == status:
                return
            time.sleep(0.1)
        raise TimeoutError(f"{self.url}{path} never returned {status}:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return int(self.proc.returncode)


def start_backend(
    model_dir: Path,
    log_dir: Path,
    env: dict[str, str] | None = None,
    port: int | None = None,
    prefix: Sequence[str] = (),
) -> ServiceProcess:
    """Run `uvicorn qa_api.main:create_app --factory` serving model_dir (not waiting for ready).

    `prefix` wraps the command (e.g. `setpriv ...` to run it with fewer privileges).
    """
    port = port or free_port()
    settings = {
        "QA_MODELS": f'{{"tiny": "{model_dir}"}}',
        "QA_BACKEND": "torch-fp32",
        "QA_ONNX_CACHE_DIR": str(log_dir / "onnx-cache"),
        "HF_HUB_OFFLINE": "1",
        **(env or {}),
    }
    log_path = log_dir / f"backend-{port}.log"
    proc = subprocess.Popen(
        [*prefix, sys.executable, "-m", "uvicorn", "qa_api.main:create_app", "--factory",
         "--http", "qa_api.http_protocol:HttpProtocol", "--host", "127.0.0.1", "--port", str(port)],
        cwd=BACKEND_DIR,
        env={**os.environ, **settings},
        stdout=log_path.open("wb"),
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    return ServiceProcess(f"http://127.0.0.1:{port}", proc, log_path, settings)

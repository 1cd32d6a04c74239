"""Start the servers under test on loopback ports, time their cold start, sample their memory."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
BASELINE_VENV = REPO / "bench" / ".venv-baseline"
# Peers: runtime name -> their own virtual environment (bench/peers/requirements-*.txt).
PEER_VENVS = {
    "onnxruntime": REPO / "bench" / ".venv-peer-ort",
    "openvino": REPO / "bench" / ".venv-peer-openvino",
}
READY_TIMEOUT_S = 600.0
RSS_INTERVAL_S = 0.1


@dataclass
class ServerSpec:
    """How to run one server: command, working directory, extra environment, readiness path."""

    name: str
    command: list[str]
    cwd: Path
    env: dict[str, str]
    ready_path: str
    health_path: str


@dataclass
class RunningServer:
    spec: ServerSpec
    process: subprocess.Popen[bytes]
    base_url: str
    cold_start_s: float
    log_path: Path
    rss_samples: list[int] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    @property
    def peak_rss_mb(self) -> float:
        return max(self.rss_samples, default=0) / 2**20


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _bench_app_command(venv: Path, app_dir: str, port: int) -> list[str]:
    """uvicorn from venv serving bench/<app_dir>/server.py:app on one worker."""
    return [
        str(venv / "bin" / "uvicorn"),
        "server:app",
        "--app-dir",
        str(REPO / "bench" / app_dir),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]


def baseline_spec(model_dir: Path, port: int) -> ServerSpec:
    return ServerSpec(
        name="baseline",
        command=_bench_app_command(BASELINE_VENV, "baseline", port),
        cwd=REPO,
        env={"BASELINE_MODEL_DIR": str(model_dir)},
        ready_path="/health",
        health_path="/health",
    )


def peer_spec(runtime: str, model_dir: Path, port: int, cache_dir: Path) -> ServerSpec:
    """The transformers 4.57 pipeline on ONNX Runtime or OpenVINO via Optimum (bench/peers)."""
    return ServerSpec(
        name=f"peer {runtime}",
        command=_bench_app_command(PEER_VENVS[runtime], "peers", port),
        cwd=REPO,
        env=peer_env(runtime, model_dir, cache_dir),
        ready_path="/health",
        health_path="/health",
    )


def peer_env(runtime: str, model_dir: Path, cache_dir: Path) -> dict[str, str]:
    return {
        "PEER_RUNTIME": runtime,
        "PEER_MODEL_DIR": str(model_dir),
        "PEER_CACHE_DIR": str(cache_dir / f"peer-{runtime}"),
    }


def ours_spec(model_dir: Path, port: int, backend: str, onnx_cache_dir: Path) -> ServerSpec:
    return ServerSpec(
        name=f"ours ({backend})",
        command=[
            str(REPO / ".venv" / "bin" / "uvicorn"),
            "qa_api.main:create_app",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        cwd=REPO / "fastapi",
        env={
            "QA_MODELS": json.dumps({"beto": str(model_dir)}),
            "QA_BACKEND": backend,
            "QA_ONNX_CACHE_DIR": str(onnx_cache_dir),
        },
        ready_path="/health/ready",
        health_path="/health/live",
    )


def _tree(pid: int) -> list[int]:
    """pid and all its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found, stack = [], [pid]
    while stack:
        current = stack.pop()
        found.append(current)
        stack.extend(children.get(current, []))
    return found


def _tree_rss(pid: int) -> int:
    """Resident bytes of pid and all its descendants."""
    total, page = 0, os.sysconf("SC_PAGE_SIZE")
    for current in _tree(pid):
        with contextlib.suppress(OSError, IndexError, ValueError):  # the process may be gone
            total += int(Path(f"/proc/{current}/statm").read_text().split()[1]) * page
    return total


def cpu_seconds(server: RunningServer) -> float:
    """CPU time (user + system) the server's process tree has used so far."""
    ticks, per_second = 0, os.sysconf("SC_CLK_TCK")
    for current in _tree(server.process.pid):
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / per_second


def _sample_rss(server: RunningServer) -> None:
    while not server._stop.is_set() and server.process.poll() is None:
        server.rss_samples.append(_tree_rss(server.process.pid))
        server._stop.wait(RSS_INTERVAL_S)


def start(spec: ServerSpec, port: int, log_dir: Path) -> RunningServer:
    """Spawn the server and wait until its readiness path answers 200 (= cold start)."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{spec.name.replace(' ', '_').replace('(', '').replace(')', '')}.log"
    env = {**os.environ, **spec.env}
    spawned = time.perf_counter()
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            spec.command, cwd=spec.cwd, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    server = RunningServer(spec, process, f"http://127.0.0.1:{port}", 0.0, log_path)
    threading.Thread(target=_sample_rss, args=(server,), daemon=True).start()
    deadline = spawned + READY_TIMEOUT_S
    with httpx.Client(base_url=server.base_url, timeout=5.0) as client:
        while time.perf_counter() < deadline:
            if process.poll() is not None:
                tail = log_path.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"{spec.name} exited with {process.returncode}:\n{tail}")
            try:
                if client.get(spec.ready_path).status_code == 200:
                    server.cold_start_s = time.perf_counter() - spawned
                    return server
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
    stop(server)
    raise RuntimeError(f"{spec.name} not ready after {READY_TIMEOUT_S:.0f} s; see {log_path}")


def stop(server: RunningServer) -> None:
    server._stop.set()
    if server.process.poll() is None:
        server.process.send_signal(signal.SIGTERM)
        try:
            server.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()

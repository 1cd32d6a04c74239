"""The stack in Docker: build, start the backend, wait until healthy, then the UI."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .common import (
    HERE,
    REPO,
    Progress,
    Stop,
    check_port,
    check_ui_settings,
    err,
    log,
    print_urls,
    public_api_url,
    setting,
    tail,
)
from .readiness import BACKEND_URL

MISSING_MODEL_HINTS = (
    "no internet? pre-download it (./start.sh download) or mount a local model: MODELS_DIR + "
    "QA_MODELS (see .env.example)",
    "after fixing: ./start.sh stop && ./start.sh",
)


def output(
    cmd: list[str], stdin: str | None = None, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, input=stdin, capture_output=True, text=True, check=False, env=env)


def compose_env(
    environ: Mapping[str, str] = os.environ, dotenv: Path = REPO / ".env"
) -> dict[str, str]:
    """The environment compose runs with: the user's, where the UI's public API address follows
    FASTAPI_PORT unless QA_UI_PUBLIC_API_URL is set (compose v1 has no nested ${...} defaults)."""
    api_port = setting("FASTAPI_PORT", "8008", environ, dotenv)
    configured = setting("QA_UI_PUBLIC_API_URL", "", environ, dotenv)
    return {**environ, "QA_UI_PUBLIC_API_URL": public_api_url(api_port, configured)}


def compose_command() -> list[str]:
    """`docker compose` (v2) or `docker-compose` (v1), once the engine is known to answer."""
    if not shutil.which("docker"):
        raise Stop(
            "Docker is not installed (no 'docker' command).",
            "install Docker: https://docs.docker.com/engine/install/",
            "or run without Docker: ./start.sh --local",
        )
    info = output(["docker", "info"])
    if info.returncode != 0:
        last = (info.stderr.strip().splitlines() or [""])[-1]
        raise Stop(
            f"cannot talk to the Docker daemon: {last}",
            "start it (sudo systemctl start docker, or open Docker Desktop)",
            "permission denied? add yourself to the docker group: sudo usermod -aG docker $USER "
            "(then log in again)",
        )
    if output(["docker", "compose", "version"]).returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    raise Stop(
        "Docker Compose is missing (neither 'docker compose' nor 'docker-compose').",
        "install it: https://docs.docker.com/compose/install/",
    )


def inspect(cid: str, template: str) -> str:
    return output(["docker", "inspect", "-f", template, cid]).stdout.strip()


def backend_readiness(cid: str) -> tuple[str, str]:
    """(status, reason) of one backend container, asked from inside it (readiness.py on stdin)."""
    source = (HERE / "readiness.py").read_text()
    probe = output(["docker", "exec", "-i", cid, "python", "-", BACKEND_URL], stdin=source)
    status, _, reason = probe.stdout.strip().partition("|")
    return (status, reason) if probe.returncode == 0 and status else ("starting", "")


def show_last_logs(service: str, cid: str, count: int) -> None:
    """The container's last `count` log lines, on stderr."""
    logs = output(["docker", "logs", "--tail", str(count), cid])
    err(f"\nLast log lines of {service}:\n{tail(logs.stdout + logs.stderr, count)}")


def container_failed(service: str, cid: str, info: str) -> Stop:
    code = inspect(cid, "{{.State.ExitCode}}")
    oom = inspect(cid, "{{.State.OOMKilled}}")
    show_last_logs(service, cid, 30)
    if oom == "true" or code == "137":
        return Stop(
            f"{service} was killed for lack of memory (exit 137, OOM).",
            "raise its limit in .env: FASTAPI_MEMORY=4g (or STREAMLIT_MEMORY), or give Docker "
            "Desktop more memory",
            "or use a smaller runtime: QA_BACKEND=onnx-int8",
        )
    return Stop(
        f"{service} stopped ({info}, exit code {code}).", f"full logs: ./start.sh logs {service}"
    )


@dataclass
class DockerStack:
    compose: list[str]
    timeout: int
    replicas: int | None = None
    build: bool = True
    env: dict[str, str] = field(default_factory=compose_env)

    def run(self, *args: str, stdin: str | None = None) -> int:
        """A compose command with its output on the terminal; its exit code."""
        return subprocess.run(
            [*self.compose, *args], input=stdin, text=True, check=False, env=self.env
        ).returncode

    def output(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        """A compose command's captured output."""
        return output([*self.compose, *args], stdin, self.env)

    def containers(self, service: str = "") -> list[str]:
        return self.output("ps", "-q", *([service] if service else [])).stdout.split()

    # -- up -----------------------------------------------------------------------------------

    def up(self) -> None:
        api_port = setting("FASTAPI_PORT", "8008")
        ui_port = setting("STREAMLIT_PORT", "8501")
        if not self.containers():
            if "-" not in api_port:  # a range is for replicas: compose reports a clash itself
                check_port(api_port, "FASTAPI_PORT")
            check_port(ui_port, "STREAMLIT_PORT")
        # The one QA_UI_ setting of the user's that compose passes on (docker-compose.yml):
        # checked here, as the UI in its container would read it only once it is up.
        public = self.env.get("QA_UI_PUBLIC_API_URL", "")
        check_ui_settings(sys.executable, {"QA_UI_PUBLIC_API_URL": public}, "./start.sh")
        if self.build:
            log(f"building the images ({' '.join(self.compose)} build)")
            if self.run("build") != 0:
                raise Stop(
                    "the image build failed (output above).",
                    "cannot reach download.pytorch.org? build with pip's default index: "
                    "TORCH_INDEX_URL= ./start.sh",
                )
        self.check_models_readable()
        scale = ["--scale", f"fastapi={self.replicas}"] if self.replicas else []
        log("starting the backend")
        self.compose_up(*scale, "fastapi")
        self.wait_healthy("fastapi")
        log("starting the UI")
        self.compose_up(*scale)
        self.wait_healthy("streamlit")
        print_urls(ui_port, api_port.split("-")[0], "")

    def check_models_readable(self) -> None:
        """A mounted model the backend's user may not read, found before anything starts by the
        backend's own check in a one-off container (same image, user, mounts): the fix printed."""
        models_dir = setting("MODELS_DIR", "")
        if not models_dir:
            return
        if models_dir.startswith("./"):
            models_dir = str(REPO / models_dir[2:])
        check = self.output(
            "run", "--rm", "--no-deps", "-T", "fastapi", "python", "-", "check-readable",
            models_dir, stdin=(HERE / "models.py").read_text(),
        )  # fmt: skip
        lines = check.stdout.strip().splitlines()
        if check.returncode == 1 and lines:
            raise Stop(lines[0], *lines[1:])
        if check.returncode != 0:
            err(check.stdout + check.stderr)
            raise Stop("could not check the mounted models (output above).")

    def compose_up(self, *args: str) -> None:
        result = self.output("up", "-d", *args)
        if result.returncode == 0:
            return
        said = result.stdout + result.stderr
        err(said)
        if re.search(r"address already in use|port is already allocated", said, re.I):
            raise Stop(
                "a host port is taken.",
                "pick free ports: FASTAPI_PORT=<port> STREAMLIT_PORT=<port> ./start.sh (or set "
                "them in .env)",
            )
        raise Stop("docker compose could not start the stack (output above).")

    def wait_healthy(self, service: str) -> None:
        """Wait until every container of a service is healthy, showing progress."""
        start = time.monotonic()
        progress = Progress(service)
        while True:
            elapsed = int(time.monotonic() - start)
            cids = self.containers(service)
            if not cids:
                raise Stop(
                    f"no {service} container was created.", f"see: ./start.sh logs {service}"
                )
            waiting = [self.container_state(service, cid) for cid in cids]
            waiting = [state for state in waiting if state != "healthy"]
            detail = waiting[-1] if waiting else ""
            if not waiting:
                progress.end()
                log(f"{service} is healthy ({elapsed}s)")
                return
            if elapsed >= self.timeout:
                progress.end(newline=True)
                raise Stop(
                    f"{service} did not become healthy within {self.timeout}s (last state: "
                    f"{detail}).",
                    "a first start downloads the model (~440 MB): wait longer with --timeout 1800",
                    f"see what it is doing: ./start.sh logs {service}",
                )
            progress.show(elapsed, detail)
            time.sleep(2)

    def container_state(self, service: str, cid: str) -> str:
        """ "healthy", or what the container is doing; a Stop when it failed."""
        state, _, restarts = inspect(cid, "{{.State.Status}} {{.RestartCount}}").partition(" ")
        health = inspect(cid, "{{if .State.Health}}{{.State.Health.Status}}{{end}}")
        if state != "running":
            raise container_failed(service, cid, state)
        if restarts != "0":
            raise container_failed(service, cid, "it crashed and was restarted")
        if health == "healthy":
            return "healthy"
        detail = health or "starting"
        if service == "fastapi":
            status, reason = backend_readiness(cid)
            if status == "failed":
                show_last_logs(service, cid, 20)
                raise Stop(
                    f"the backend could not load its model: {reason or 'see the logs'}",
                    *MISSING_MODEL_HINTS,
                )
            detail = status + (f" - {reason}" if reason else "")
        if health == "unhealthy":
            checks = inspect(cid, "{{range .State.Health.Log}}{{.Output}}{{end}}")
            err("\n".join(checks.splitlines()[-5:]))
            raise container_failed(service, cid, "its health check keeps failing")
        return detail

    # -- the other commands -------------------------------------------------------------------

    def stop(self) -> None:
        self.run("down", "--remove-orphans")

    def status(self) -> None:
        self.run("ps")

    def logs(self, services: list[str]) -> None:
        os.execvpe(
            self.compose[0], [*self.compose, "logs", "-f", "--tail=100", *services], self.env
        )

    def download(self) -> None:
        """Pre-download the configured Hub models into the cache volume (no server started)."""
        if self.build and self.run("build", "fastapi") != 0:
            raise Stop("the image build failed (output above).")
        log("downloading into the models-cache volume")
        source = (HERE / "models.py").read_text()
        if self.run(
            "run", "--rm", "--no-deps", "-T", "fastapi", "python", "-", "download", stdin=source
        ):
            raise Stop(
                "the download failed (output above).",
                "check the internet connection from Docker, or use a local model directory "
                "(MODELS_DIR, .env.example)",
            )
        log("done: the next ./start.sh loads the model from the cache")

"""The stack without Docker: both services as local processes from .venv (logs, pids: .run/)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping

from . import readiness
from .common import (
    HERE,
    REPO,
    Progress,
    Stop,
    check_port,
    check_ui_settings,
    log,
    print_urls,
    public_api_url,
    setting,
    tail,
)

RUN_DIR = REPO / ".run"
VENV = REPO / ".venv"
TORCH = "torch==2.13.0"
# qa_api.config's default QA_REQUEST_TIMEOUT_S (this package runs without qa_api; a test holds
# them equal). On SIGTERM the backend drains its requests for up to that long.
REQUEST_TIMEOUT_S = 90.0
STOP_MARGIN_S = 10.0  # past the drain (or for the UI): the process group is killed


def pid_of(name: str) -> int | None:
    """The pid of a service this script started, while it runs."""
    try:
        pid = int((RUN_DIR / f"{name}.pid").read_text())
        with contextlib.suppress(ChildProcessError):  # not started by this process
            # Started by this process (a start that failed) and ended: reaped, so it is not a
            # zombie that looks alive until stop's grace ends.
            os.waitpid(pid, os.WNOHANG)
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return pid


def quiet(cmd: list[str]) -> bool:
    """Whether cmd succeeds (its output hidden)."""
    done = subprocess.run(cmd, capture_output=True, check=False)
    return done.returncode == 0


def ensure_venv() -> None:
    """.venv with the runtime dependencies of both services (created and installed if missing)."""
    python = VENV / "bin" / "python"
    if not os.access(python, os.X_OK):
        py = shutil.which("python3.11") or shutil.which("python3")
        if not py:
            raise Stop(
                "Python 3.11 is not installed.",
                "install it (e.g. sudo apt install python3.11 python3.11-venv)",
            )
        if not quiet([py, str(HERE / "localenv.py"), "version"]):
            raise Stop(f"{py} is older than Python 3.11.", "install Python 3.11 or newer")
        log("creating .venv")
        if subprocess.run([py, "-m", "venv", str(VENV)], check=False).returncode:
            raise Stop(
                "could not create .venv.", "install the venv module: sudo apt install python3-venv"
            )
    if quiet([str(python), str(HERE / "localenv.py"), "packages"]):
        return
    index = setting("TORCH_INDEX_URL", "https://download.pytorch.org/whl/cpu")
    pip = [str(python), "-m", "pip", "install"]
    log("installing the runtime dependencies into .venv")
    requirements = ["-r", "fastapi/requirements.txt", "-r", "streamlit/requirements.txt"]
    for cmd in ([*pip, *(["--index-url", index] if index else []), TORCH], [*pip, *requirements]):
        if subprocess.run(cmd, cwd=REPO, check=False).returncode:
            raise Stop(
                "installing the dependencies failed (output above).",
                "cannot reach download.pytorch.org? TORCH_INDEX_URL= ./start.sh --local",
            )


def start(
    name: str, folder: str, cmd: list[str], env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start a service in its own session (so stop ends all its processes); log and pid in .run/."""
    with (RUN_DIR / f"{name}.log").open("wb") as log_file:
        proc = subprocess.Popen(
            cmd,
            cwd=REPO / folder,
            env={**os.environ, **(env or {})},
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    (RUN_DIR / f"{name}.pid").write_text(f"{proc.pid}\n")
    return proc


def wait_ready(name: str, proc: subprocess.Popen[bytes], url: str, timeout: int) -> None:
    start_time = time.monotonic()
    progress = Progress(name)
    log_path = f".run/{name}.log"
    while True:
        elapsed = int(time.monotonic() - start_time)
        if proc.poll() is not None:
            progress.end(newline=True)
            lines = (RUN_DIR / f"{name}.log").read_text(errors="replace")
            print(f"\nLast lines of {log_path}:\n{tail(lines, 30)}", file=sys.stderr)
            raise Stop(f"{name} exited during start-up (log above).")
        status, reason = readiness.probe(url)
        if status == "ready":
            progress.end()
            log(f"{name} is healthy ({elapsed}s)")
            return
        if status == "failed":
            progress.end(newline=True)
            raise Stop(f"the backend could not load its model: {reason}", f"full log: {log_path}")
        detail = status + (f" - {reason}" if reason else "")
        if elapsed >= timeout:
            progress.end(newline=True)
            raise Stop(
                f"{name} did not become healthy within {timeout}s ({detail}).",
                f"full log: {log_path}",
            )
        progress.show(elapsed, detail)
        time.sleep(2)


def up(timeout: int) -> None:
    api_port = setting("FASTAPI_PORT", "8008")
    ui_port = setting("STREAMLIT_PORT", "8501")
    if not api_port.isdigit():
        raise Stop(f"--local needs a single FASTAPI_PORT, got '{api_port}'")
    if pid_of("fastapi") or pid_of("streamlit"):
        raise Stop(
            "the local stack is already running.",
            "./start.sh --local status / ./start.sh --local stop",
        )
    check_port(api_port, "FASTAPI_PORT")
    check_port(ui_port, "STREAMLIT_PORT")
    ensure_venv()
    # The UI reads its settings after it is up (its health says ok): checked before it starts.
    given = {k: v for k, v in os.environ.items() if k.startswith("QA_UI_")}
    ui = ui_env(api_port)
    if given.get("QA_UI_BACKEND_URL", "").strip() not in ("", ui["QA_UI_BACKEND_URL"]):
        log(f"QA_UI_BACKEND_URL is not used with --local: the UI calls {ui['QA_UI_BACKEND_URL']}")
    check_ui_settings(str(VENV / "bin" / "python"), {**given, **ui}, "./start.sh --local")
    RUN_DIR.mkdir(exist_ok=True)
    try:
        start_services(api_port, ui_port, timeout)
    except (Stop, KeyboardInterrupt):
        stop()  # a failed start leaves nothing running, so the next one starts afresh
        raise
    print_urls(ui_port, api_port, "--local ")


def start_services(api_port: str, ui_port: str, timeout: int) -> None:
    """The backend, once it is ready the UI; each waited for."""
    bin_dir = VENV / "bin"
    log("starting the backend (log: .run/fastapi.log)")
    backend = start(
        "fastapi",
        "fastapi",
        [str(bin_dir / "uvicorn"), "qa_api.main:create_app", "--factory",
         "--http", "qa_api.http_protocol:HttpProtocol",  # a URL too long: the API's 413
         "--host", "127.0.0.1", "--port", api_port],
    )  # fmt: skip
    wait_ready("fastapi", backend, f"http://127.0.0.1:{api_port}/health/ready", timeout)
    log("starting the UI (log: .run/streamlit.log)")
    ui = start(
        "streamlit",
        "streamlit",
        [str(bin_dir / "streamlit"), "run", "app.py", "--server.port", ui_port,
         "--server.address", "127.0.0.1", "--server.headless", "true",
         "--browser.gatherUsageStats", "false"],
        env=ui_env(api_port),
    )  # fmt: skip
    wait_ready("streamlit", ui, f"http://127.0.0.1:{ui_port}/_stcore/health", timeout)


def ui_env(api_port: str, environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """The UI's settings: it calls the local backend; its public address and API key are the
    user's (environment or .env) when set, else the local backend's."""
    return {
        "QA_UI_BACKEND_URL": f"http://127.0.0.1:{api_port}",
        "QA_UI_PUBLIC_API_URL": public_api_url(api_port, environ.get("QA_UI_PUBLIC_API_URL", "")),
        "QA_UI_API_KEY": environ.get("QA_UI_API_KEY", environ.get("QA_API_KEY", "")),
    }


def stop_grace_s(name: str, environ: Mapping[str, str] = os.environ) -> float:
    """Seconds between SIGTERM and SIGKILL: the backend's drain (QA_REQUEST_TIMEOUT_S) and a
    margin; the UI holds no work, the margin alone."""
    if name != "fastapi":
        return STOP_MARGIN_S
    try:
        drain = float(setting("QA_REQUEST_TIMEOUT_S", str(REQUEST_TIMEOUT_S), env=environ))
    except ValueError:  # the backend refused to start with it; nothing to drain
        drain = 0.0
    return drain + STOP_MARGIN_S


def stop() -> None:
    """SIGTERM to each service's whole process group; SIGKILL once its grace (stop_grace_s) ends."""
    for name in ("streamlit", "fastapi"):
        pid = pid_of(name)
        if pid:
            grace = stop_grace_s(name)
            log(f"stopping {name} (pid {pid}; killed if still running after {grace:.0f} s)")
            signal_group(pid, signal.SIGTERM)
            deadline = time.monotonic() + grace
            while pid_of(name) and time.monotonic() < deadline:
                time.sleep(0.5)
            if pid_of(name):
                signal_group(pid, signal.SIGKILL)
        (RUN_DIR / f"{name}.pid").unlink(missing_ok=True)


def signal_group(pid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pid, sig)
    except OSError:
        with contextlib.suppress(OSError):
            os.kill(pid, sig)


def status() -> None:
    for name in ("fastapi", "streamlit"):
        pid = pid_of(name)
        print(f"{name}: running (pid {pid})" if pid else f"{name}: stopped")


def logs() -> None:
    files = sorted(str(path) for path in RUN_DIR.glob("*.log"))
    if not files:
        raise Stop("no logs yet in .run/.", "start the stack: ./start.sh --local")
    os.execvp("tail", ["tail", "-n", "100", "-f", *files])

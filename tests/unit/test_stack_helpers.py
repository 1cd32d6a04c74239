"""deploy/qa_stack: what ./start.sh runs; the helpers it feeds to a Python run here as files."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from deploy.qa_stack import cli, common, docker, local, localenv, models, readiness
from tests.processes import REPO, free_port, http_status

HELPERS = REPO / "deploy" / "qa_stack"
# Root reads anything; without these two capabilities it obeys file modes like any user.
AS_ORDINARY_USER = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", "--"]


@pytest.mark.parametrize(
    ("body", "ok", "expected"),
    [
        ({"status": "ready", "models": {"beto": "ready"}}, True, ("ready", "beto: ready")),
        (
            {
                "status": "loading",
                "models": {"a": "ready", "b": "loading"},
                "reason": "models are loading",
            },
            False,
            ("loading", "models are loading"),
        ),
        (
            {"status": "loading", "models": {"a": "ready", "b": "loading"}},
            False,
            ("loading", "a: ready, b: loading"),
        ),
        (
            {"status": "failed", "models": {"b": "failed"}, "reason": "b: OSError: gone"},
            False,
            ("failed", "b: OSError: gone"),
        ),
        ("ok", True, ("ready", "")),  # Streamlit's /_stcore/health
        ("<html>Bad gateway</html>", False, ("unknown", "<html>Bad gateway</html>")),
    ],
)
def test_readiness_reads_the_backends_answer(
    body: object, ok: bool, expected: tuple[str, str]
) -> None:
    raw = body.encode() if isinstance(body, str) else json.dumps(body).encode()
    assert readiness.describe(raw, ok) == expected


@pytest.fixture
def health_server() -> Iterator[tuple[str, list[tuple[int, bytes]]]]:
    """A real HTTP server answering each GET with the next (status, body) queued."""
    answers: list[tuple[int, bytes]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status, body = answers.pop(0)
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/health/ready", answers
    server.shutdown()


def run_helper(
    name: str, *args: str, env: dict[str, str] | None = None, prefix: list[str] | None = None
) -> subprocess.CompletedProcess[str]:
    """deploy/qa_stack/<name> run as start.sh runs it: a file, by a Python, nothing imported."""
    return subprocess.run(
        [*(prefix or []), sys.executable, str(HELPERS / name), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
        cwd=REPO / "fastapi",
        check=False,
    )


def test_readiness_prints_one_status_line_per_probe(
    health_server: tuple[str, list[tuple[int, bytes]]],
) -> None:
    url, answers = health_server
    failed = {"status": "failed", "models": {"b": "failed"}, "reason": "b: PermissionError:\nx"}
    answers += [(503, json.dumps(failed).encode()), (200, b"ok")]
    assert run_helper("readiness.py", url).stdout == "failed|b: PermissionError: x\n"
    assert run_helper("readiness.py", url).stdout == "ready|\n"


def test_readiness_of_a_server_not_up_yet() -> None:
    out = run_helper("readiness.py", f"http://127.0.0.1:{free_port()}/health/ready").stdout
    assert out == "starting|the server is not answering yet (URLError)\n"


def test_localenv_accepts_this_python_and_finds_the_runtime_packages() -> None:
    assert run_helper("localenv.py", "version").returncode == 0
    assert localenv.missing_packages() == []
    assert run_helper("localenv.py", "nonsense").returncode == 2


def test_only_local_directories_are_local_models() -> None:
    assert models.local_sources(
        {"hub": "mrm8488/bert", "abs": "/models/beto", "rel": "./m", "home": "~/m"}
    ) == {"abs": "/models/beto", "rel": "./m", "home": "~/m"}


@pytest.fixture
def shared_models(tiny_model_dir: Path, tmp_path: Path) -> Path:
    """models/beto as save_pretrained wrote it (model.safetensors 0600)."""
    root = tmp_path / "models"
    root.mkdir()
    shutil.copytree(tiny_model_dir, root / "beto")
    return root


def hide_weights(weights: Path) -> list[str]:
    """Make a 0600 file unreadable to the helper as it is to the container's uid; its prefix."""
    if os.getuid() == 0:
        os.chown(weights, 65534, 65534)
        return AS_ORDINARY_USER
    weights.chmod(0)  # one's own 0600 file stays readable
    return []


def test_check_readable_names_the_file_and_prints_the_one_fix(shared_models: Path) -> None:
    weights = shared_models / "beto" / "model.safetensors"
    prefix = hide_weights(weights)
    env = {"QA_MODELS": json.dumps({"beto": str(shared_models / "beto"), "hub": "org/model"})}
    result = run_helper("models.py", "check-readable", "/home/me/qa/models", env=env, prefix=prefix)
    assert result.returncode == 1, result.stderr
    assert result.stdout.splitlines() == [
        f"the backend (uid {os.getuid()}) cannot read the model files in "
        f"MODELS_DIR=/home/me/qa/models, mounted at /models: beto: permission denied: {weights}",
        "make them readable: chmod -R a+rX /home/me/qa/models",
        "(save_pretrained writes model.safetensors with mode 0600, readable by you alone)",
    ]

    subprocess.run(["chmod", "-R", "a+rX", str(shared_models)], check=True)
    if not prefix:
        weights.chmod(0o644)
    fixed = run_helper("models.py", "check-readable", "/x", env=env, prefix=prefix)
    assert (fixed.returncode, fixed.stdout) == (0, "")


def test_a_missing_model_directory_is_left_to_the_backend(tmp_path: Path) -> None:
    env = {"QA_MODELS": json.dumps({"gone": str(tmp_path / "nothing")})}
    result = run_helper("models.py", "check-readable", "/x", env=env)
    assert (result.returncode, result.stdout) == (0, "")


def test_download_skips_local_directories(shared_models: Path) -> None:
    env = {"QA_MODELS": json.dumps({"beto": str(shared_models / "beto")}), "HF_HUB_OFFLINE": "1"}
    result = run_helper("models.py", "download", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"beto: local directory {shared_models / 'beto'}, nothing to download\n"


# -- the orchestration start.sh calls (python3 deploy/qa_stack MODE COMMAND) -----------------------


def test_a_setting_comes_from_the_environment_then_dotenv_then_the_default(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text('FASTAPI_PORT=9000\nQA_MODELS=\'{"a": "/m/a"}\'\nFASTAPI_PORT="9001"\n')
    assert common.setting("FASTAPI_PORT", "8008", env={}, dotenv=dotenv) == "9001"
    assert common.setting("QA_MODELS", "", env={}, dotenv=dotenv) == '{"a": "/m/a"}'
    assert common.setting("FASTAPI_PORT", "8008", env={"FASTAPI_PORT": "7"}, dotenv=dotenv) == "7"
    assert common.setting("STREAMLIT_PORT", "8501", env={}, dotenv=dotenv) == "8501"
    assert common.setting("X", "d", env={}, dotenv=tmp_path / "absent") == "d"


def test_a_stop_reads_as_the_error_and_its_hints() -> None:
    stop = common.Stop("port 8008 is already in use (by: nginx).", "pick another", "see ss")
    assert stop.report() == (
        "\nERROR: port 8008 is already in use (by: nginx).\n  -> pick another\n  -> see ss"
    )


def test_progress_prints_every_ten_seconds_off_a_terminal(
    capsys: pytest.CaptureFixture[str],
) -> None:
    progress = common.Progress("fastapi", tty=False)
    for elapsed in (0, 2, 9, 10, 12, 21):
        progress.show(elapsed, "loading - models are loading")
    assert capsys.readouterr().out.splitlines() == [
        f"   waiting for fastapi: {s:3d}s  loading - models are loading" for s in (0, 10, 21)
    ]


def test_a_taken_port_is_named_with_the_variable_that_moves_it() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = str(holder.getsockname()[1])
        with pytest.raises(common.Stop) as stopped:
            common.check_port(port, "STREAMLIT_PORT")
    assert stopped.value.message.startswith(f"port {port} is already in use (by: ")
    assert stopped.value.hints[0].startswith(
        "stop that program, or pick a free port: STREAMLIT_PORT="
    )
    common.check_port(port, "STREAMLIT_PORT")  # free again: no complaint


def test_the_command_line_start_sh_passes() -> None:
    args = cli.parse(
        ["docker", "logs", "fastapi", "--timeout", "30", "--replicas", "3", "--no-build"]
    )
    assert (args.mode, args.command, args.services) == ("docker", "logs", ["fastapi"])
    assert (args.timeout, args.replicas, args.build) == (30, 3, False)
    assert cli.parse(["local", "up", "--timeout", "900"]).build is True


def test_local_download_says_what_to_do(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["local", "download", "--timeout", "5"]) == 1
    assert capsys.readouterr().err == f"\nERROR: {cli.LOCAL_DOWNLOAD}\n"


def ended(pid: int, timeout: float = 5) -> bool:
    """Whether pid is gone (or a zombie) within timeout: not our child, so polled."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return True
        if state == "Z":
            return True
        time.sleep(0.05)
    return False


@pytest.fixture
def run_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(local, "RUN_DIR", tmp_path)
    return tmp_path


def test_a_local_service_runs_in_its_own_group_and_stop_ends_it_all(
    run_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A service that starts a child of its own, as uvicorn and streamlit do.
    proc = local.start("fastapi", ".", ["sh", "-c", "sleep 60 & echo child $!; wait"])
    assert os.getpgid(proc.pid) == proc.pid
    assert local.pid_of("fastapi") == proc.pid
    local.status()
    assert capsys.readouterr().out == f"fastapi: running (pid {proc.pid})\nstreamlit: stopped\n"
    deadline = time.monotonic() + 10
    while "child" not in (run_dir / "fastapi.log").read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    child = int((run_dir / "fastapi.log").read_text().split()[1])

    # This process is the service's parent, as ./start.sh is when a start fails and it stops
    # what it started: stop reaps it, or the zombie would look alive until the grace ran out.
    grace = local.stop_grace_s("fastapi")
    began = time.monotonic()
    local.stop()
    assert time.monotonic() - began < grace, "stop waited for a zombie"
    assert not Path(f"/proc/{proc.pid}").exists(), "stop left it a zombie"
    assert not (run_dir / "fastapi.pid").exists()
    assert ended(child), "the service's own child outlived stop"
    assert capsys.readouterr().out == (
        f"==> stopping fastapi (pid {proc.pid}; killed if still running after {grace:.0f} s)\n"
    )


def test_a_failed_local_start_stops_what_it_started(
    run_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real backend, up but unable to load its model: the start fails and stops it, so the
    next ./start.sh --local starts afresh instead of finding it "already running"."""
    api_port = free_port()
    monkeypatch.setenv("FASTAPI_PORT", str(api_port))
    monkeypatch.setenv("STREAMLIT_PORT", str(free_port()))
    monkeypatch.setenv("QA_MODELS", json.dumps({"gone": str(tmp_path / "no-such-model")}))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    try:
        with pytest.raises(common.Stop, match="the backend could not load its model: gone"):
            local.up(timeout=120)
        assert "Application startup complete" in (run_dir / "fastapi.log").read_text()
        assert (local.pid_of("fastapi"), local.pid_of("streamlit")) == (None, None)
        assert http_status(f"http://127.0.0.1:{api_port}/health/live") is None
    finally:
        local.stop()


UI_REFUSES = {
    "QA_UI_TIMEOUT_S": ("abc", "QA_UI_TIMEOUT_S must be a number, got 'abc'"),
    "QA_UI_MAX_UPLOAD_MB": ("-1", "QA_UI_MAX_UPLOAD_MB must be > 0"),
    "QA_UI_PUBLIC_API_URL": (
        "notaurl",
        "QA_UI_PUBLIC_API_URL must be an http(s) URL, got 'notaurl'",
    ),
    "QA_UI_TOP_K": ("0", "QA_UI_TOP_K must be >= 1"),
}


def test_the_uis_own_loader_names_every_setting_it_would_refuse(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bad = {name: value for name, (value, _) in UI_REFUSES.items()}
    with pytest.raises(common.Stop) as stop:
        common.check_ui_settings(sys.executable, {**bad, "QA_UI_TOP_K_X": "?"}, "./start.sh")
    assert stop.value.message.splitlines() == [
        "the UI would refuse its settings (QA_UI_ variables, from the environment or .env):",
        *(f"  {UI_REFUSES[name][1]}" for name in sorted(UI_REFUSES)),
    ]
    assert stop.value.hints == ("fix or unset them, then start again: ./start.sh",)
    # Good values pass; the host's own QA_UI_ variables are not what the UI is given.
    monkeypatch.setenv("QA_UI_TIMEOUT_S", "abc")
    good = {"QA_UI_TIMEOUT_S": "12.5", "QA_UI_TOP_K": "2", "QA_UI_PUBLIC_API_URL": "http://h:1"}
    common.check_ui_settings(sys.executable, good, "./start.sh")


def test_a_local_start_with_bad_ui_settings_starts_nothing(
    run_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The UI reads its settings only once it is up (its health says ok, its page the error):
    checked before the backend starts. Its backend address is the local backend's, not the
    user's."""
    api_port = free_port()
    monkeypatch.setenv("FASTAPI_PORT", str(api_port))
    monkeypatch.setenv("STREAMLIT_PORT", str(free_port()))
    monkeypatch.setenv("QA_MODELS", json.dumps({"gone": str(tmp_path / "no-such-model")}))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("QA_UI_BACKEND_URL", "notaurl")  # replaced by the local backend's
    for name, (value, _) in UI_REFUSES.items():
        monkeypatch.setenv(name, value)
    try:
        with pytest.raises(common.Stop) as stop:
            local.up(timeout=60)
        assert [line.strip() for line in stop.value.message.splitlines()[1:]] == [
            UI_REFUSES[name][1] for name in sorted(UI_REFUSES)
        ]
        assert stop.value.hints == ("fix or unset them, then start again: ./start.sh --local",)
        assert capsys.readouterr().out.endswith(
            "==> QA_UI_BACKEND_URL is not used with --local: the UI calls "
            f"http://127.0.0.1:{api_port}\n"
        )
        assert list(run_dir.iterdir()) == []
        assert http_status(f"http://127.0.0.1:{api_port}/health/live") is None
    finally:
        local.stop()


def test_a_docker_start_checks_the_ui_setting_compose_passes_on_before_building(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FASTAPI_PORT", str(free_port()))
    monkeypatch.setenv("STREAMLIT_PORT", str(free_port()))
    monkeypatch.setenv("QA_UI_TIMEOUT_S", "abc")  # compose does not pass it to the UI
    calls = tmp_path / "calls"
    compose = ["sh", "-c", f'echo "$*" >> {calls}', "compose"]
    env = {**os.environ, "QA_UI_PUBLIC_API_URL": "notaurl"}
    with pytest.raises(common.Stop) as stop:
        docker.DockerStack(compose, 5, env=env).up()
    assert stop.value.message.splitlines()[1:] == [f"  {UI_REFUSES['QA_UI_PUBLIC_API_URL'][1]}"]
    assert calls.read_text().splitlines() == ["ps -q"]  # no build, no up


def test_stop_waits_for_the_backend_drain() -> None:
    """The backend drains its requests for up to QA_REQUEST_TIMEOUT_S after SIGTERM."""
    from qa_api.config import Settings

    env = {"QA_REQUEST_TIMEOUT_S": "120"}
    assert local.stop_grace_s("fastapi", env) == 120 + local.STOP_MARGIN_S
    assert local.stop_grace_s("streamlit", env) == local.STOP_MARGIN_S
    assert Settings.model_fields["request_timeout_s"].default == local.REQUEST_TIMEOUT_S


def test_local_ui_keeps_the_users_public_address_and_key() -> None:
    assert local.ui_env("8008", {"QA_API_KEY": "k"}) == {
        "QA_UI_BACKEND_URL": "http://127.0.0.1:8008",
        "QA_UI_PUBLIC_API_URL": "http://localhost:8008",
        "QA_UI_API_KEY": "k",
    }
    mine = {
        "QA_UI_PUBLIC_API_URL": "https://qa.example.org",
        "QA_UI_API_KEY": "",
        "QA_API_KEY": "k",
    }
    assert local.ui_env("8008", mine) == {
        "QA_UI_BACKEND_URL": "http://127.0.0.1:8008",
        "QA_UI_PUBLIC_API_URL": "https://qa.example.org",
        "QA_UI_API_KEY": "",
    }


def test_the_uis_public_api_address_follows_the_api_port(tmp_path: Path) -> None:
    """The UI's docs link and curl point at the published API unless QA_UI_PUBLIC_API_URL says."""

    def public(environ: dict[str, str], dotenv: Path = tmp_path / "absent") -> str:
        return docker.compose_env(environ, dotenv)["QA_UI_PUBLIC_API_URL"]

    assert public({}) == "http://localhost:8008"
    assert public({"FASTAPI_PORT": "8018"}) == "http://localhost:8018"
    assert public({"FASTAPI_PORT": "8018-8020"}) == "http://localhost:8018"
    assert public({"FASTAPI_PORT": "8018", "QA_UI_PUBLIC_API_URL": ""}) == "http://localhost:8018"
    mine = "https://qa.example.org"
    assert public({"FASTAPI_PORT": "8018", "QA_UI_PUBLIC_API_URL": mine}) == mine
    dotenv = tmp_path / ".env"
    dotenv.write_text("FASTAPI_PORT=8028\n")
    assert public({}, dotenv) == "http://localhost:8028"
    dotenv.write_text(f"FASTAPI_PORT=8028\nQA_UI_PUBLIC_API_URL={mine}\n")
    assert public({}, dotenv) == mine
    assert local.ui_env("8018", {"QA_UI_PUBLIC_API_URL": ""})["QA_UI_PUBLIC_API_URL"] == (
        "http://localhost:8018"
    )


def compose_cli() -> list[str]:
    """`docker compose` or `docker-compose`, whichever is installed (`config` needs no daemon)."""
    if (
        shutil.which("docker")
        and subprocess.run(
            ["docker", "compose", "version"], capture_output=True, check=False
        ).returncode
        == 0
    ):
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    pytest.skip("neither `docker compose` nor `docker-compose` is installed")


def test_compose_gives_the_ui_the_public_api_address_of_the_published_port(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """FASTAPI_PORT=8018 ./start.sh: the UI container's links say 8018, not 8008."""
    monkeypatch.setenv("FASTAPI_PORT", "8018")
    monkeypatch.setenv("QA_UI_PUBLIC_API_URL", "")  # set (empty): no .env may decide it
    stack = docker.DockerStack([*compose_cli(), "-f", str(REPO / "docker-compose.yml")], 5)
    config = stack.output("config")
    assert config.returncode == 0, config.stderr
    environment = yaml.safe_load(config.stdout)["services"]["streamlit"]["environment"]
    assert environment["QA_UI_PUBLIC_API_URL"] == "http://localhost:8018"


def test_waiting_for_a_local_service(
    run_dir: Path, health_server: tuple[str, list[tuple[int, bytes]]]
) -> None:
    url, answers = health_server
    proc = local.start("fastapi", ".", ["sleep", "60"])
    try:
        loading = {
            "status": "loading",
            "models": {"beto": "loading"},
            "reason": "models are loading",
        }
        answers += [(503, json.dumps(loading).encode()), (200, b'{"status": "ready"}')]
        local.wait_ready("fastapi", proc, url, timeout=30)
        failed = {"status": "failed", "models": {"beto": "failed"}, "reason": "beto: OSError: x"}
        answers.append((503, json.dumps(failed).encode()))
        with pytest.raises(common.Stop) as stopped:
            local.wait_ready("fastapi", proc, url, timeout=30)
        assert (stopped.value.message, stopped.value.hints) == (
            "the backend could not load its model: beto: OSError: x",
            ("full log: .run/fastapi.log",),
        )
    finally:
        proc.kill()
        proc.wait()
    with pytest.raises(common.Stop, match="fastapi exited during start-up"):
        local.wait_ready("fastapi", proc, url, timeout=30)


# -- start.sh itself -------------------------------------------------------------------------------


@pytest.fixture
def recording_path(tmp_path: Path) -> tuple[dict[str, str], Path]:
    """An environment whose docker and python3 only record that they ran (calls: the file)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "calls"
    for tool in ("docker", "python3"):
        (bin_dir / tool).write_text(f'#!/bin/sh\necho "{tool} $*" >> {calls}\n')
        (bin_dir / tool).chmod(0o755)
    return {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}, calls


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["stauts"], "unknown command or service 'stauts' (the commands and services: above)"),
        (
            ["--local", "bogus"],
            "unknown command or service 'bogus' (the commands and services: above)",
        ),
        (
            ["logs", "fastpi"],
            "unknown command or service 'fastpi' (the commands and services: above)",
        ),
        (["up", "fastapi"], "a service (fastapi) goes with logs only: ./start.sh logs fastapi"),
        (["--lcoal"], "unknown option '--lcoal'"),
        (["--replicas"], "--replicas needs the number of backend replicas, e.g. --replicas 3"),
        (["--replicas", "0"], "--replicas must be a whole number >= 1, got '0'"),
        (
            ["--local", "--replicas", "2"],
            "--replicas is for Docker; --local runs one backend (drop --replicas, or --local)",
        ),
        (["--timeout"], "--timeout needs a number of seconds, e.g. --timeout 1800"),
    ],
)
def test_start_sh_refuses_an_unknown_word_before_starting_anything(
    recording_path: tuple[dict[str, str], Path], args: list[str], error: str
) -> None:
    env, calls = recording_path
    result = subprocess.run(
        ["bash", str(REPO / "start.sh"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("Usage: ./start.sh [options] [command]\n")
    assert result.stderr.endswith(f"\nERROR: {error}\n")
    assert "logs [svc]    follow the logs (svc: fastapi or streamlit)" in result.stderr
    assert not calls.exists(), calls.read_text()


def test_start_sh_passes_a_known_command_and_service_on(
    recording_path: tuple[dict[str, str], Path],
) -> None:
    env, calls = recording_path
    for args in (["logs", "streamlit"], ["--local", "status"]):
        subprocess.run(["bash", str(REPO / "start.sh"), *args], env=env, timeout=30, check=True)
    assert calls.read_text().splitlines() == [
        "python3 deploy/qa_stack docker logs streamlit --timeout 900",
        "python3 deploy/qa_stack local status --timeout 900",
    ]

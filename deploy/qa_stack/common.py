"""What both ways of running the stack share: settings, messages, progress lines, host ports."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent


class Stop(Exception):
    """start.sh stops: what went wrong, and the hints that say what to do about it."""

    def __init__(self, message: str, *hints: str) -> None:
        super().__init__(message)
        self.message = message
        self.hints = hints

    def report(self) -> str:
        return "\n".join([f"\nERROR: {self.message}", *(f"  -> {hint}" for hint in self.hints)])


def log(message: str) -> None:
    print(f"==> {message}", flush=True)


def err(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def setting(
    name: str, default: str, env: Mapping[str, str] = os.environ, dotenv: Path = REPO / ".env"
) -> str:
    """A setting from the environment, else from .env (its last assignment), else the default."""
    if name in env:
        return env[name]
    value = None
    if dotenv.is_file():
        for line in dotenv.read_text().splitlines():
            if line.startswith(f"{name}="):
                value = line[len(name) + 1 :]
    if value is None:
        return default
    for quote in ('"', "'"):
        value = value[:-1] if value.endswith(quote) else value
        value = value[1:] if value.startswith(quote) else value
    return value


class Progress:
    """One progress line per wait step: redrawn in place on a terminal, every 10 s otherwise."""

    def __init__(self, what: str, tty: bool | None = None) -> None:
        self.what = what
        self.tty = sys.stdout.isatty() if tty is None else tty
        self.last_print = -100

    def show(self, elapsed: int, detail: str) -> None:
        if self.tty:
            sys.stdout.write(f"\r\033[K   waiting for {self.what}: {elapsed:3d}s  {detail[:100]}")
            sys.stdout.flush()
        elif elapsed - self.last_print >= 10:
            print(f"   waiting for {self.what}: {elapsed:3d}s  {detail}", flush=True)
            self.last_print = elapsed

    def end(self, newline: bool = False) -> None:
        """Leave the redrawn line: erase it, or keep it and go to the next line."""
        if self.tty:
            sys.stdout.write("\n" if newline else "\r\033[K")
            sys.stdout.flush()


def port_user(port: int) -> str:
    """What listens on a TCP port of this host ("" when nothing)."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except OSError:
        return ""
    who = ""
    if shutil.which("ss"):
        out = subprocess.run(
            ["ss", "-Hltnp", f"sport = :{port}"], capture_output=True, text=True, check=False
        ).stdout
        found = re.search(r'users:\(\("([^"]*)"', out)
        who = found.group(1) if found else ""
    return who or "another program"


def check_port(port: str, variable: str) -> None:
    """Stop, naming who holds it, when a port this stack publishes is taken."""
    who = port_user(int(port)) if port.isdigit() else ""
    if who:
        raise Stop(
            f"port {port} is already in use (by: {who}).",
            f"stop that program, or pick a free port: {variable}=<port> ./start.sh (or set it in "
            ".env)",
            f"see what holds it: ss -ltnp 'sport = :{port}'",
        )


def public_api_url(api_port: str, configured: str) -> str:
    """The API as the user's browser sees it (the UI's docs link, "copy as curl"): the user's
    QA_UI_PUBLIC_API_URL when set, else this host on the (first) published FASTAPI_PORT."""
    return configured or f"http://localhost:{api_port.split('-')[0]}"


def print_urls(ui_port: str, api_port: str, mode: str) -> None:
    print(
        "\nThe stack is up:\n"
        f"  UI        http://localhost:{ui_port}\n"
        f"  API docs  http://localhost:{api_port}/docs\n"
        f"  Health    http://localhost:{api_port}/health/ready\n"
        f"Logs: ./start.sh {mode}logs   Stop: ./start.sh {mode}stop",
        flush=True,
    )


def tail(lines: str, count: int) -> str:
    """The last `count` lines, each shown as quoted output."""
    return "\n".join(f"  | {line}" for line in lines.splitlines()[-count:])


def check_ui_settings(python: str, settings: Mapping[str, str], how: str) -> None:
    """Stop, naming each bad variable, when the UI would refuse the QA_UI_ settings it is given
    (`settings`; the host's other QA_UI_ variables are not the UI's): checked by the UI's own
    loader, run by `python`, before anything starts. `how`: how the user reruns the start."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("QA_UI_")}
    done = subprocess.run(
        [python, str(HERE / "uicheck.py")],
        env={**env, **settings},
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode == 1 and done.stdout.strip():
        raise Stop(
            "the UI would refuse its settings (QA_UI_ variables, from the environment or .env):\n"
            + "\n".join(f"  {line}" for line in done.stdout.splitlines()),
            f"fix or unset them, then start again: {how}",
        )
    if done.returncode:
        raise Stop(
            f"could not check the UI's settings with {python}:\n"
            + tail(done.stdout + done.stderr, 20)
        )

"""What ./start.sh calls once it has parsed its arguments: `python3 deploy/qa_stack MODE CMD`."""

from __future__ import annotations

import argparse

from . import local
from .common import Stop, err
from .docker import DockerStack, compose_command

LOCAL_DOWNLOAD = (
    "download is for the Docker volume; --local uses your Hugging Face cache (downloaded on first "
    "start)"
)


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="start.sh", description="See ./start.sh --help.")
    parser.add_argument("mode", choices=["docker", "local"])
    parser.add_argument("command", choices=["up", "stop", "logs", "status", "download"])
    parser.add_argument("services", nargs="*", help="for logs: fastapi or streamlit")
    parser.add_argument("--timeout", type=int, default=900)
    parser.add_argument("--replicas", type=int)
    parser.add_argument("--no-build", dest="build", action="store_false")
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> None:
    if args.mode == "local":
        if args.command == "download":
            raise Stop(LOCAL_DOWNLOAD)
        if args.command == "up":
            local.up(args.timeout)
        else:
            {"stop": local.stop, "logs": local.logs, "status": local.status}[args.command]()
        return
    stack = DockerStack(compose_command(), args.timeout, args.replicas, args.build)
    if args.command == "logs":
        stack.logs(args.services)
    else:
        {"up": stack.up, "stop": stack.stop, "status": stack.status, "download": stack.download}[
            args.command
        ]()


def main(argv: list[str]) -> int:
    try:
        run(parse(argv))
    except Stop as stop:
        err(stop.report())
        return 1
    except KeyboardInterrupt:
        return 130
    return 0

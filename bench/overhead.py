"""Where a saturated server's CPU time goes: py-spy samples of its Python threads, by stage.

py-spy (requirements-dev.txt) samples the server's Python stacks from outside (`--nonblocking`:
the server is never paused) while the benchmark's clients keep it saturated. Each on-CPU sample is
put in the first stage whose marker appears in its stack, innermost frame first; the shares show
what the event loop and the inference thread spend their time on. Threads that only run native
code (the runtimes' own worker threads) are invisible to py-spy: their time is the forward pass.

Run as a script, it compares the overhead per request of two or more checkouts of the backend
(e.g. `git worktree add /tmp/before <commit>`), alternating them (A B A B) so that other work on a
shared machine hits each alike:

    .venv/bin/python bench/overhead.py /tmp/before /tmp/after --rounds 2 --seconds 40

Overhead per request = the machine's time per request at 8 clients (1000 / req/s) minus the time
the inference thread spent in forward passes per request, read from the server's own
`qa_compute_seconds` counter over the same interval.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import httpx
import loadgen
import servers
import workload

logger = logging.getLogger(__name__)

RATE_HZ = 100
# (stage, markers): a sample belongs to the first stage one of whose markers is in its stack.
STAGES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("forward pass", ("qa_api/inference/backends.py", "transformers/pipelines/question_answering")),
    ("tokenize", ("tokenizers/", "qa_api/inference/features.py", "tokenization_utils")),
    ("decode", ("qa_api/inference/decoding.py",)),
    ("JSON and validation", ("json/", "orjson", "pydantic", "fastapi/encoders", "_serialize")),
    ("HTTP (uvicorn, starlette, fastapi)", ("uvicorn/", "h11/", "httptools", "starlette/")),
    ("fastapi routing and dependencies", ("fastapi/",)),
    ("batching and scheduling", ("qa_api/inference/",)),
    ("our service and API code", ("qa_api/",)),
    # uvloop runs in C: its own time (sockets, HTTP parsing, task switching) shows under the
    # Python frame it was called from, mostly asyncio's.
    (
        "event loop and thread hand-offs",
        ("asyncio/", "threading.py", "queue.py", "concurrent/futures", "anyio/"),
    ),
)


def py_spy() -> str | None:
    found = Path(sys.executable).with_name("py-spy")
    return str(found) if found.exists() else shutil.which("py-spy")


def start(pid: int, seconds: float, out: Path) -> subprocess.Popen[bytes] | None:
    """Start sampling `pid` for `seconds` into `out` (py-spy's raw, collapsed-stack format)."""
    binary = py_spy()
    if binary is None:
        logger.warning("py-spy not installed; no profile")
        return None
    out.parent.mkdir(parents=True, exist_ok=True)
    command = [binary, "record", "--pid", str(pid), "--duration", str(max(1, round(seconds)))]
    command += ["--rate", str(RATE_HZ), "--format", "raw", "--output", str(out), "--nonblocking"]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def finish(process: subprocess.Popen[bytes] | None) -> bool:
    if process is None:
        return False
    _, err = process.communicate(timeout=60)
    if process.returncode != 0:
        logger.warning("py-spy failed: %s", err.decode(errors="replace").strip()[-500:])
    return process.returncode == 0


def stage_shares(raw: Path) -> dict[str, float]:
    """Share of on-CPU samples per stage (plus "other"), from a py-spy raw file."""
    counts: Counter[str] = Counter()
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")[::-1]  # innermost first
        counts[_stage(frames)] += int(count)
    total = sum(counts.values())
    return {stage: n / total for stage, n in counts.most_common()} if total else {}


def _stage(frames: list[str]) -> str:
    for frame in frames:
        for stage, markers in STAGES:
            if any(marker in frame for marker in markers):
                return stage
    return "other"


@dataclass(frozen=True)
class Measured:
    """One checkout under 8 closed-loop clients."""

    tree: str
    requests: int
    rps: float
    compute_ms_per_request: float  # forward passes (the inference thread's wall time)
    cpu_ms_per_request: float  # the server's CPU time, all cores
    loop_cpu_ms_per_request: float  # its main thread's: the event loop
    p50_ms: float

    @property
    def machine_ms_per_request(self) -> float:
        return 1000 / self.rps

    @property
    def overhead_ms_per_request(self) -> float:
        return self.machine_ms_per_request - self.compute_ms_per_request


def compute_seconds(base_url: str) -> float:
    """The server's `qa_compute_seconds_total`, summed over its models."""
    text = httpx.get(f"{base_url}/metrics", timeout=10).text
    return sum(
        float(line.rpartition(" ")[2])
        for line in text.splitlines()
        if line.startswith("qa_compute_seconds_total")
    )


def main_thread_cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of the process's main thread, which runs uvicorn's event loop."""
    fields = Path(f"/proc/{pid}/task/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def ensure_tiny_model() -> Path:
    """The tiny random test model (bench/.cache/tiny-random), where the forward pass is small."""
    from qa_api.testing.random_model import build_random_qa_model

    out = servers.REPO / "bench" / ".cache" / "tiny-random"
    if not (out / "config.json").exists():
        build_random_qa_model(out, size="tiny", data_dir=workload.DATA_DIR)
    return out


def measure(
    tree: Path,
    model_dir: Path,
    backend: str,
    pairs: list[workload.Pair],
    build: loadgen.RequestBuilder,
    seconds: float,
) -> Measured:
    """Serve `tree`'s backend, warm it under load, then measure `seconds` at 8 clients."""
    port = servers.free_port()
    spec = servers.ours_spec(model_dir, port, backend, servers.REPO / "bench" / ".cache" / "onnx")
    package = tree / "fastapi"
    spec = replace(
        spec,
        name=f"overhead {tree.name}",
        cwd=package,
        env={**spec.env, "PYTHONPATH": str(package)},
    )
    found = subprocess.run(
        [sys.executable, "-c", "import qa_api; print(qa_api.__file__)"],
        cwd=package, env={**os.environ, **spec.env}, capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    if not found.startswith(str(package)):
        raise RuntimeError(f"{tree} serves qa_api from {found}, not from its own checkout")
    server = servers.start(spec, port, model_dir.parent / "logs")
    try:
        asyncio.run(loadgen.run_phase(server.base_url, build, pairs, 8, 5.0, 10_000))  # warm-up
        pid = server.process.pid
        compute_before, cpu_before = compute_seconds(server.base_url), servers.cpu_seconds(server)
        loop_before = main_thread_cpu_seconds(pid)
        result = asyncio.run(loadgen.run_phase(server.base_url, build, pairs, 8, seconds, 100_000))
        compute = compute_seconds(server.base_url) - compute_before
        cpu = servers.cpu_seconds(server) - cpu_before
        loop_cpu = main_thread_cpu_seconds(pid) - loop_before
    finally:
        servers.stop(server)
    if result.errors or not result.ok:
        raise RuntimeError(f"{tree}: {result.errors} errors, e.g. {result.error_samples}")
    ok = result.ok
    return Measured(
        str(tree),
        ok,
        result.rps,
        compute * 1000 / ok,
        cpu * 1000 / ok,
        loop_cpu * 1000 / ok,
        result.latency(50),
    )


def main(argv: list[str] | None = None) -> int:
    from run import ensure_model, request_builders

    parser = argparse.ArgumentParser(description="Overhead per request of checkouts, A B A B.")
    parser.add_argument("trees", nargs="+", type=Path, help="checkouts (their fastapi/ is served)")
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--model", choices=["beto", "tiny"], default="beto")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=40.0)
    parser.add_argument("--pairs", type=int, default=200)
    parser.add_argument("--out", type=Path, default=None, help="write the runs as JSON")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    model_dir = ensure_model() if args.model == "beto" else ensure_tiny_model()
    pairs, build = workload.load_pairs(args.pairs), request_builders()[1]
    runs: list[Measured] = []
    for round_ in range(args.rounds):
        for tree in args.trees:
            m = measure(tree.resolve(), model_dir, args.backend, pairs, build, args.seconds)
            logger.info(
                "round %d %s: %.2f req/s, machine %.1f ms/req, forward %.1f ms/req, "
                "overhead %.1f ms/req, CPU %.1f ms/req (event loop %.1f), p50 %.0f ms",
                round_ + 1, tree, m.rps, m.machine_ms_per_request, m.compute_ms_per_request,
                m.overhead_ms_per_request, m.cpu_ms_per_request, m.loop_cpu_ms_per_request,
                m.p50_ms,
            )  # fmt: skip
            runs.append(m)
    for tree in args.trees:
        mine = [m for m in runs if m.tree == str(tree.resolve())]
        n = sum(m.requests for m in mine)
        print(
            f"{tree}: {n} requests, "
            + ", ".join(
                f"{name} {sum(getattr(m, name) * m.requests for m in mine) / n:.1f}"
                for name in (
                    "machine_ms_per_request",
                    "compute_ms_per_request",
                    "overhead_ms_per_request",
                    "cpu_ms_per_request",
                    "loop_cpu_ms_per_request",
                )
            )
        )
    if args.out:
        rows = [
            {**asdict(m), "machine_ms_per_request": m.machine_ms_per_request,
             "overhead_ms_per_request": m.overhead_ms_per_request}
            for m in runs
        ]  # fmt: skip
        args.out.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

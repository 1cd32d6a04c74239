"""Where a saturated server's CPU time goes: py-spy samples of its Python threads, by stage.

py-spy (requirements-dev.txt) samples the server's Python stacks from outside (`--nonblocking`:
the server is never paused) while the benchmark's clients keep it saturated. Each on-CPU sample is
put in the first stage whose marker appears in its stack, innermost frame first; the shares show
what the event loop and the inference thread spend their time on. Threads that only run native
code (the runtimes' own worker threads) are invisible to py-spy: their time is the forward pass.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

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

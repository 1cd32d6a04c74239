"""Benchmark our backend against the naive baseline in one run; write bench/RESULTS.md and plots.

Usage (from the repository root):  .venv/bin/python bench/run.py [--quick]

Steps: build the BETO-shaped random model once (bench/.cache), build the baseline's and the peers'
virtual environments once (bench/.venv-*), time raw forward passes per backend against the compute
floor, measure each reduced precision's agreement with torch fp32 on SQuAD-es questions, then start
each server on a loopback port and load it with 1 and 8 concurrent clients; profile ours saturated.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import hashlib
import json
import logging
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(REPO / "fastapi"))

import compute  # noqa: E402
import loadgen  # noqa: E402
import overhead  # noqa: E402
import quality  # noqa: E402
import report  # noqa: E402
import servers  # noqa: E402
import workload  # noqa: E402

logger = logging.getLogger("bench")

CACHE = BENCH / ".cache"
MODEL_DIR = CACHE / "beto-random"
ONNX_CACHE = CACHE / "onnx"
BASELINE_REQUIREMENTS = BENCH / "baseline" / "requirements.txt"
PEER_REQUIREMENTS = {
    "onnxruntime": BENCH / "peers" / "requirements-ort.txt",
    "openvino": BENCH / "peers" / "requirements-openvino.txt",
}
# optimum-intel declares torchvision, but PyPI's wheel does not load against the local CPU torch
# build, and transformers then fails to import AutoProcessor; nothing on the QA path uses it.
PEER_REMOVE = {"openvino": ["torchvision"]}
TORCH_PIN = "torch==2.13.0"
QUIET_BUSY = 0.15  # other work's share of the CPUs under which a measurement may start
_quiet_budget = {"left": 0.0}  # seconds of waiting for quiet left to this run

FULL: dict[str, Any] = {
    "pairs": 200,
    "d1": 30.0,
    "n1": 150,
    "d8": 45.0,
    "n8": 600,
    "repeats": 3,  # forward passes per shape, per round
    "forward_rounds": 3,
    "quality_questions": 200,
    "profile_s": 12.0,
    "quiet_wait_s": 45.0,
    "quiet_budget_s": 240.0,
    "rounds": 3,
}
QUICK: dict[str, Any] = {
    "pairs": 40,
    "d1": 8.0,
    "n1": 20,
    "d8": 12.0,
    "n8": 120,
    "repeats": 2,
    "forward_rounds": 1,
    "quality_questions": 30,
    "profile_s": 5.0,
    "quiet_wait_s": 10.0,
    "quiet_budget_s": 60.0,
    "rounds": 1,
}


def ensure_model() -> Path:
    """Build the BETO-shaped random model once; a half-written build never becomes the cache."""
    if (MODEL_DIR / "config.json").exists() and (MODEL_DIR / "tokenizer.json").exists():
        return MODEL_DIR
    from qa_api.testing.random_model import build_random_qa_model

    CACHE.mkdir(parents=True, exist_ok=True)
    logger.info("building the BETO-shaped random model (once) in %s", MODEL_DIR)
    with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
        build_random_qa_model(Path(tmp) / "model", size="beto", data_dir=workload.DATA_DIR)
        shutil.rmtree(MODEL_DIR, ignore_errors=True)
        (Path(tmp) / "model").rename(MODEL_DIR)
    return MODEL_DIR


def ensure_venv(venv: Path, requirements: Path, remove: list[str] | None = None) -> None:
    """Create `venv` from `requirements` (torch first, pinned), again when the file changes;
    then uninstall `remove`."""
    stamp = venv / "requirements.sha256"
    digest = hashlib.sha256(requirements.read_bytes()).hexdigest()
    if stamp.exists() and stamp.read_text() == digest:
        return
    logger.info("creating the virtual environment %s", venv)
    base_python = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base_python, "-m", "venv", "--clear", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q"]
    subprocess.run([*pip, TORCH_PIN], check=True)
    subprocess.run([*pip, "-r", str(requirements)], check=True)
    if remove:
        python = str(venv / "bin" / "python")
        subprocess.run([python, "-m", "pip", "uninstall", "-q", "-y", *remove], check=True)
    stamp.write_text(digest)


def ensure_baseline_venv() -> None:
    ensure_venv(servers.BASELINE_VENV, BASELINE_REQUIREMENTS)


def ensure_peers(model_dir: Path) -> list[str]:
    """Each peer's environment and converted model (once); the peers that could be set up."""
    ready = []
    for runtime, requirements in PEER_REQUIREMENTS.items():
        venv = servers.PEER_VENVS[runtime]
        try:
            ensure_venv(venv, requirements, PEER_REMOVE.get(runtime))
            subprocess.run(
                [str(venv / "bin" / "python"), str(BENCH / "peers" / "server.py")],
                env={**os.environ, **servers.peer_env(runtime, model_dir, CACHE)},
                check=True,
                capture_output=True,
            )
        except subprocess.CalledProcessError as exc:
            tail = (exc.stderr or b"").decode(errors="replace")[-1500:]
            logger.warning("peer %s could not be set up, left out: %s", runtime, tail)
            continue
        ready.append(runtime)
    return ready


def machine_info() -> dict[str, Any]:
    import onnxruntime
    import openvino
    import torch
    import transformers

    from qa_api.inference.hardware import usable_cpus

    memory_kib = int(Path("/proc/meminfo").read_text().split()[1])
    baseline_tf = subprocess.run(
        [
            str(servers.BASELINE_VENV / "bin" / "python"),
            "-c",
            "import transformers; print(transformers.__version__)",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    return {
        "cpu": cpu_model(),
        "cpus": usable_cpus(),
        "memory_gib": memory_kib / 2**20,
        "features": cpu_features(),
        "load_before": load_average(),
        "baseline_transformers": baseline_tf,
        "software": f"Python {platform.python_version()}, torch {torch.__version__}, "
        f"onnxruntime {onnxruntime.__version__}, openvino {openvino.__version__}, transformers "
        f"{transformers.__version__} (ours) / {baseline_tf} (baseline, peers), "
        f"{platform.system()} {platform.release()}",
    }


FEATURES = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8")


def cpu_model() -> str:
    cpuinfo = Path("/proc/cpuinfo").read_text()
    return next(
        (line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if "model name" in line),
        platform.processor(),
    )


def cpu_features() -> list[str]:
    from qa_api.inference.hardware import cpu_flags

    return [f for f in FEATURES if f in cpu_flags()]


def machine_kind() -> str:
    return report.machine_kind(cpu_model(), cpu_features())


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _busy_fraction(seconds: float = 2.0) -> float:
    """Share of all CPUs busy over the next `seconds`, from /proc/stat."""

    def snapshot() -> tuple[int, int]:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        idle = fields[3] + fields[4]  # idle + iowait
        return idle, sum(fields[:8])

    idle0, total0 = snapshot()
    time.sleep(seconds)
    idle1, total1 = snapshot()
    return 1.0 - (idle1 - idle0) / max(1, total1 - total0)


def wait_for_quiet(what: str, max_wait_s: float, threshold: float = QUIET_BUSY) -> str:
    """Wait (bounded) until the machine is nearly idle before measuring; say how busy it was.

    Other work on a small machine does not just take CPU time: it deschedules one of the
    inference threads, and every intra-op barrier then waits for it, so timings blow up.
    """
    deadline = time.monotonic() + min(max_wait_s, _quiet_budget["left"])
    started = time.monotonic()
    busy = _busy_fraction()
    while busy > threshold and time.monotonic() < deadline:
        logger.info("%s: CPUs %.0f%% busy with other work; waiting for quiet", what, busy * 100)
        time.sleep(8)
        busy = _busy_fraction()
    _quiet_budget["left"] -= time.monotonic() - started
    if busy > threshold:
        logger.warning("%s: measuring anyway with CPUs %.0f%% busy", what, busy * 100)
    return f"{busy * 100:.0f}% busy, load {load_average()}"


def forward_shapes(median_tokens: int) -> list[tuple[int, int]]:
    """(batch, tokens) the server runs: one request at the median window and at the longest, and
    a full batch at the median; lengths padded as the server pads them (its settings' defaults)."""
    from qa_api.config import Settings

    fields = Settings.model_fields
    batch, step = fields["max_batch_size"].default, fields["pad_to_multiple_of"].default
    median = -(-median_tokens // step) * step
    return [(1, median), (1, workload.MAX_SEQ_LEN), (batch, median)]


def run_forward(
    model_dir: Path, median_tokens: int, params: dict[str, Any], threads: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], float]:
    from transformers.utils import logging as hf_logging

    from qa_api.inference.backends import cpu_backends

    hf_logging.disable_progress_bar()
    config = json.loads((model_dir / "config.json").read_text())
    wait_for_quiet("matmul peaks", params["quiet_wait_s"])
    best, all_peaks = compute.measure_peaks(threads)
    busy = wait_for_quiet("forward passes", params["quiet_wait_s"])
    logger.info("timing raw forward passes (%s)", busy)
    shapes = forward_shapes(median_tokens)
    measured = compute.time_forward(
        model_dir,
        list(cpu_backends()),
        shapes,
        best,
        config,
        threads,
        ONNX_CACHE,
        params["repeats"],
        params["forward_rounds"],
    )
    return (
        [{**t.__dict__, "busy_before": busy} for t in measured],
        [p.__dict__ for p in all_peaks],
        compute.forward_flops(shapes[0][1], config),
    )


def run_quality(model_dir: Path, params: dict[str, Any]) -> list[dict[str, Any]]:
    from qa_api.inference.backends import cpu_backends

    busy = wait_for_quiet("quality", params["quiet_wait_s"])
    logger.info("answer agreement with torch fp32 (%s)", busy)
    measured = quality.agreement(
        model_dir, list(cpu_backends()), ONNX_CACHE, params["quality_questions"]
    )
    return [{**a.__dict__, "share": a.share} for a in measured]


def request_builders() -> tuple[loadgen.RequestBuilder, loadgen.RequestBuilder]:
    def baseline(pair: workload.Pair) -> tuple[str, str, dict[str, object]]:
        return "POST", "/qas/", {"params": {"context": pair.context, "question": pair.question}}

    def ours(pair: workload.Pair) -> tuple[str, str, dict[str, object]]:
        body = {
            "context": pair.context,
            "question": pair.question,
            "max_seq_len": workload.MAX_SEQ_LEN,
            "doc_stride": workload.DOC_STRIDE,
        }
        return "POST", "/v1/qa", {"json": body}

    return baseline, ours


def _phase_summary(result: loadgen.PhaseResult, cpu_s: float) -> dict[str, Any]:
    return {
        "rps": result.rps,
        "cpu_ms_per_request": cpu_s * 1000 / result.ok if result.ok else float("nan"),
        "requests": result.ok,
        "duration_s": result.duration_s,
        "p50_ms": result.latency(50),
        "p90_ms": result.latency(90),
        "p99_ms": result.latency(99),
        "errors": result.errors,
        "error_samples": result.error_samples,
        "health_p50_ms": result.health(50),
        "health_p99_ms": result.health(99),
        "health_samples": len(result.health_ms),
        "health_errors": result.health_errors,
        "server_stages_p50_ms": {k: loadgen.percentile(v, 50) for k, v in result.stages_ms.items()},
    }


def serve_and_load(
    targets: list[tuple[servers.ServerSpec, str, loadgen.RequestBuilder]],
    pairs: list[workload.Pair],
    params: dict[str, Any],
    profiled: set[str],
) -> list[dict[str, Any]]:
    """Start every server (one at a time, timing cold start), then load them in rotating rounds.

    Only one server is under load at any moment; rotating in short rounds spreads whatever else
    the machine is doing evenly over the servers, so the ratios between them stay fair. Afterwards
    the servers in `profiled` are saturated once more (8 clients) under py-spy; that phase is not
    part of their figures.
    """
    running: list[tuple[servers.RunningServer, str, loadgen.RequestBuilder, str]] = []
    try:
        for spec, label, build in targets:
            before = wait_for_quiet(f"cold start of {label}", params["quiet_wait_s"])
            port = int(spec.command[spec.command.index("--port") + 1])
            server = servers.start(spec, port, CACHE / "logs")
            logger.info("%s ready after %.1f s (%s)", label, server.cold_start_s, before)
            running.append((server, label, build, before))
        totals: dict[tuple[str, int], loadgen.PhaseResult] = {}
        cpu_s: dict[tuple[str, int], float] = {}
        rounds = params["rounds"]
        for clients, duration, cap in (
            (1, params["d1"], params["n1"]),
            (8, params["d8"], params["n8"]),
        ):
            for round_ in range(rounds):
                for server, label, build, _ in running:
                    busy = wait_for_quiet(f"{label}, {clients} clients", params["quiet_wait_s"])
                    cpu_before = servers.cpu_seconds(server)
                    result = asyncio.run(
                        loadgen.run_phase(
                            server.base_url,
                            build,
                            pairs,
                            clients,
                            duration / rounds,
                            max(1, cap // rounds),
                            health_path=server.spec.health_path if clients > 1 else None,
                            warmup_requests=2 if clients == 1 and round_ == 0 else 0,
                        )
                    )
                    logger.info(
                        "%s, %d clients, round %d: %.2f req/s, p50 %.0f ms, p99 %.0f ms, "
                        "%d errors, health p99 %.1f ms (%s)",
                        label,
                        clients,
                        round_ + 1,
                        result.rps,
                        result.latency(50),
                        result.latency(99),
                        result.errors,
                        result.health(99),
                        busy,
                    )
                    key = (label, clients)
                    totals[key] = totals[key].merge(result) if key in totals else result
                    cpu_s[key] = cpu_s.get(key, 0.0) + servers.cpu_seconds(server) - cpu_before
        profiles = {
            label: profile_saturated(server, build, pairs, params)
            for server, label, build, _ in running
            if label in profiled
        }
    finally:
        for server, *_ in running:
            servers.stop(server)
    return [
        {
            "label": label,
            "cold_start_s": server.cold_start_s,
            "peak_rss_mib": server.peak_rss_mb,
            "load_before": before,
            "phases": {
                str(c): _phase_summary(totals[(label, c)], cpu_s[(label, c)]) for c in (1, 8)
            },
            **({"profile": profiles[label]} if label in profiles else {}),
        }
        for server, label, _, before in running
    ]


def profile_saturated(
    server: servers.RunningServer,
    build: loadgen.RequestBuilder,
    pairs: list[workload.Pair],
    params: dict[str, Any],
) -> dict[str, Any]:
    """Where the server's CPU time goes at 8 clients: py-spy's samples by stage."""
    wait_for_quiet(f"profile of {server.spec.name}", params["quiet_wait_s"])
    raw = CACHE / "profiles" / f"{server.spec.name.replace(' ', '_')}.txt"
    spy = overhead.start(server.process.pid, params["profile_s"], raw)
    cpu_before = servers.cpu_seconds(server)
    result = asyncio.run(
        loadgen.run_phase(server.base_url, build, pairs, 8, params["profile_s"], 10_000)
    )
    cpu_ms = (servers.cpu_seconds(server) - cpu_before) * 1000 / max(1, result.ok)
    shares = overhead.stage_shares(raw) if overhead.finish(spy) else {}
    logger.info("%s profile: %.2f req/s, %s", server.spec.name, result.rps, shares)
    return {"rps": result.rps, "cpu_ms_per_request": cpu_ms, "stage_shares": shares}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short phases, for a fast check")
    parser.add_argument(
        "--backends",
        default=None,
        help="comma-separated QA_BACKEND values to serve (default: auto plus the fastest)",
    )
    parser.add_argument("--skip-forward", action="store_true", help="reuse forward timings")
    parser.add_argument(
        "--forward-only", action="store_true", help="only time raw forward passes; print them"
    )
    parser.add_argument("--report-only", action="store_true", help="re-render from results.json")
    parser.add_argument(
        "--results", type=Path, default=None, help="default: bench/results-<machine kind>.json"
    )
    args = parser.parse_args(argv)
    args.results = args.results or BENCH / f"results-{machine_kind()}.json"
    # Libraries (onnxruntime's quantizer logs every tensor) stay at WARNING; the bench says INFO.
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    for ours in ("bench", "compute", "quality", "overhead"):
        logging.getLogger(ours).setLevel(logging.INFO)

    if args.report_only:
        results = json.loads(args.results.read_text())
        results["notes"] = read_notes()
        write_report(results, args.results)
        return 0

    params = QUICK if args.quick else FULL
    _quiet_budget["left"] = params["quiet_budget_s"]
    started = time.perf_counter()
    ensure_baseline_venv()
    model_dir = ensure_model()
    machine = machine_info()
    pairs = workload.load_pairs(params["pairs"])
    profile, _ = workload.length_profile(pairs, model_dir)
    logger.info("workload: %s", profile)

    if args.forward_only:
        forward, _, _ = run_forward(model_dir, profile.median_tokens, params, machine["cpus"])
        for f in forward:
            sys.stdout.write(
                f"{f['backend']:<14} batch {f['batch']} x {f['seq_len']}: "
                f"median {f['median_ms']:7.1f} ms, "
                f"best {f['min_ms']:7.1f} ms, floor {f['floor_ms']:6.1f} ms "
                f"(best/floor {f['min_ms'] / f['floor_ms']:.2f}x)\n"
            )
        return 0
    previous = json.loads(args.results.read_text()) if args.results.exists() else None
    if args.skip_forward and previous:
        forward, peaks, flops = previous["forward"], previous["peaks"], previous["flops_per_window"]
        agreement = previous.get("quality", [])
    else:
        forward, peaks, flops = run_forward(
            model_dir, profile.median_tokens, params, machine["cpus"]
        )
        agreement = run_quality(model_dir, params)

    from qa_api.inference.backends import resolve_backend

    default = resolve_backend("auto", "cpu")
    one_median = [f for f in forward if f["batch"] == 1 and f["seq_len"] != workload.MAX_SEQ_LEN]
    fastest = min(one_median, key=lambda f: f["min_ms"])["backend"]
    # The default path is served as QA_BACKEND=auto, exactly as deployed.
    backends = args.backends.split(",") if args.backends else ["auto"]
    if not args.backends and fastest != default:
        backends.append(fastest)
    labels = {b: f"ours {b}" for b in backends}
    if "auto" in labels:
        labels["auto"] = f"ours auto={default}"
    served_as = {b: default if b == "auto" else b for b in backends}
    roles = {
        role: next((labels[b] for b, real in served_as.items() if real == want), None)
        for role, want in (("default", default), ("fastest", fastest))
    }

    build_baseline, build_ours = request_builders()
    targets = [(servers.baseline_spec(model_dir, servers.free_port()), "baseline", build_baseline)]
    for backend in backends:
        spec = servers.ours_spec(model_dir, servers.free_port(), backend, ONNX_CACHE)
        targets.append((spec, labels[backend], build_ours))
    for runtime in ensure_peers(model_dir):
        spec = servers.peer_spec(runtime, model_dir, servers.free_port(), CACHE)
        targets.append((spec, f"peer {runtime}", build_baseline))
    profiled = {label for label in (roles["default"], roles["fastest"]) if label}
    served = serve_and_load(targets, pairs, params, profiled)

    results = {
        "command": "python bench/run.py" + (" --quick" if args.quick else ""),
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "quick": args.quick,
        "machine": machine,
        "workload": {
            "pairs": len(pairs),
            "dataset": workload.DATASET,
            "vocab_size": json.loads((model_dir / "config.json").read_text())["vocab_size"],
            **profile.__dict__,
        },
        "durations": {"1": params["d1"], "8": params["d8"]},
        "rounds": params["rounds"],
        "forward_repeats": params["repeats"] * params["forward_rounds"],
        "forward": forward,
        "quality": agreement,
        "peaks": peaks,
        "flops_per_window": flops,
        "roles": roles,
        "servers": served,
        "runtime_s": time.perf_counter() - started,
        "notes": read_notes(),
    }
    args.results.write_text(json.dumps(results, indent=2) + "\n")
    write_report(results, args.results)
    logger.info("done in %.0f s", time.perf_counter() - started)
    return 0


def read_notes() -> list[str]:
    """The analysis of the recorded run (bench/NOTES.md bullet lines), shown under Notes."""
    path = BENCH / "NOTES.md"
    if not path.exists():
        return []
    return [ln[2:] for ln in path.read_text().splitlines() if ln.startswith("- ")]


def write_report(results: dict[str, Any], path: Path) -> None:
    """RESULTS.md, the plots and the docs' headline for this run, with each other machine kind's
    last recorded run (bench/results-<kind>.json) beside it."""
    others = [
        json.loads(other.read_text())
        for other in sorted(BENCH.glob("results-*.json"))
        if other.resolve() != path.resolve()
    ]
    plots = report.plot(results, REPO)
    markdown = report.render_markdown(results, plots, others)
    # bench/long_context.py's, bench/passages.py's and bench/overhead.py's sections (between
    # their markers) outlive a rerun of this benchmark.
    results_md = BENCH / "RESULTS.md"
    previous = results_md.read_text() if results_md.exists() else ""
    for start, end in (
        ("<!-- long-context -->", "<!-- /long-context -->"),
        ("<!-- bench:passages -->", "<!-- /bench:passages -->"),
        ("<!-- bench:overhead-ab -->", "<!-- /bench:overhead-ab -->"),
    ):
        if start in previous and end in previous:
            kept = previous[previous.index(start) : previous.index(end) + len(end)]
            markdown = f"{markdown.rstrip()}\n\n{kept}\n"
    results_md.write_text(markdown)
    docs = REPO / "docs" / "bench.md"
    if docs.exists():
        start, end = "<!-- bench:headline -->", "<!-- /bench:headline -->"
        text = docs.read_text()
        if start in text and end in text:
            before, rest = text.split(start, 1)
            after = rest.split(end, 1)[1]
            tables = "\n\n".join(report.headline(r) for r in [results, *others])
            docs.write_text(f"{before}{start}\n{tables}\n{end}{after}")
    sys.stdout.write(markdown)


if __name__ == "__main__":
    sys.exit(main())

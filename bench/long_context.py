"""Long documents next to short questions: fairness, progress and abandoned work, per policy.

Usage (from the repository root):  .venv/bin/python bench/long_context.py [--quick]

First a server with default settings (QA_BACKEND=auto) on the BETO-shaped random model answers
the 50,000-character table alone: the largest context accepted by default must be answered by
default. Then, for each run (policy@backend: QA_SCHEDULING and QA_BACKEND), a server with
default settings but a timeout long enough for the long documents to run on a slow shared
machine (--timeout):
1. idle: one client sends short SQuAD-es questions back to back;
2. busy: the same, while another client sends long documents back to back (a 50,000-character
   table of numbers and short words, and 45,000 characters of SQuAD-es prose);
3. abandoned: a client sends the table and gives up after a few seconds (closing the
   connection); the server's compute counter says how much it computed after that.
Writes bench/long_context.json and the "Long documents" section of bench/RESULTS.md (with the
analysis in bench/long_context_notes.md; `--report-only` rewrites it from the JSON).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import random
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent / "fastapi"))

import loadgen  # noqa: E402
import run  # noqa: E402
import servers  # noqa: E402
import workload  # noqa: E402

logger = logging.getLogger("bench")

# policy@backend: layer-steppable torch under both policies, and the default path (`auto`).
RUNS = ("shortest_first@torch-bf16", "round_robin@torch-bf16", "shortest_first@auto")
TABLE_CHARS = 50_000
PROSE_CHARS = 45_000
GIVE_UP_S = 4.0  # the abandoning client's timeout
POLICY_TIMEOUT_S = 1000.0
SECTION = ("<!-- long-context -->", "<!-- /long-context -->")
NOTES = BENCH / "long_context_notes.md"  # the analysis of the recorded run, kept with it
FULL = {"pairs": 100, "idle_s": 30.0, "busy_s": 90.0, "abandon": 3, "quiet_wait_s": 30.0}
QUICK = {"pairs": 30, "idle_s": 15.0, "busy_s": 40.0, "abandon": 1, "quiet_wait_s": 10.0}


@dataclass
class LongOutcome:
    name: str
    chars: int
    status: int
    seconds: float
    windows: int | None


@dataclass
class PolicyResult:
    policy: str
    backend: str
    idle: dict[str, Any] = field(default_factory=dict)
    busy: dict[str, Any] = field(default_factory=dict)
    long_docs: list[LongOutcome] = field(default_factory=list)
    batch_s: float = 0.0  # mean compute of one forward batch during the busy phase
    step_max_s: float = 0.0
    abandoned_s: list[float | None] = field(default_factory=list)
    cancelled_windows: float = 0.0
    busy_before: str = ""
    timeout_s: float = 0.0

    @property
    def label(self) -> str:
        return f"{self.policy}, {self.backend}"


def numbers_table(chars: int, seed: int = 0) -> str:
    """A table pasted from a report: numbers and short words, `chars` characters."""
    rng = random.Random(seed)
    words = ["Norte", "Sur", "Este", "Oeste", "Centro", "Islas", "Costa", "Sierra", "Valle",
             "trigo", "maíz", "uva", "olivo", "leche", "lana", "sal", "vino", "miel", "kg", "t",
             "ha", "l", "€"]  # fmt: skip
    lines = ["Región; Producto; Unidad; 2017; 2018; 2019; 2020; 2021; 2022; Var."]
    while sum(len(line) + 1 for line in lines) < chars:
        cells = [rng.choice(words) for _ in range(3)]
        cells += [f"{rng.randint(0, 99999)}.{rng.randint(0, 99):02d}" for _ in range(6)]
        lines.append("; ".join([*cells, f"{rng.uniform(-30, 30):+.2f}%"]))
    return "\n".join(lines)[:chars]


def prose(chars: int) -> str:
    """SQuAD-es paragraphs one after the other, `chars` characters."""
    squad = json.loads((workload.DATA_DIR / workload.DATASET).read_text(encoding="utf-8"))
    paragraphs = [p["context"] for a in squad["data"] for p in a["paragraphs"]]
    return "\n\n".join(paragraphs)[:chars]


def long_documents() -> list[tuple[str, dict[str, Any]]]:
    return [
        ("table 50k", {"context": numbers_table(TABLE_CHARS), "question": "¿Cuánto vino en 2021?"}),
        ("prose 45k", {"context": prose(PROSE_CHARS), "question": "¿Quién fundó la ciudad?"}),
    ]


def summary(result: loadgen.PhaseResult) -> dict[str, Any]:
    return {
        "requests": result.ok,
        "p50_ms": result.latency(50),
        "p99_ms": result.latency(99),
        "errors": result.errors,
        "error_samples": result.error_samples,
        # where the time goes, as the server reports it (timings): queue_ms is the wait for
        # the first layer step, the share a long document takes from a short question
        "server_p50_ms": {k: loadgen.percentile(v, 50) for k, v in result.stages_ms.items()},
    }


def metrics(url: str) -> dict[str, float]:
    """The server's Prometheus counters, summed over labels."""
    totals: dict[str, float] = {}
    for line in httpx.get(f"{url}/metrics", timeout=10).text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            key = name.split("{", 1)[0]
            totals[key] = totals.get(key, 0.0) + float(value)
    return totals


async def long_client(url: str, until: float, outcomes: list[LongOutcome]) -> None:
    """Long documents back to back until `until`; the one running then is abandoned."""
    documents = long_documents()
    async with httpx.AsyncClient(base_url=url, timeout=600) as client:
        turn = 0
        while time.perf_counter() < until:
            name, body = documents[turn % len(documents)]
            turn += 1
            started = time.perf_counter()
            left = until - started
            try:
                response = await asyncio.wait_for(client.post("/v1/qa", json=body), left)
            except TimeoutError:
                return
            data = response.json()
            windows = data.get("num_windows") if response.status_code == 200 else None
            outcomes.append(
                LongOutcome(
                    name,
                    len(body["context"]),
                    response.status_code,
                    time.perf_counter() - started,
                    windows,
                )
            )
            logger.info("long %s: %d in %.1f s", name, response.status_code, outcomes[-1].seconds)


def abandoned_compute(url: str, body: dict[str, Any]) -> float | None:
    """Seconds the server computed after a caller gave up on a long document (None: it was
    not running when the caller gave up)."""
    try:
        response = httpx.post(f"{url}/v1/qa", json=body, timeout=httpx.Timeout(60, read=GIVE_UP_S))
        logger.warning("the document got %d before the client gave up", response.status_code)
        return None
    except httpx.ReadTimeout:
        at_close = metrics(url)["qa_compute_seconds_total"]
    last, still_since = at_close, time.perf_counter()
    while time.perf_counter() - still_since < 2.0:
        time.sleep(0.05)
        now = metrics(url)["qa_compute_seconds_total"]
        if now != last:
            last, still_since = now, time.perf_counter()
    return last - at_close


def start_server(model_dir: Path, env: dict[str, str]) -> servers.RunningServer:
    """Our server in the default path (QA_BACKEND=auto) unless `env` says otherwise."""
    spec = servers.ours_spec(model_dir, servers.free_port(), "auto", run.ONNX_CACHE)
    spec.env.update(env)
    port = int(spec.command[spec.command.index("--port") + 1])
    return servers.start(spec, port, run.CACHE / "logs")


def default_check(model_dir: Path, params: dict[str, Any]) -> dict[str, Any]:
    """The 50k table alone on a server with default settings: status, seconds, windows."""
    server = start_server(model_dir, {})
    try:
        busy = run.wait_for_quiet("default settings", params["quiet_wait_s"])
        name, body = long_documents()[0]
        started = time.perf_counter()
        response = httpx.post(f"{server.base_url}/v1/qa", json=body, timeout=600)
        seconds = time.perf_counter() - started
        data = response.json()
    finally:
        servers.stop(server)
    logger.info("default settings, %s alone: %d in %.1f s", name, response.status_code, seconds)
    return {
        "document": name,
        "status": response.status_code,
        "seconds": seconds,
        "windows": data.get("num_windows"),
        "error": data.get("error"),
        "busy_before": busy,
    }


def measure(
    run_name: str, model_dir: Path, pairs: list[workload.Pair], params: dict[str, Any]
) -> PolicyResult:
    policy, backend = run_name.split("@")
    result = PolicyResult(policy, backend, timeout_s=params["timeout_s"])
    env = {
        "QA_SCHEDULING": policy,
        "QA_BACKEND": backend,
        "QA_REQUEST_TIMEOUT_S": str(params["timeout_s"]),
    }
    server = start_server(model_dir, env)
    url = server.base_url
    _, build = run.request_builders()
    try:
        result.busy_before = run.wait_for_quiet(f"{run_name}: idle", params["quiet_wait_s"])
        idle = asyncio.run(
            loadgen.run_phase(url, build, pairs, 1, params["idle_s"], 10_000, warmup_requests=2)
        )
        result.idle = summary(idle)
        logger.info(
            "%s idle: p50 %.0f ms, p99 %.0f ms", run_name, idle.latency(50), idle.latency(99)
        )

        before = metrics(url)

        async def busy_phase() -> loadgen.PhaseResult:
            until = time.perf_counter() + params["busy_s"]
            short = loadgen.run_phase(url, build, pairs, 1, params["busy_s"], 10_000)
            shorts, _ = await asyncio.gather(short, long_client(url, until, result.long_docs))
            return shorts

        busy = asyncio.run(busy_phase())
        after = metrics(url)
        result.busy = summary(busy)
        batches = after["qa_inference_seconds_count"] - before["qa_inference_seconds_count"]
        seconds = after["qa_inference_seconds_sum"] - before["qa_inference_seconds_sum"]
        result.batch_s = seconds / max(batches, 1)
        logger.info(
            "%s busy: p50 %.0f ms, p99 %.0f ms", run_name, busy.latency(50), busy.latency(99)
        )
        time.sleep(3)  # the long document left running at the end is dropped
        for turn in range(params["abandon"]):
            _, body = long_documents()[turn % 2]
            result.abandoned_s.append(abandoned_compute(url, body))
            logger.info("%s abandoned: %s s", run_name, result.abandoned_s[-1])
        result.cancelled_windows = metrics(url).get("qa_cancelled_windows_total", 0.0)
    finally:
        servers.stop(server)
    return result


def render(
    results: list[PolicyResult],
    default: dict[str, Any] | None,
    machine: dict[str, Any],
    date: str,
    quick: bool,
) -> str:
    lines = [
        f"Recorded by `python bench/long_context.py{' --quick' if quick else ''}` on {date}: "
        f"{machine['cpu']}, {machine['cpus']} CPUs, {', '.join(machine['features'])}; "
        f"default settings but `QA_REQUEST_TIMEOUT_S={results[0].timeout_s:g}`, so that the "
        "long documents run even when the shared machine is slow, and the backend named per row "
        "(`auto` is the default path); the machine was shared with other work "
        f"({'; '.join(r.label + ': ' + r.busy_before for r in results)} before measuring).",
        "",
        "| policy, backend | short p50 idle | p99 idle | p50 with a long doc | p99 with "
        "| p50 ratio | queue / compute p50 idle | queue / compute p50 with "
        "| long docs (windows, s) | mean batch s | compute after giving up, s |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        docs = ", ".join(
            f"{d.name} {d.windows}w {d.seconds:.0f}" if d.status == 200 else f"{d.name} {d.status}"
            for d in r.long_docs
        )
        docs = docs or "none finished in the phase"
        ratio = r.busy["p50_ms"] / r.idle["p50_ms"]
        stages = [
            f"{p['server_p50_ms'].get('queue_ms', 0):.0f} / "
            f"{p['server_p50_ms'].get('inference_ms', 0):.0f} ms"
            for p in (r.idle, r.busy)
        ]
        abandoned = ", ".join("-" if s is None else f"{s:.2f}" for s in r.abandoned_s)
        lines.append(
            f"| {r.label} | {r.idle['p50_ms']:.0f} ms | {r.idle['p99_ms']:.0f} ms "
            f"| {r.busy['p50_ms']:.0f} ms | {r.busy['p99_ms']:.0f} ms | {ratio:.2f}x "
            f"| {stages[0]} | {stages[1]} "
            f"| {docs} | {r.batch_s:.2f} | {abandoned} |"
        )
    if default is not None:
        outcome = (
            f"answered in {default['seconds']:.1f} s ({default['windows']} windows)"
            if default["status"] == 200
            else f"{default['status']}: {default['error'].rstrip('.')}"
        )
        lines += [
            "",
            f"Default settings, the {default['document']} alone ({default['busy_before']} "
            f"before): {outcome}.",
        ]
    return "\n".join(lines)


def write_section(markdown: str) -> None:
    """The section of RESULTS.md between SECTION's markers, with the analysis in NOTES."""
    if NOTES.exists():
        markdown += "\n\n" + NOTES.read_text().strip()
    path = BENCH / "RESULTS.md"
    text = path.read_text() if path.exists() else ""
    start, end = SECTION
    block = f"{start}\n## Long documents next to short questions\n\n{markdown}\n{end}"
    if start in text and end in text:
        before, rest = text.split(start, 1)
        text = before + block + rest.split(end, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short phases, for a fast check")
    parser.add_argument("--runs", default=",".join(RUNS), help="policy@QA_BACKEND, ...")
    parser.add_argument("--timeout", type=float, default=POLICY_TIMEOUT_S, help="policy servers")
    parser.add_argument("--skip-default", action="store_true", help="no default-settings check")
    parser.add_argument("--report-only", action="store_true", help="re-render from the JSON")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("bench").setLevel(logging.INFO)
    if args.report_only:
        recorded = json.loads((BENCH / "long_context.json").read_text())
        results = [
            PolicyResult(**{**r, "long_docs": [LongOutcome(**d) for d in r["long_docs"]]})
            for r in recorded["results"]
        ]
        markdown = render(
            results, recorded["default"], recorded["machine"], recorded["date"], recorded["quick"]
        )
        write_section(markdown)
        sys.stdout.write(markdown + "\n")
        return 0
    params = {**(QUICK if args.quick else FULL), "timeout_s": args.timeout}
    run._quiet_budget["left"] = 300.0
    model_dir = run.ensure_model()
    from qa_api.inference.hardware import usable_cpus

    machine = {"cpu": run.cpu_model(), "cpus": usable_cpus(), "features": run.cpu_features()}
    logger.info("CPU: %s, %d CPUs, flags %s", machine["cpu"], machine["cpus"], machine["features"])
    pairs = workload.load_pairs(params["pairs"])
    default = None if args.skip_default else default_check(model_dir, params)
    results = [measure(r, model_dir, pairs, params) for r in args.runs.split(",") if r]
    date = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    (BENCH / "long_context.json").write_text(
        json.dumps(
            {"date": date, "quick": args.quick, "machine": machine, "default": default,
             "results": [asdict(r) for r in results]},
            indent=2,
        ) + "\n"
    )  # fmt: skip
    markdown = render(results, default, machine, date, args.quick)
    write_section(markdown)
    sys.stdout.write(markdown + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

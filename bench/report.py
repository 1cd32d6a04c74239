"""Render a results dict (bench/results.json) as bench/RESULTS.md and the plots in img/."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

Results = dict[str, Any]

LATENCY_TARGET_FASTEST = 0.25
LATENCY_TARGET_DEFAULT = 0.5
RPS_TARGET = 4.0
HEALTH_P99_TARGET_MS = 50.0
FLOOR_TARGET = 1.6
AGREEMENT_TARGET = 0.99  # bf16 and fp32 paths: best answer = torch fp32's


def machine_kind(cpu: str, features: list[str]) -> str:
    """The kind of machine a run is filed under (bench/results-<kind>.json): vendor, bf16 units."""
    vendor = "intel" if "Intel" in cpu else "amd" if "AMD" in cpu else "cpu"
    bf16 = "amx" if "amx_bf16" in features else "avx512-bf16" if "avx512_bf16" in features else ""
    return f"{vendor}-{bf16 or 'no-bf16'}"


def kind(results: Results) -> str:
    return machine_kind(results["machine"]["cpu"], results["machine"]["features"])


def is_peer(label: str) -> bool:
    return label.startswith("peer ")


def median_forwards(results: Results, batch: int = 1) -> list[dict[str, Any]]:
    """Forward timings at the median window (not the 384-token shape) for one batch size."""
    longest = max(f["seq_len"] for f in results["forward"])
    shortest = min(f["seq_len"] for f in results["forward"])
    return [
        f
        for f in results["forward"]
        if f["batch"] == batch and (f["seq_len"] != longest or longest == shortest)
    ]


def batched_forward_per_window(results: Results, backend: str) -> float | None:
    """Best forward time per window of the backend in a full batch at the median length."""
    batch = max(f["batch"] for f in results["forward"])
    for f in median_forwards(results, batch):
        if f["backend"] == backend:
            return float(f["min_ms"]) / batch
    return None


def _fmt(value: float | None, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:,.{digits}f}"


def _verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def targets(results: Results) -> list[dict[str, Any]]:
    """Each target with its measured value, the limit and whether it is met."""
    servers = {s["label"]: s for s in results["servers"]}
    base = servers["baseline"]
    rows: list[dict[str, Any]] = []
    for role, limit in (("fastest", LATENCY_TARGET_FASTEST), ("default", LATENCY_TARGET_DEFAULT)):
        label = results["roles"].get(role)
        if label not in servers:
            continue
        ours = servers[label]
        ratio = ours["phases"]["1"]["p50_ms"] / base["phases"]["1"]["p50_ms"]
        rows.append(
            {
                "target": f"p50 latency, 1 client, {role} path ({label}) <= {limit}x baseline",
                "value": f"{ratio:.3f}x",
                "met": ratio <= limit,
                "by": ratio / limit,
            }
        )
    for role in ("default", "fastest"):
        label = results["roles"].get(role)
        if label not in servers or (role == "fastest" and label == results["roles"]["default"]):
            continue
        ours = servers[label]
        ratio = ours["phases"]["8"]["rps"] / base["phases"]["8"]["rps"]
        errors = ours["phases"]["8"]["errors"] + ours["phases"]["1"]["errors"]
        rows.append(
            {
                "target": f"req/s at 8 clients, {role} path ({label}) >= {RPS_TARGET}x baseline, "
                "0 errors",
                "value": f"{ratio:.2f}x, {errors} errors",
                "met": ratio >= RPS_TARGET and errors == 0,
                "by": RPS_TARGET / ratio,
            }
        )
        p99 = ours["phases"]["8"]["health_p99_ms"]
        rows.append(
            {
                "target": f"/health p99 while saturated, {role} path ({label}) < "
                f"{HEALTH_P99_TARGET_MS:.0f} ms",
                "value": f"{p99:.1f} ms",
                "met": p99 < HEALTH_P99_TARGET_MS,
                "by": p99 / HEALTH_P99_TARGET_MS,
            }
        )
    default = servers.get(results["roles"].get("default") or "")
    for peer in (s for label, s in servers.items() if is_peer(label)):
        if default is None:
            break
        ratio = default["phases"]["8"]["rps"] / peer["phases"]["8"]["rps"]
        rows.append(
            {
                "target": f"req/s at 8 clients, default path ahead of {peer['label']}",
                "value": f"{ratio:.2f}x",
                "met": ratio > 1.0,
                "by": 1.0 / ratio,
            }
        )
    for q in results.get("quality", []):
        if q["backend"] == "torch-fp32":
            continue
        int8 = q["backend"].endswith("int8")
        rows.append(
            {
                "target": f"{q['backend']}: best answer = torch fp32's on SQuAD-es "
                + ("(reported)" if int8 else f">= {AGREEMENT_TARGET:.0%}"),
                "value": f"{q['share']:.1%} ({q['same_answer']} of {q['questions']})"
                + _decisive(q, " ; where fp32's best answer leads by > 0.05: {}"),
                "met": int8 or q["share"] >= AGREEMENT_TARGET,
                "by": AGREEMENT_TARGET / q["share"] if q["share"] else float("inf"),
            }
        )
    for fwd in median_forwards(results):
        ratio = fwd["min_ms"] / fwd["floor_ms"]
        rows.append(
            {
                "target": f"{fwd['backend']} forward within {FLOOR_TARGET}x of its compute floor",
                "value": f"{ratio:.2f}x ({fwd['min_ms']:.0f} ms vs {fwd['floor_ms']:.0f} ms)",
                "met": ratio <= FLOOR_TARGET,
                "by": ratio / FLOOR_TARGET,
            }
        )
    return rows


def backend_table(results: Results) -> list[str]:
    """Speed and quality side by side, one row per backend (fastest first at batch 1)."""
    agreement = {q["backend"]: q for q in results.get("quality", [])}
    one = {f["backend"]: f for f in median_forwards(results)}
    longest = {
        f["backend"]: f for f in results["forward"] if f["batch"] == 1 and f not in one.values()
    }
    batch = max(f["batch"] for f in results["forward"])
    reference = one.get("torch-fp32")
    lines = [
        "| backend | 1 x median: median / best ms | vs torch fp32 | 1 x 384: median ms "
        f"| {batch} x median: best ms per window | best answer = torch fp32's "
        "| same, where fp32's best leads by > 0.05 |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, f in sorted(one.items(), key=lambda item: item[1]["min_ms"]):
        q = agreement.get(name)
        per_window = batched_forward_per_window(results, name)
        lines.append(
            f"| {name} | {_fmt(f['median_ms'])} / {_fmt(f['min_ms'])} | "
            + (f"{f['min_ms'] / reference['min_ms']:.2f}x" if reference else "n/a")
            + f" | {_fmt(longest[name]['median_ms']) if name in longest else 'n/a'} | "
            f"{_fmt(per_window)} | "
            + (f"{q['share']:.1%} ({q['same_answer']}/{q['questions']})" if q else "n/a")
            + f" | {_decisive(q, '{}') if q else 'n/a'} |"
        )
    return lines


def _decisive(q: dict[str, Any], template: str) -> str:
    """Agreement on the questions whose fp32 best answer is not a near-tie (bench/quality.py)."""
    if not q.get("decisive"):
        return ""
    return template.format(
        f"{q['decisive_same'] / q['decisive']:.1%} ({q['decisive_same']}/{q['decisive']})"
    )


def overhead_table(results: Results) -> list[str]:
    """Per request at 8 clients: the machine's time, the forward pass's share, the rest."""
    cpus, windows = results["machine"]["cpus"], results["workload"]["mean_windows"]
    lines = [
        "| server | req/s @8 | machine ms per request (1000 / req/s) | of which batched forward "
        "| overhead per request | server CPU ms per request (all cores) |",
        "|---|---|---|---|---|---|",
    ]
    for s in results["servers"]:
        if s["label"] == "baseline" or is_peer(s["label"]):
            continue
        eight = s["phases"]["8"]
        backend = s["label"].split("=")[-1].removeprefix("ours ")
        forward = batched_forward_per_window(results, backend)
        machine = 1000 / eight["rps"] if eight["rps"] else float("nan")
        fwd = forward * windows if forward is not None else None
        lines.append(
            f"| {s['label']} | {_fmt(eight['rps'], 2)} | {_fmt(machine)} | {_fmt(fwd)} | "
            f"{_fmt(machine - fwd if fwd is not None else None)} | "
            f"{_fmt(eight.get('cpu_ms_per_request'))} ({cpus} cores) |"
        )
    profiled = [s for s in results["servers"] if s.get("profile")]
    if profiled:
        lines += [
            "",
            "py-spy samples of the saturated server's Python threads (8 clients, a separate "
            "phase), share of on-CPU samples by stage; the runtimes' own native threads are not "
            "sampled (they are the forward pass):",
            "",
            "| server | req/s while sampled | stage shares |",
            "|---|---|---|",
        ]
        for s in profiled:
            shares = ", ".join(
                f"{stage} {share:.0%}" for stage, share in s["profile"]["stage_shares"].items()
            )
            lines.append(f"| {s['label']} | {_fmt(s['profile']['rps'], 2)} | {shares or 'n/a'} |")
    return lines


def render_markdown(
    results: Results, plot_paths: list[str], others: list[Results] | None = None
) -> str:
    m, w = results["machine"], results["workload"]
    servers = results["servers"]
    lines = [
        "# Benchmark results",
        "",
        f"Generated by `{results['command']}` on {results['date']} "
        f"({'quick check' if results['quick'] else 'full run'}).",
        "",
        "## Machine",
        "",
        f"- CPU: {m['cpu']}, {m['cpus']} CPUs usable, {m['memory_gib']:.0f} GiB; "
        f"features: {', '.join(m['features']) or 'none of avx512_bf16/amx/vnni'}",
        f"- Load average before the run: {m['load_before']}. Other work on the CPUs just before "
        "each server's measurement (the run waits, bounded, for under 15% busy): "
        + "; ".join(f"{s['label']}: {s['load_before']}" for s in servers),
        f"- Software: {m['software']}",
        "",
        "## Workload",
        "",
        f"- {w['pairs']} real question/context pairs from `{w['dataset']}` (fixed seed), the same "
        "requests in the same order for every server.",
        f"- Model: BETO-shaped BertForQuestionAnswering with random weights (vocab "
        f"{w['vocab_size']}, 12 layers, hidden 768) and a cased WordPiece tokenizer trained on "
        "SQuAD-es; windows of max_seq_len 384, doc_stride 128 on both servers.",
        f"- Window length (tokens): median {w['median_tokens']}, p90 {w['p90_tokens']}, max "
        f"{w['max_tokens']}; {w['mean_windows']:.2f} windows per request on average "
        f"({w['share_multi_window'] * 100:.0f}% of requests need more than one).",
        f"- Baseline: `POST /qas/?context=...&question=...` (transformers "
        f"{m['baseline_transformers']} pipeline in an async endpoint, 1 worker, fp32). Ours: "
        "`POST /v1/qa` JSON.",
        f"- Phases: closed loop, 1 client for {results['durations']['1']:.0f} s, then 8 clients "
        f"for {results['durations']['8']:.0f} s (each also capped by a request count), split in "
        f"{results.get('rounds', 1)} rounds that rotate over the servers (one under load at a "
        "time) so that other work on the machine hits them alike; during the "
        "8-client phase a probe times the health endpoint every 50 ms (baseline `/health`, ours "
        "`/health/live`).",
        "",
        "## Serving",
        "",
        "| server | clients | req/s | p50 ms | p90 ms | p99 ms | errors | /health p50 / p99 ms "
        "(saturated) | cold start s | peak RSS MiB |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in servers:
        for c in ("1", "8"):
            p = s["phases"][c]
            health = (
                f"{_fmt(p['health_p50_ms'])} / {_fmt(p['health_p99_ms'])}"
                + (f" ({p['health_errors']} failed)" if p["health_errors"] else "")
                if c == "8"
                else ""
            )
            lines.append(
                f"| {s['label']} | {c} | {_fmt(p['rps'], 2)} | {_fmt(p['p50_ms'])} | "
                f"{_fmt(p['p90_ms'])} | {_fmt(p['p99_ms'])} | {p['errors']} | {health} | "
                + (f"{s['cold_start_s']:.1f} | {s['peak_rss_mib']:,.0f} |" if c == "1" else "| |")
            )
    base = next(s for s in servers if s["label"] == "baseline")
    lines += [
        "",
        "Ratios ours / baseline (latency: lower is better; req/s: higher is better):",
        "",
        "| server | p50 @1 | p99 @1 | p50 @8 | req/s @1 | req/s @8 | /health p99 @8 | cold start "
        "| peak RSS |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for s in servers:
        if s is base:
            continue
        ratio = {
            key: s["phases"][c][metric] / base["phases"][c][metric]
            for key, c, metric in (
                ("p50_1", "1", "p50_ms"),
                ("p99_1", "1", "p99_ms"),
                ("p50_8", "8", "p50_ms"),
                ("rps_1", "1", "rps"),
                ("rps_8", "8", "rps"),
                ("health", "8", "health_p99_ms"),
            )
        }
        lines.append(
            f"| {s['label']} | {ratio['p50_1']:.3f}x | {ratio['p99_1']:.3f}x | "
            f"{ratio['p50_8']:.3f}x | {ratio['rps_1']:.2f}x | {ratio['rps_8']:.2f}x | "
            f"{ratio['health']:.4f}x | {s['cold_start_s'] / base['cold_start_s']:.2f}x | "
            f"{s['peak_rss_mib'] / base['peak_rss_mib']:.2f}x |"
        )
    staged = [s for s in servers if s["phases"]["1"].get("server_stages_p50_ms")]
    if staged:
        stages = ("queue_ms", "tokenize_ms", "inference_ms", "decode_ms", "total_ms")
        lines += [
            "",
            "Where our requests' time goes (p50 of each stage as the server reports it in "
            "`timings`, next to the client's p50; the gap is HTTP, JSON and the event loop):",
            "",
            "| server | clients | client p50 | " + " | ".join(stages) + " |",
            "|---|---|---|" + "---|" * len(stages),
        ]
        for s in staged:
            for c in ("1", "8"):
                p = s["phases"][c]
                cells = " | ".join(_fmt(p["server_stages_p50_ms"].get(k)) for k in stages)
                lines.append(f"| {s['label']} | {c} | {_fmt(p['p50_ms'])} | {cells} |")
    lines += [
        "",
        "## Overhead per request",
        "",
        "At 8 clients the server is saturated: each request costs the whole machine 1000 / "
        "req/s ms. Of that, the forward pass is the best batched time per window (full batch at "
        "the median length, table below) times the mean windows per request; the rest is "
        "tokenizing, decoding, HTTP, JSON, the event loop and the threads competing for the "
        "cores.",
        "",
        *overhead_table(results),
        "",
        "## Speed and quality per backend",
        "",
        "Forward passes from the table below; quality = share of SQuAD-es questions (contexts "
        "the int8 calibration did not see) whose best answer, through the served decoding with "
        "no-answer off, is the same text as torch fp32's (bench/quality.py). Random weights make "
        "the logits of competing spans close, so this is a strict test.",
        "",
        *backend_table(results),
        "",
        "## Raw forward passes and the compute floor",
        "",
        "Forward passes through the backend's own `load_backend`, random token ids, at the "
        f"median window length ({w['median_tokens']} tokens, padded as served) and at 384, "
        f"batch 1 and a full batch, {m['cpus']} threads; every backend loaded and timed in "
        f"turn, {results['forward_repeats']} timed passes per shape in all. Floor = matmul "
        f"FLOPs of the pass ({results['flops_per_window'] / 1e9:.1f} GFLOP per window: "
        "Q/K/V/output projections, FFN, attention scores and mixing, QA head) / the best FLOP/s "
        "this CPU reached on matmuls (1024 and 2048 squares, and the FFN's 1024x768x3072) in "
        "that precision, any engine. "
        "Both sides are best-of-N, so the other work on a shared machine cancels out of the "
        "ratio; the median shows what a request sees.",
        "",
        "| backend | batch | median ms | best ms | best ms per window | floor ms | best / floor "
        "| CPUs before |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for f in results["forward"]:
        lines.append(
            f"| {f['backend']} | {f['batch']} | {_fmt(f['median_ms'])} | {_fmt(f['min_ms'])} | "
            f"{_fmt(f['min_ms'] / f['batch'])} | {_fmt(f['floor_ms'])} | "
            f"{f['min_ms'] / f['floor_ms']:.2f}x | {f.get('busy_before', 'n/a')} |"
        )
    lines += [
        "",
        "Measured matmul peaks (GFLOP/s, best of repeats; the best per precision sets the floor):",
        "",
        "| precision | engine | best at shape (m x k x n) | GFLOP/s |",
        "|---|---|---|---|",
    ]
    for p in results["peaks"]:
        lines.append(
            f"| {p['precision']} | {p['engine']} | {p.get('shape', '')} | {p['gflops']:,.0f} |"
        )
    lines += [
        "",
        "## Targets",
        "",
        "| target | measured | verdict |",
        "|---|---|---|",
    ]
    for t in targets(results):
        miss = "" if t["met"] else f" (off by {t['by']:.2f}x)"
        lines.append(f"| {t['target']} | {t['value']} | {_verdict(t['met'])}{miss} |")
    for other in others or []:
        lines += [
            "",
            f"## The other machine kind's last run: {other['machine']['cpu']}",
            "",
            f"Features: {', '.join(other['machine']['features'])}. Its full figures are in "
            f"`bench/results-{kind(other)}.json` (re-render with `--report-only --results` on it).",
            "",
            headline(other),
        ]
    if results.get("notes"):
        lines += ["", "## Notes", ""] + [f"- {note}" for note in results["notes"]]
    lines += ["", "## Plots", ""] + [f"![{Path(p).stem}](../{p})" for p in plot_paths] + [""]
    return "\n".join(lines)


def plot(results: Results, repo: Path) -> list[str]:
    """Draw img/bench-latency.png (serving) and img/bench-forward.png (forward vs floor)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    servers = results["servers"]
    labels = [s["label"] for s in servers]
    palette = ["#9e9e9e", "#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2"]
    colors = [palette[i % len(palette)] for i in range(len(servers))]
    fig, axes = plt.subplots(2, 2, figsize=(12, 8))

    def bars(ax: Any, values: list[float], title: str, unit: str, log: bool = False) -> None:
        ax.bar(labels, values, color=colors)
        for i, v in enumerate(values):
            ax.annotate(
                _fmt(v, 2 if v < 10 else 1 if v < 100 else 0),
                (i, v),
                ha="center",
                va="bottom",
                fontsize=9,
            )
        ax.set_title(title)
        ax.set_ylabel(unit)
        if log:
            ax.set_yscale("log")
        ax.tick_params(axis="x", labelsize=7, labelrotation=15)

    bars(axes[0][0], [s["phases"]["1"]["p50_ms"] for s in servers], "p50 latency, 1 client", "ms")
    bars(axes[0][1], [s["phases"]["8"]["p99_ms"] for s in servers], "p99 latency, 8 clients", "ms")
    bars(axes[1][0], [s["phases"]["8"]["rps"] for s in servers], "throughput, 8 clients", "req/s")
    bars(
        axes[1][1],
        [s["phases"]["8"]["health_p99_ms"] for s in servers],
        "/health p99 while saturated (log)",
        "ms",
        log=True,
    )
    axes[1][1].axhline(HEALTH_P99_TARGET_MS, color="red", linestyle="--", linewidth=1)
    fig.suptitle(
        f"BETO-shaped QA model, {results['machine']['cpus']} CPUs, median "
        f"{results['workload']['median_tokens']} tokens ({results['date']})"
    )
    fig.tight_layout()
    latency_png = "img/bench-latency.png"
    fig.savefig(repo / latency_png, dpi=100)
    plt.close(fig)

    forward = median_forwards(results)
    fig, ax = plt.subplots(figsize=(10, 4.5))
    names = [f["backend"] for f in forward]
    ax.bar(names, [f["median_ms"] for f in forward], color="#aec7e8", label="measured (median)")
    ax.bar(names, [f["min_ms"] for f in forward], color="#1f77b4", label="measured (best)")
    ax.bar(
        names,
        [f["floor_ms"] for f in forward],
        color="none",
        edgecolor="red",
        hatch="//",
        label="compute floor",
    )
    for i, f in enumerate(forward):
        ax.annotate(
            f"best {f['min_ms'] / f['floor_ms']:.2f}x floor",
            (i, f["median_ms"]),
            ha="center",
            va="bottom",
            fontsize=9,
        )
    ax.tick_params(axis="x", labelsize=8)
    ax.set_ylabel("ms per forward pass")
    ax.set_title(f"One forward pass at {results['workload']['median_tokens']} tokens, batch 1")
    ax.legend()
    fig.tight_layout()
    forward_png = "img/bench-forward.png"
    fig.savefig(repo / forward_png, dpi=100)
    plt.close(fig)
    return [latency_png, forward_png]


def headline(results: Results) -> str:
    """The short table for the README: each server's key figures and the targets' verdicts."""
    lines = [
        f"Recorded {results['date']} on {results['machine']['cpus']} CPUs "
        f"({results['machine']['cpu']}; {kind(results)}), load average before the run "
        f"{results['machine']['load_before']}; median request window "
        f"{results['workload']['median_tokens']} tokens. Full figures: "
        "[bench/RESULTS.md](../bench/RESULTS.md).",
        "",
        "| server | p50 ms @1 client | req/s @8 clients | p99 ms @8 | /health p99 ms @8 | errors "
        "| cold start s | peak RSS MiB |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for s in results["servers"]:
        one, eight = s["phases"]["1"], s["phases"]["8"]
        lines.append(
            f"| {s['label']} | {_fmt(one['p50_ms'], 0)} | {_fmt(eight['rps'], 2)} | "
            f"{_fmt(eight['p99_ms'], 0)} | {_fmt(eight['health_p99_ms'])} | "
            f"{one['errors'] + eight['errors']} | {s['cold_start_s']:.1f} | "
            f"{s['peak_rss_mib']:,.0f} |"
        )
    lines += ["", "| target | measured | verdict |", "|---|---|---|"]
    for t in targets(results):
        miss = "" if t["met"] else f" (off by {t['by']:.2f}x)"
        lines.append(f"| {t['target']} | {t['value']} | {_verdict(t['met'])}{miss} |")
    return "\n".join(lines)

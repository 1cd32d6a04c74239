"""Latency statistics, the JSON report and the terminal summary table."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any


def percentile(sorted_values: list[float], q: float) -> float:
    """Linear-interpolation percentile (numpy's default) of an ascending list."""
    if not sorted_values:
        return math.nan
    pos = (len(sorted_values) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def latency_stats(latencies_ms: Iterable[float]) -> dict[str, float | None]:
    values = sorted(latencies_ms)
    if not values:
        return dict.fromkeys(("mean", "p50", "p90", "p99", "max"), None)
    return {
        "mean": sum(values) / len(values),
        "p50": percentile(values, 50),
        "p90": percentile(values, 90),
        "p99": percentile(values, 99),
        "max": values[-1],
    }


_PERCENT_KEYS = ("exact", "f1", "best_exact", "best_f1")


def _fmt(key: str, value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if key.endswith(_PERCENT_KEYS):
            return f"{value:.2f}"
        if key.endswith("_thresh"):
            return f"{value:.4f}"
        return f"{value:.2f}"
    return str(value)


def summary_rows(report: Mapping[str, Any]) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = [
        ("dataset", f"{report['dataset']['path']} (SQuAD v{report['dataset']['version']})"),
        ("mode", report["mode"] + (f" {report['api_url']}" if report.get("api_url") else "")),
        ("model", str(report.get("model") or "-")),
    ]
    if report.get("backend"):
        rows.append(("backend", str(report["backend"])))
    rows += [(key, _fmt(key, value)) for key, value in report["metrics"].items()]
    rows += [
        (f"latency {key} (ms)", _fmt(key, value)) for key, value in report["latency_ms"].items()
    ]
    rows.append(("throughput (q/s)", _fmt("throughput", report["throughput_qps"])))
    rows.append(("wall time (s)", _fmt("wall_s", report["wall_s"])))
    rows.append(("failed questions", str(report["failed"])))
    return rows


def format_table(report: Mapping[str, Any]) -> str:
    rows = summary_rows(report)
    width = max(len(name) for name, _ in rows)
    lines = [f"{'metric'.ljust(width)}  value", f"{'-' * width}  {'-' * 12}"]
    lines += [f"{name.ljust(width)}  {value}" for name, value in rows]
    return "\n".join(lines) + "\n"

"""What the machine offers: CPUs usable by this process (container limits included), bf16, CUDA."""

from __future__ import annotations

import math
import os
from functools import cache
from pathlib import Path
from typing import Literal

Bf16Units = Literal["amx", "avx512_bf16", "none"]


def usable_cpus() -> int:
    """CPUs this process may use: affinity mask, capped by a cgroup v2/v1 CPU quota."""
    cpus = len(os.sched_getaffinity(0))
    quota = _cgroup_cpu_quota()
    if quota is not None:
        cpus = min(cpus, max(1, math.ceil(quota)))
    return max(1, cpus)


def _cgroup_cpu_quota() -> float | None:
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota_us = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us").read_text())
        period_us = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us").read_text())
        return None if quota_us <= 0 else quota_us / period_us
    except (OSError, ValueError):
        return None


@cache
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags from /proc/cpuinfo (empty where there is none)."""
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
    except OSError:
        return frozenset()
    line = next((ln for ln in cpuinfo.splitlines() if ln.startswith("flags")), "")
    return frozenset(line.partition(":")[2].split())


def bf16_units() -> Bf16Units:
    """How the CPU computes bf16: AMX tiles (Xeon Sapphire Rapids and later), AVX512-BF16 dot
    products (e.g. AMD Zen 4/5, Cooper Lake), or not natively."""
    flags = cpu_flags()
    return "amx" if "amx_bf16" in flags else "avx512_bf16" if "avx512_bf16" in flags else "none"


def cpu_has_native_bf16() -> bool:
    """True when the CPU computes bf16 natively (AVX512-BF16 or AMX), where bf16 pays off."""
    return bf16_units() != "none"


def cuda_available() -> bool:
    import torch

    return bool(torch.cuda.is_available())

"""Helpers shared by the benchmarks: start a real service, summarise timings."""

from __future__ import annotations

import os
import statistics
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"

sys.path.insert(0, str(REPO))

from tests.conftest import ServerProcess, shared_home, start_server  # noqa: E402

__all__ = ["RESULTS", "ServerProcess", "percentile", "shared_home", "start_server", "summary"]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def summary(values: list[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "p50": percentile(values, 0.5),
        "p95": percentile(values, 0.95),
        "mean": statistics.fmean(values) if values else float("nan"),
    }


def cpu_note() -> str:
    return f"{os.cpu_count()} CPU cores"

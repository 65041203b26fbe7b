"""Timing and memory measurement: stdlib + numpy only.

This file is also copied to a Raspberry Pi (or any remote) beside the standalone
runner, so it must not import fer_edge or anything beyond numpy.

Method: ``time.perf_counter_ns`` (monotonic, highest resolution) around the call
only; inputs are prepared before the timed region, warm-up calls are discarded,
single-image latency and batch throughput are measured in separate loops.
"""

from __future__ import annotations

import resource
import sys
import time
from typing import Any, Callable

import numpy as np


def latency_stats(samples_ns: list[int] | np.ndarray) -> dict[str, Any]:
    """Percentiles and mean of per-call times, in milliseconds."""
    ms = np.asarray(samples_ns, dtype=np.float64) / 1e6
    if ms.size == 0:
        raise ValueError("no timing samples")
    p50, p90, p99 = np.percentile(ms, [50, 90, 99])
    return {
        "runs": int(ms.size),
        "p50_ms": float(p50),
        "p90_ms": float(p90),
        "p99_ms": float(p99),
        "mean_ms": float(ms.mean()),
        "std_ms": float(ms.std()),
        "min_ms": float(ms.min()),
        "max_ms": float(ms.max()),
    }


def time_calls(fn: Callable[[], Any], warmup: int, runs: int) -> dict[str, Any]:
    """Call ``fn`` ``warmup`` times untimed, then ``runs`` times each timed on its own."""
    if runs < 1:
        raise ValueError(f"runs must be >= 1, got {runs}")
    for _ in range(max(0, warmup)):
        fn()
    samples = np.empty(runs, dtype=np.int64)
    clock = time.perf_counter_ns
    for i in range(runs):
        t0 = clock()
        fn()
        samples[i] = clock() - t0
    return latency_stats(samples)


def interleaved(fns: dict[str, Callable[[], Any]], rounds: int, calls: int, warmup: int = 50) -> dict[str, Any]:
    """Latency of several calls measured in alternating blocks, for ratios between them.

    Separate processes measured one after another see different CPU states (clock ramp-up, a
    neighbour's load). Here every round times ``calls`` calls of each function back to back, so
    each round's ratio compares like with like; the result has each function's p50 over all
    samples and, per pair with the first function, the median and range of the per-round ratios.
    """
    names = list(fns)
    for name in names:
        for _ in range(max(0, warmup)):
            fns[name]()
    clock = time.perf_counter_ns
    samples = {n: [] for n in names}
    per_round = {n: [] for n in names}
    for r in range(rounds):
        order = names if r % 2 == 0 else names[::-1]  # neither always goes first
        for name in order:
            fn = fns[name]
            block = np.empty(calls, dtype=np.int64)
            for i in range(calls):
                t0 = clock()
                fn()
                block[i] = clock() - t0
            samples[name].append(block)
            per_round[name].append(float(np.median(block)) / 1e6)
    out: dict[str, Any] = {"rounds": rounds, "calls_per_round": calls,
                           "latency": {n: latency_stats(np.concatenate(samples[n])) for n in names}, "ratios": {}}
    base = names[0]
    for name in names[1:]:
        ratios = np.asarray(per_round[name]) / np.asarray(per_round[base])
        out["ratios"][f"{name}/{base}"] = {"median": float(np.median(ratios)), "min": float(ratios.min()),
                                          "max": float(ratios.max())}
    return out


def throughput(fn: Callable[[], Any], batch: int, warmup: int, min_reps: int = 5, min_seconds: float = 1.0) -> dict[str, Any]:
    """Images per second for a call that processes ``batch`` images.

    Repeats until both ``min_reps`` calls and ``min_seconds`` have passed, so a
    fast model is not measured from a handful of calls.
    """
    for _ in range(max(0, warmup)):
        fn()
    clock = time.perf_counter_ns
    reps = 0
    total = 0
    while reps < min_reps or total < min_seconds * 1e9:
        t0 = clock()
        fn()
        total += clock() - t0
        reps += 1
    return {
        "batch": int(batch),
        "reps": reps,
        "images_per_s": float(batch * reps / (total / 1e9)),
        "batch_ms": float(total / reps / 1e6),
    }


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far (MiB).

    Linux's VmHWM belongs to the process image and starts afresh at exec, unlike
    ``ru_maxrss``, which a child inherits from its parent at fork and keeps across
    exec (a worker started by a big parent would report the parent's peak).
    """
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # ru_maxrss is KiB on Linux, bytes on macOS.
    return float(peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024)


def current_rss_mb() -> float:
    """Resident set size now (MiB); falls back to the peak where /proc is absent."""
    try:
        with open("/proc/self/statm") as fh:
            pages = int(fh.read().split()[1])
        return pages * resource.getpagesize() / (1024 * 1024)
    except (OSError, ValueError, IndexError):
        return peak_rss_mb()

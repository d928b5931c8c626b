"""Timing and memory helpers shared by the benchmark scripts."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import torch


def synchronize(device: torch.device) -> None:
    """Wait for queued work on ``device`` (a no-op on the CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median_seconds(fn: Callable[[], object], device: torch.device, repeats: int) -> float:
    """Median wall time of ``fn()`` over ``repeats`` calls after one warm-up call."""
    fn()
    synchronize(device)
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        synchronize(device)
        samples.append(time.perf_counter() - start)
    samples.sort()
    return samples[len(samples) // 2]


def interleaved_min_seconds(
    fns: dict[str, Callable[[], object]], device: torch.device, repeats: int, clock: Callable[[], float] = time.perf_counter
) -> dict[str, float]:
    """Least time of each ``fn()`` over ``repeats`` rounds that call every one in turn, after one
    warm-up call each: on a machine shared with other work, the rounds see the same load and the
    least time is the one least disturbed by it. ``clock``: wall time by default, or e.g.
    ``time.process_time`` (CPU time of this process, CPU devices only)."""
    best = {}
    for name, fn in fns.items():
        fn()
        synchronize(device)
        best[name] = float("inf")
    for _ in range(repeats):
        for name, fn in fns.items():
            start = clock()
            fn()
            synchronize(device)
            best[name] = min(best[name], clock() - start)
    return best


def status_kib(field: str) -> int:
    """A ``/proc/self/status`` memory field (``VmRSS``, ``VmHWM``) of this process in KiB (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)

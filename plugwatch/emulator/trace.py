"""Power from a recorded trace as a function of emulated seconds (for EmulatedPlug's `power`).

The trace is replayed from its first sample and loops when it ends; between samples the power of
the latest sample holds (a plug's meter reports a step function too).
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from plugwatch.errors import TraceError


def trace_power(ts: Any, power_w: Any) -> Callable[[float], float]:
    """A callable(emulated_seconds) -> W replaying (ts, power_w) arrays in a loop."""
    t = np.asarray(ts, dtype=np.float64)
    p = np.asarray(power_w, dtype=np.float64)
    if t.size == 0 or t.size != p.size:
        raise TraceError("a trace for the emulator needs at least one sample of time and power")
    rel = t - t[0]
    # one sample period past the last sample, so a loop does not repeat a sample at once
    period = float(rel[-1] + (np.median(np.diff(rel)) if rel.size > 1 else 1.0))
    times = rel.tolist()
    powers = p.tolist()

    def power_at(emulated_s: float) -> float:
        offset = emulated_s % period if period > 0 else 0.0
        i = bisect.bisect_right(times, offset) - 1
        return powers[max(i, 0)]

    return power_at


def load_trace_power(path: str | Path, options: Any = None) -> Callable[[float], float]:
    """Read a CSV trace with plugwatch.traces.read_trace and return its power function."""
    from plugwatch.traces.reader import read_trace

    trace = read_trace(Path(path), options)
    return trace_power(trace.ts, trace.power_w)

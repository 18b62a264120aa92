"""The real washer recording the family tests replay (tracebase, a 2012 washing machine)."""

from __future__ import annotations

from typing import Any

import numpy as np

from plugwatch.emulator.trace import trace_power
from tests.conftest import TRACES

WASHER = TRACES / "tracebase" / "Washingmachine__dev_7297E3_2012.01.08.csv"
OFF_S = 400.0  # emulated seconds of a switched-off washer before the recording starts


def washer_cycle() -> tuple[Any, float, float, float]:
    """(power of emulated seconds, cycle start, cycle end, energy Wh of the cycle) from the real
    tracebase washing machine: 0 W while switched off (OFF_S), then the recording from 40 minutes
    before its cycle. The recording quantises the panel's ~1 W to 0/2 W: 1.5 W stands in below
    2 W."""
    from plugwatch.traces.reader import read_trace

    trace = read_trace(WASHER)
    ts, power = np.asarray(trace.ts), np.asarray(trace.power_w)
    on = np.flatnonzero(power > 10)
    keep = (ts >= ts[on[0]] - 2400) & (ts <= ts[on[-1]] + 3000)
    t = ts[keep] - ts[keep][0] + OFF_S
    p = np.maximum(power[keep], 1.5)
    power_at = trace_power([0.0, *t.tolist()], [0.0, *p.tolist()])
    start, end = t[on[0] - np.flatnonzero(keep)[0]], t[on[-1] - np.flatnonzero(keep)[0]]
    inside = (t >= start) & (t < end)
    energy = float(np.sum(p[inside][:-1] * np.diff(t[inside])) / 3600)
    return power_at, float(start), float(end), energy

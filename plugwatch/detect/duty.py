"""Duty cycle (PURE): the share of a span a plug spent in runs, e.g. a compressor's on time.

A fridge or freezer whose door seal or compressor fails runs longer and more often before it gets
warm: its duty cycle over the last hours rises first. Each compressor cycle is one run
(`kind: fridge`), so the duty cycle is the runs' time inside the span divided by the span.
"""

from __future__ import annotations

from collections.abc import Iterable

from plugwatch.model import RunSummary


def duty_cycle(runs: Iterable[RunSummary], start: float, end: float) -> float:
    """Share (0..1) of [start, end] covered by `runs` (open runs count up to their last reading;
    overlapping runs count once). 0.0 for an empty span."""
    if end <= start:
        return 0.0
    spans = sorted((max(r.start, start), min(r.end, end)) for r in runs)
    covered, reach = 0.0, start
    for lo, hi in spans:
        lo = max(lo, reach)
        if hi > lo:
            covered += hi - lo
            reach = hi
    return covered / (end - start)

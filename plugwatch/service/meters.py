"""Cheap in-process counters that the service updates per reading and /metrics reads when scraped.

Updating costs a few attribute increments and one bisect (no lock, no label lookup, no allocation);
plugwatch.outputs.metrics turns them into Prometheus metric families only at scrape time, so the
price of metrics is paid per scrape, not per reading.

    meters = ServiceMeters(["washer"], clock=time.time)
    meters.on_sample("washer", reading)      # reads, failures by kind, latency, last sample time
    meters.on_event(transition_or_run)       # transitions and runs per plug
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from plugwatch.model import Event, ReadFailure, RunSummary, Sample, Transition

# seconds; a Kasa plug on a LAN answers in a few ms, a hung one at its timeout (2 s by default)
LATENCY_BOUNDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
# seconds a read starts after its planned time; > 1 s at 1 Hz means reads are being skipped
LATENESS_BOUNDS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class Histogram:
    """Counts of observed values per bucket (Prometheus `le` semantics: value <= bound)."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: Sequence[float] = LATENCY_BOUNDS) -> None:
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)  # the last one is +Inf
        self.sum = 0.0

    def observe(self, value: float) -> None:
        """Count one value."""
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value

    @property
    def count(self) -> int:
        """How many values were observed."""
        return sum(self.counts)

    def cumulative(self) -> list[tuple[str, int]]:
        """[(upper bound as text, values <= it), ..., ("+Inf", all)] as Prometheus exposes them."""
        out, running = [], 0
        for bound, count in zip((*map(repr, self.bounds), "+Inf"), self.counts, strict=True):
            running += count
            out.append((bound, running))
        return out


@dataclass(slots=True)
class PlugMeter:
    """One plug's counters: samples, failures by kind, read latency."""

    reads: int = 0  # samples handled: readings and failures
    failures: dict[str, int] = field(default_factory=dict)  # ReadFailure.kind -> count
    latency: Histogram = field(default_factory=Histogram)
    runs: int = 0
    transitions: dict[str, int] = field(default_factory=dict)  # to_state -> count


class ServiceMeters:
    """Every plug's PlugMeter plus when the service last handled a sample."""

    def __init__(self, plugs: Iterable[str], clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.plugs = {name: PlugMeter() for name in plugs}
        self.last_sample_at: float | None = None  # clock time of the last sample handled

    def on_sample(self, plug: str, sample: Sample) -> None:
        """Count one sample: its latency is from the read's start (sample.ts) to now."""
        now = self.clock()
        self.last_sample_at = now
        meter = self.plugs.get(plug)
        if meter is None:
            meter = self.plugs[plug] = PlugMeter()
        meter.reads += 1
        meter.latency.observe(now - sample.ts)
        if type(sample) is ReadFailure:
            meter.failures[sample.kind] = meter.failures.get(sample.kind, 0) + 1

    def on_event(self, event: Event) -> None:
        """Count one live transition or finished run."""
        meter = self.plugs.get(event.plug)
        if meter is None:
            meter = self.plugs[event.plug] = PlugMeter()
        if isinstance(event, RunSummary):
            meter.runs += 1
        elif isinstance(event, Transition):
            key = str(event.to_state)
            meter.transitions[key] = meter.transitions.get(key, 0) + 1

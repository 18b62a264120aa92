"""What the sampler counts: reads begun and done, ticks skipped, lateness at start and completion.

Lateness is kept in fixed 1 ms histograms (constant memory however long the service runs), and
`KeepUp` turns the counters into the one warning `plugwatch run` gives when a process cannot
sample its plugs at their intervals.
"""

from __future__ import annotations

import time
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from plugwatch.service import meters

BINS = 10_000  # 1 ms bins up to 10 s; the last bin holds everything later


class Histogram:
    """Counts of durations in 1 ms bins up to 10 s (anything longer in the last bin)."""

    __slots__ = ("counts", "sum")

    def __init__(self, counts: array | None = None, total_s: float = 0.0) -> None:
        self.counts = counts if counts is not None else array("q", bytes(8 * (BINS + 1)))
        self.sum = total_s  # seconds, of everything counted

    def add(self, seconds: float, n: int = 1) -> None:
        """Count `n` durations of `seconds` (negative counts as 0)."""
        i = int(seconds * 1000.0)
        self.counts[0 if i < 0 else (i if i < BINS else BINS)] += n
        self.sum += seconds * n

    @property
    def total(self) -> int:
        """How many durations were counted."""
        return sum(self.counts)

    def percentile(self, q: float) -> float:
        """The q-th percentile (0..100) in seconds: the upper edge of its 1 ms bin (0 if empty)."""
        total = self.total
        if total == 0:
            return 0.0
        rank = max(1, round(q / 100 * total))
        seen = 0
        for i, count in enumerate(self.counts):
            seen += count
            if seen >= rank:
                return (i + 1) / 1000.0
        return (BINS + 1) / 1000.0

    def copy(self) -> Histogram:
        """A copy, e.g. to subtract later with `since`."""
        return Histogram(array("q", self.counts), self.sum)

    def since(self, earlier: Histogram) -> Histogram:
        """The durations counted after `earlier` (a copy of this histogram) was taken."""
        return Histogram(array("q", (a - b for a, b in zip(self.counts, earlier.counts,
                                                            strict=True))), self.sum - earlier.sum)

    def buckets(self, bounds: Sequence[float]) -> meters.Histogram:
        """The same counts in Prometheus buckets of `bounds` (to the nearest 1 ms bin)."""
        out = meters.Histogram(bounds)
        edges = [round(b * 1000.0) for b in out.bounds]
        k = 0
        for i, count in enumerate(self.counts):
            while k < len(edges) and i >= edges[k]:
                k += 1
            out.counts[k] += count
        out.sum = self.sum
        return out


@dataclass(slots=True)
class SamplerStats:
    """Counters the service logs and the bench prints."""

    started: int = 0  # reads begun
    done: int = 0  # reads finished: readings plus failures
    failures: int = 0  # reads that ended in a ReadFailure
    skipped: int = 0  # planned reads not begun: the plug's last read was in flight, or ...
    behind: int = 0  # ... of those, skipped because the loop was a whole interval late
    start_lateness: Histogram = field(default_factory=Histogram)  # begun - planned
    tick_lag: Histogram = field(default_factory=Histogram)  # per tick: ran - first tick not run
    done_lateness: Histogram = field(default_factory=Histogram)  # finished - planned

    def lateness_percentile(self, q: float) -> float:
        """The q-th percentile (0..100) of start lateness in seconds (0.0 when none)."""
        return self.start_lateness.percentile(q)

    @property
    def lateness(self) -> meters.Histogram:
        """Start lateness in the buckets /metrics exposes (built when asked, not per read)."""
        return self.start_lateness.buckets(meters.LATENESS_BOUNDS)


class KeepUp:
    """Decides, window by window, whether sampling keeps up; the warning text the first time not.

    A window falls behind when more than 1 % of its planned reads were skipped while the loop
    ran its ticks late: their median lag (how long after the first tick not yet run) was over
    `late_s`. A hung plug skips only its own ticks and delays no tick, so hung plugs never warn;
    a process that the machine does not give enough CPU does, as it cannot keep up either (the
    warning says how much of a core it got). At intervals well under a second, an overload whose
    loop turns stay under `late_s` goes unreported (each tick skips the plugs still busy, which
    bounds a turn's work).
    """

    def __init__(
        self, stats: SamplerStats, planned_per_s: Callable[[], float], plugs: int, *,
        late_s: float = 0.1, cpu: Callable[[], float] = time.process_time,
        wall: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stats = stats
        self.planned_per_s = planned_per_s
        self.plugs = plugs
        self.late_s = late_s
        self.cpu = cpu
        self.wall = wall
        self.warned = False
        self._mark = self._now()

    def _now(self) -> tuple[float, float, int, int, Histogram]:
        stats = self.stats
        return self.wall(), self.cpu(), stats.done, stats.skipped, stats.tick_lag.copy()

    def check(self) -> str | None:
        """Close the current window; the warning text if this is the first one that fell behind."""
        w0, c0, d0, s0, lag0 = self._mark
        w1, c1, d1, s1, _ = self._mark = self._now()
        span = w1 - w0
        if self.warned or span <= 0:
            return None
        rate = self.planned_per_s()
        planned = rate * span
        if planned <= 0 or (s1 - s0) <= 0.01 * planned:
            return None
        if self.stats.tick_lag.since(lag0).percentile(50) <= self.late_s:
            return None
        self.warned = True
        return (f"sampling cannot keep up: {self.plugs} plugs plan {rate:.0f} reads/s, this "
                f"process sustains {(d1 - d0) / span:.0f} reads/s at "
                f"{100 * (c1 - c0) / span:.0f} % of a core ({s1 - s0} reads skipped in the last "
                f"{span:.0f} s); use `plugwatch run --workers K`, fewer plugs per process or "
                f"longer intervals")

"""The figures behind condition rules (PURE): duty cycle over a window, a plug's usual run.

    spans = OnSpans(); spans.enter_on(t0); spans.leave_on(t1)
    spans.share(now, over=6 * 3600)              # fraction of the last 6 h spent on
    usual_range([812, 790, 830, ...], spread=3)  # (low, median, high) of "usual"

Both are fed from the transitions and runs the engine sees, and kept in its snapshot.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

MAD_TO_SIGMA = 1.4826  # median absolute deviation -> standard deviation of a normal spread
MIN_RELATIVE_SPREAD = 0.10  # identical past runs: 10 % either side is still usual


@dataclass
class OnSpans:
    """When a plug was on, as (start, end) spans; the last may still be open (end None)."""

    spans: list[list[float | None]] = field(default_factory=list)

    def enter_on(self, ts: float) -> None:
        """The plug entered on at `ts`."""
        if not self.spans or self.spans[-1][1] is not None:
            self.spans.append([ts, None])

    def leave_on(self, ts: float) -> None:
        """The plug left on at `ts` (nothing happens when it was not on)."""
        if self.spans and self.spans[-1][1] is None:
            start = self.spans[-1][0]
            assert start is not None
            self.spans[-1][1] = max(ts, start)

    def share(self, now: float, over: float) -> float:
        """The fraction (0..1) of the window (now - over, now] the plug spent on."""
        begin = now - over
        total = 0.0
        for start, end in self.spans:
            assert start is not None
            stop = now if end is None else min(end, now)
            total += max(0.0, stop - max(start, begin))
        return min(1.0, total / over) if over > 0 else 0.0

    def forget_before(self, ts: float) -> None:
        """Drop spans that ended before `ts` (the longest window no longer reaches them)."""
        self.spans = [s for s in self.spans if s[1] is None or s[1] >= ts]

    def to_json(self) -> list[list[float | None]]:
        """JSON-able form for the engine's snapshot."""
        return [list(s) for s in self.spans]

    @classmethod
    def from_json(cls, data: Sequence[Sequence[Any]]) -> OnSpans:
        """The inverse of to_json."""
        return cls([[float(a), None if b is None else float(b)] for a, b in data])


def usual_range(values: Sequence[float], spread: float) -> tuple[float, float, float]:
    """(low, median, high): median +/- `spread` robust standard deviations of `values`.

    The deviation is at least 10 % of the median, so runs that were all alike do not turn a
    1 % difference into an alert.
    """
    median = statistics.median(values)
    mad = statistics.median(abs(v - median) for v in values)
    sigma = max(MAD_TO_SIGMA * mad, MIN_RELATIVE_SPREAD * abs(median) / spread)
    return median - spread * sigma, median, median + spread * sigma

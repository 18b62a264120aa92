"""The time-weighted moving average over the last `window_s` seconds, streaming and vectorised.

A reading's value holds from its own time until the next reading (what a plug that reports on
change, or is polled, means), so the average at a reading is the integral of that step function
over the window before it, divided by the time the window covers:

    avg(t_n) = sum over k < n of p_k * |[t_k, t_k+1) & [t_n - W, t_n]| / min(W, t_n - t_first)

The newest reading has held for no time yet and counts from the next one on. When the window
covers no time (window 0, the first reading of a segment, repeated timestamps) the average is the
reading itself, so `window_s: 0` is no smoothing at all. The same W means the same thing at 1 s,
10 s or on-change reporting.

Bit-identical in both forms: each term p * dt is rounded once to an integer number of millijoules
and summed exactly (Python ints, numpy int64 prefix sums), then divided the same way. The window
restarts after a gap longer than `gap_s` (and, in the detector, after an unreachable spell or a
relay-off reading).
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence
from typing import Any, overload

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

SCALE = 1000.0  # terms are summed in integer millijoules (W*s * SCALE)


def term(watts: float, seconds: float) -> int:
    """One interval's contribution: watts held for seconds, in integer millijoules."""
    return round(watts * seconds * SCALE)


class Held:
    """One reading in the window, as `TimeAverage.items` hands it out: time, raw W, counter kWh."""

    __slots__ = ("energy_kwh", "ts", "watts")

    def __init__(self, ts: float, watts: float, energy_kwh: float | None) -> None:
        self.ts, self.watts, self.energy_kwh = ts, watts, energy_kwh


class _Items(Sequence[Held]):
    """A read-only view of a TimeAverage's readings, oldest first (Held objects made on access)."""

    __slots__ = ("_avg",)

    def __init__(self, avg: TimeAverage) -> None:
        self._avg = avg

    def __len__(self) -> int:
        return len(self._avg._rows) // _COLUMNS

    @overload
    def __getitem__(self, k: int) -> Held: ...

    @overload
    def __getitem__(self, k: slice) -> list[Held]: ...

    def __getitem__(self, k: int | slice) -> Held | list[Held]:
        if isinstance(k, slice):
            return [self[i] for i in range(*k.indices(len(self)))]
        n = len(self)
        if not -n <= k < n:
            raise IndexError("window index out of range")
        rows, at = self._avg._rows, _COLUMNS * (k % n)
        e = rows[at + 2]
        return Held(rows[at], rows[at + 1], None if e != e else e)  # NaN: no counter


class TimeAverage:
    """The time-weighted mean over the last `window_s` seconds of the readings since a reset.

    The readings whose held interval reaches into the window, and the newest, are kept in one
    typed array, three numbers a reading (time, raw W, counter kWh with NaN for none): 24 bytes
    each instead of some 200 as objects, so a plug's 20 s window at 1 Hz costs about 0.6 KB.
    `items` shows them as Held readings; `total` is the exact sum of the full terms of all but
    the newest (a reading's term is recomputed from the array when it leaves the window: the same
    numbers give the same integer).
    """

    __slots__ = ("_rows", "total", "window_s")

    def __init__(self, window_s: float) -> None:
        self.window_s = window_s
        self._rows = array("d")  # time, W, kWh of each reading, oldest first
        self.total = 0

    @property
    def items(self) -> Sequence[Held]:
        """The readings in the window, oldest first."""
        return _Items(self)

    def add(self, ts: float, watts: float, energy_kwh: float | None = None) -> float:
        """Add a reading (time never goes back) and return the average at its time."""
        self._append(ts, watts, _NAN if energy_kwh is None else energy_kwh)
        rows = self._rows
        start = ts - self.window_s
        end, cut = len(rows), 0  # cut: the array index of the first reading kept
        while end - cut >= 2 * _COLUMNS and rows[cut + _COLUMNS] <= start:
            self.total -= term(rows[cut + 1], rows[cut + _COLUMNS] - rows[cut])
            cut += _COLUMNS
        if cut:
            del rows[:cut]
        if end - cut == _COLUMNS:
            return watts
        first, second = rows[0], rows[_COLUMNS]
        if first < start:
            summed = self.total - term(rows[1], second - first) + term(rows[1], second - start)
            covered = ts - start
        else:
            summed, covered = self.total, ts - first
        if covered <= 0:
            return watts
        return float(summed) / SCALE / covered

    def reset(self) -> None:
        """Forget every reading (after a gap, an unreachable spell or a relay-off reading)."""
        del self._rows[:]
        self.total = 0

    def to_json(self) -> dict[str, Any]:
        """The readings in the window as a small JSON-able dict (the terms are recomputed)."""
        rows = self._rows
        counters = [None if e != e else e for e in rows[2::_COLUMNS]]
        return {"ts": list(rows[0::_COLUMNS]), "w": list(rows[1::_COLUMNS]),
                "e": None if all(e is None for e in counters) else counters}

    def restore(self, data: dict[str, Any]) -> None:
        """Continue from to_json()'s dict exactly (the same terms, the same total)."""
        self.reset()
        ts, watts = [float(t) for t in data["ts"]], [float(w) for w in data["w"]]
        counters = data.get("e") or [None] * len(ts)
        for t, w, e in zip(ts, watts, counters, strict=True):
            self._append(t, w, _NAN if e is None else float(e))

    def _append(self, ts: float, watts: float, energy_kwh: float) -> None:
        """One reading at the end: the one before it now has its term (power x time held)."""
        rows = self._rows
        if rows:
            self.total += term(rows[-2], ts - rows[-3])
        rows.append(ts)
        rows.append(watts)
        rows.append(energy_kwh)


_COLUMNS = 3  # numbers a reading in TimeAverage._rows
_NAN = float("nan")


def segment_starts(ts: FloatArray, gap_s: float) -> IntArray:
    """For each sample, the index of the first sample of its gap-free segment."""
    n = ts.size
    restart = np.ones(n, dtype=bool)
    if n > 1:
        restart[1:] = (ts[1:] - ts[:-1]) > gap_s
    seg_start = np.where(restart, np.arange(n, dtype=np.int64), 0)
    np.maximum.accumulate(seg_start, out=seg_start)
    return seg_start


def window_firsts(ts: FloatArray, seg_start: IntArray, window_s: float) -> IntArray:
    """For each sample n, the first reading whose held interval reaches into its window (the
    last one at or before t_n - W, else the segment's first): TimeAverage.items[0]."""
    last_before = np.searchsorted(ts, ts - window_s, side="right").astype(np.int64) - 1
    return np.minimum(np.maximum(last_before, seg_start), np.arange(ts.size, dtype=np.int64))


def time_average(ts: FloatArray, power: FloatArray, seg_start: IntArray, firsts: IntArray,
                 window_s: float) -> FloatArray:
    """The streaming TimeAverage at every sample, computed for the whole array at once."""
    n = ts.size
    if n == 0:
        return np.zeros(0)
    full = np.zeros(n, dtype=np.int64)  # full[k]: term of p_k held until t_k+1 (same segment)
    if n > 1:
        same = seg_start[1:] == seg_start[:-1]
        terms = np.rint(power[:-1] * (ts[1:] - ts[:-1]) * SCALE)
        full[:-1] = np.where(same, terms, 0.0).astype(np.int64)
    prefix = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(full, out=prefix[1:])
    index = np.arange(n, dtype=np.int64)
    start = ts - window_s
    j = firsts
    nxt = np.minimum(j + 1, n - 1)
    partial = j < index
    cut = partial & (ts[j] < start)
    part = np.rint(power[j] * (ts[nxt] - start) * SCALE).astype(np.int64)
    summed = np.where(cut, prefix[index] - prefix[nxt] + part, prefix[index] - prefix[j])
    covered = np.where(cut, ts - start, ts - ts[j])
    good = partial & (covered > 0)
    out = power.copy()
    safe = np.where(good, covered, 1.0)
    np.copyto(out, summed.astype(np.float64) / SCALE / safe, where=good)
    return out

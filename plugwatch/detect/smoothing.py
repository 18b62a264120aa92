"""The moving average over the last `window` readings, streaming and vectorised, bit-identical.

Both forms add the window's values oldest first, starting from 0.0, and divide by how many there
are, so a float sum rounds the same way in Python and in numpy. The window restarts after a gap
longer than `gap_s` between readings (and, in the detector, after an unreachable spell).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


class MovingAverage:
    """The mean of the last `window` values added since the last reset."""

    __slots__ = ("values",)

    def __init__(self, window: int, values: Iterable[float] = ()) -> None:
        self.values: deque[float] = deque(values, maxlen=window)

    def add(self, value: float) -> float:
        """Add a value and return the new mean."""
        self.values.append(value)
        total = 0.0
        for v in self.values:
            total += v
        return total / len(self.values)

    def reset(self) -> None:
        """Forget every value (after a gap or an unreachable spell)."""
        self.values.clear()


def segment_positions(ts: FloatArray, gap_s: float) -> npt.NDArray[np.int64]:
    """For each sample, how many samples precede it in its gap-free segment (0 at a restart)."""
    n = ts.size
    index = np.arange(n, dtype=np.int64)
    restart = np.ones(n, dtype=bool)
    if n > 1:
        restart[1:] = (ts[1:] - ts[:-1]) > gap_s
    seg_start = np.where(restart, index, 0)
    np.maximum.accumulate(seg_start, out=seg_start)
    return index - seg_start


def moving_average(power: FloatArray, positions: npt.NDArray[np.int64], window: int) -> FloatArray:
    """The streaming MovingAverage of every sample, computed for the whole array at once."""
    n = power.size
    padded = np.concatenate((np.zeros(window - 1), power))
    total = np.zeros(n)
    for k in range(window):
        # the value `window - 1 - k` samples back, when it lies in the same segment
        back = window - 1 - k
        total = total + np.where(positions >= back, padded[k : k + n], 0.0)
    return total / np.minimum(positions + 1, window)

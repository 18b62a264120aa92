"""The fast offline path: a whole trace through the detector with numpy, same events as feeding
Detector sample by sample (a property test holds the two together).

Vectorised: the moving average (in the same order of additions as the streaming sum, so the
values are bit for bit equal), both Schmitt triggers (forward-fill of decisive points) and the
energy integral. Python then walks only the level changes, which are few.
A trace has no relay and no energy counter, and no read failures: only the power rules apply.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import numpy.typing as npt

from plugwatch.detect.levels import LEVEL_STATES, Bands, levels_vec
from plugwatch.model import DetectorSettings, Event, RunSummary, State, Transition

FloatArray = npt.NDArray[np.float64]


class TraceLike(Protocol):
    """What replay() needs of a trace: epoch seconds and watts, time never going back."""

    ts: FloatArray
    power_w: FloatArray


def moving_average(power_w: FloatArray, segment_start: npt.NDArray[np.int64], window: int
                   ) -> FloatArray:
    """Mean of the last `window` values of each sample's segment, summed oldest first."""
    n = power_w.size
    index = np.arange(n)
    total = np.zeros(n)
    for lag in range(min(window, n) - 1, -1, -1):
        shifted = np.zeros(n)
        shifted[lag:] = power_w[: n - lag]
        total += np.where(index - lag >= segment_start, shifted, 0.0)
    count = np.minimum(index - segment_start + 1, window)
    return total / count


def replay(plug: str, trace: TraceLike, settings: DetectorSettings) -> list[Event]:
    """The events of running `settings` over the whole trace (a run still open at the end is not
    reported: it has not finished)."""
    ts = np.ascontiguousarray(trace.ts, dtype=np.float64)
    power = np.ascontiguousarray(trace.power_w, dtype=np.float64)
    n = ts.size
    if n == 0:
        return []
    dt = np.diff(ts)
    gap = dt > settings.gap_s
    new_segment = np.concatenate(([True], gap))
    segment_start = np.maximum.accumulate(np.where(new_segment, np.arange(n), 0))
    smoothed = moving_average(power, segment_start, settings.window)
    levels = levels_vec(smoothed, Bands.of(settings))
    increments = np.zeros(n)
    increments[1:] = np.where(gap, 0.0, power[:-1] * dt / 3600.0)
    energy = np.cumsum(increments)  # sequential, like the streaming running sum
    starts = np.flatnonzero(np.concatenate(([True], levels[1:] != levels[:-1])))
    ends = np.append(starts[1:], n)
    dwell = {State.OFF: settings.dwell_off_s, State.STANDBY: settings.dwell_standby_s,
             State.ON: settings.dwell_on_s}

    state = LEVEL_STATES[int(levels[0])]  # the first decision: at once, silently
    run_at: int | None = 0 if state is State.ON else None
    events: list[Event] = []
    ts_list = ts.tolist()
    for a, b in zip(starts.tolist(), ends.tolist(), strict=True):
        target = LEVEL_STATES[int(levels[a])]
        began = ts_list[a]
        if target is state or ts_list[b - 1] - began < dwell[target]:
            continue
        reason = "no_load" if target is State.OFF else "power"
        events.append(Transition(plug, began, state, target, reason, float(smoothed[a])))
        if run_at is not None:
            events.append(RunSummary(plug, ts_list[run_at], began,
                                     float(energy[a] - energy[run_at]),
                                     float(power[run_at:a].max())))
            run_at = None
        if target is State.ON:
            run_at = a
        state = target
    return events

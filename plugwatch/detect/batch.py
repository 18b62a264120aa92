"""The fast offline path: a whole trace through the detector at numpy speed, same events.

Vectorised: the time-weighted moving average (exact integer sums, so bit for bit equal), both
Schmitt triggers (forward-fill of decisive points), the dwell check of every level run
(searchsorted) and the energy of every interval. Python then walks only the level runs, which
are few. Run energies are math.fsum of the same interval energies the streaming ExactSum adds,
so they agree exactly.
A trace has no relay, no energy counter and no read failures: only the rows of fsm.TRANSITIONS
triggered by the first reading or a level apply, read from that table.
"""

from __future__ import annotations

import math
from typing import Protocol

import numpy as np
import numpy.typing as npt

from plugwatch.detect.fsm import EDGES, LEVEL_STATES, Trigger, dwell_of
from plugwatch.detect.levels import (
    ON,
    Bands,
    initial_triggers,
    levels_vec,
    raw_side,
)
from plugwatch.detect.smoothing import segment_starts, time_average, window_firsts
from plugwatch.model import DetectorSettings, Event, RunSummary, State, Transition

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


class TraceLike(Protocol):
    """What replay() needs of a trace: epoch seconds (never going back) and watts."""

    ts: FloatArray
    power_w: FloatArray


def interval_energies(ts: FloatArray, power: FloatArray, gap_s: float) -> FloatArray:
    """Wh of the interval ending at each sample (trapezoids; 0 for the first and across gaps)."""
    out = np.zeros(ts.size)
    if ts.size > 1:
        dt = ts[1:] - ts[:-1]
        out[1:] = np.where(dt > gap_s, 0.0, (power[:-1] + power[1:]) * 0.5 * dt / 3600.0)
    return out


def confirm_index(ts: FloatArray, starts: IntArray, lower: IntArray, dwell: FloatArray
                  ) -> IntArray:
    """For each level start s, the first sample c >= lower with ts[c] - ts[s] >= dwell (n if none).

    searchsorted finds it up to rounding; the loops settle it with the streaming comparison.
    """
    n = ts.size
    began = ts[starts]
    c = np.maximum(np.searchsorted(ts, began + dwell, side="left"), lower)
    while True:
        back = (c - 1 >= lower) & (ts[np.maximum(c - 1, 0)] - began >= dwell)
        if not back.any():
            break
        c = np.where(back, c - 1, c)
    while True:
        ahead = (c < n) & (ts[np.minimum(c, n - 1)] - began < dwell)
        if not ahead.any():
            break
        c = np.where(ahead, c + 1, c)
    return c


def replay(plug: str, trace: TraceLike, settings: DetectorSettings, *, open_run: bool = True
           ) -> list[Event]:
    """The events of feeding the whole trace to a fresh Detector: the first state (a transition
    out of unknown), every change and run, and (`open_run`) the run still going at the end,
    marked open, as Detector.open_run() gives it."""
    ts = np.ascontiguousarray(trace.ts, dtype=np.float64)
    power = np.ascontiguousarray(trace.power_w, dtype=np.float64)
    n = ts.size
    if n == 0:
        return []
    seg_start = segment_starts(ts, settings.gap_s)
    firsts = window_firsts(ts, seg_start, settings.window_s)
    smoothed = time_average(ts, power, seg_start, firsts, settings.window_s)
    bands = Bands.of(settings)
    levels = levels_vec(smoothed, bands, initial_triggers(float(smoothed[0]), settings))
    detected = np.flatnonzero(np.concatenate(([True], levels[1:] != levels[:-1])))
    ends = np.append(detected[1:], n)
    began_at = _date_back(power, firsts, levels, detected, bands)
    level_dwell = np.array([dwell_of(settings, s) for s in LEVEL_STATES])
    dwell = level_dwell[levels[detected]]
    dwell[0] = 0.0  # the first reading decides at once
    confirmed = confirm_index(ts, began_at, detected, dwell) < ends
    energies = interval_energies(ts, power, settings.gap_s)
    after_gap = np.flatnonzero(seg_start[1:] == np.arange(1, n)) + 1  # first reading after one
    gap_set = set(after_gap.tolist())

    def unobserved(first: int, last: int) -> float:
        """Seconds without readings inside a run from sample `first` to sample `last`."""
        lo, hi = np.searchsorted(after_gap, [first, last], side="right")
        k = after_gap[lo:hi]
        return math.fsum((ts[k] - ts[k - 1]).tolist())

    events: list[Event] = []
    state = State.UNKNOWN
    run_start, run_start_ts = 0, 0.0
    held_until: float | None = None  # as Detector.held_until: no change dated before this
    drop: tuple[int, int] | None = None  # as Detector.drop: (dated start, detection) indices
    pend: int | None = None  # as Detector.run while pending: where the on level first began
    dip: float | None = None  # as Detector.dip
    dwell_on = settings.dwell_on_s
    was_on = False
    for j, a, b, level, ok in zip(began_at.tolist(), detected.tolist(), ends.tolist(),
                                  levels[detected].tolist(), confirmed.tolist(), strict=True):
        target = LEVEL_STATES[level]
        previous_on, was_on = was_on, target is State.ON
        if state is not State.ON and state is not State.UNKNOWN:  # rule 5: the pending run
            if target is State.ON:
                if pend is None or dip is None or float(ts[j]) - dip >= dwell_on:
                    pend = j
                dip = None
            elif previous_on and pend is not None:
                dip = float(ts[j])
            elif dip is None:
                pend = None
        if state is State.ON:  # rule 6: the drop (as Detector._level_while_on)
            if target is State.ON:  # back on: the drop is cancelled
                if drop is not None and (not settings.ignore_pulses
                                         or float(ts[j]) - float(ts[drop[0]]) < dwell_on
                                         or _held(ts, j, a, b, dwell_on)):
                    drop = None
                continue
            if drop is None:  # rule 11: after a gap, the drop was at the last reading before it
                drop = (a - 1 if a in gap_set else j, a)
        if target is state:
            continue
        start, seen = drop if state is State.ON and drop is not None else (j, a)
        bridged = target is State.ON and pend is not None and pend != j
        if bridged:
            assert pend is not None
            start = pend
        began = float(ts[start])
        if held_until is not None and began < held_until:  # rule 3: dwell, a state lasts it
            began = held_until
            ok = _held_since(ts, began, a, b, dwell_of(settings, target))
        elif state is State.ON or bridged:
            ok = _held(ts, start, a, b, dwell_of(settings, target))
        if not ok:
            continue
        edge = EDGES[state, Trigger.FIRST if state is State.UNKNOWN else Trigger.LEVEL, target]
        events.append(Transition(plug, began, state, target, edge.reason, float(smoothed[seen])))
        if state is State.ON:
            energy = math.fsum(energies[run_start + 1 : start + 1].tolist())
            peak = float(power[run_start:seen].max())
            events.append(RunSummary(plug, run_start_ts, began, energy, peak,
                                     unobserved_s=unobserved(run_start, start)))
        if target is State.ON:
            run_start, run_start_ts = start, began
        pend = dip = None
        held_until = None if state is State.UNKNOWN else began + dwell_of(settings, target)
        state, drop = target, None
    if open_run and state is State.ON:
        energy = math.fsum(energies[run_start + 1 :].tolist())
        peak = float(power[run_start:].max())
        events.append(RunSummary(plug, run_start_ts, float(ts[-1]), energy, peak, open=True,
                                 unobserved_s=unobserved(run_start, n - 1)))
    return events


def _held_since(ts: FloatArray, began: float, a: int, b: int, dwell: float) -> bool:
    """Whether some sample in [a, b) is at least `dwell` after time `began` (ts never falls,
    so the last sample of the range decides)."""
    return b > a and float(ts[b - 1]) - began >= dwell


def _held(ts: FloatArray, since: int, a: int, b: int, dwell: float) -> bool:
    """Whether some sample in [a, b) is at least `dwell` after sample `since` (exact check)."""
    c = int(confirm_index(ts, np.array([since]), np.array([a]), np.array([dwell]))[0])
    return c < b


def _date_back(power: FloatArray, firsts: IntArray, levels: npt.NDArray[np.int8],
               detected: IntArray, bands: Bands) -> IntArray:
    """Where each detected level began: as Detector._back, over the readings held in the window
    after the previous detection whose raw power is already on the level's side."""
    began = detected.copy()
    at = detected.tolist()
    kinds = levels[detected].tolist()
    first_in_window = firsts[detected].tolist()
    for k in range(1, len(at)):
        a, level = at[k], kinds[k]
        lowest = first_in_window[k] if level == ON else max(first_in_window[k], at[k - 1] + 1)
        j = a
        previous = kinds[k - 1]
        if not raw_side(float(power[j]), level, bands, previous):
            if a - 1 < lowest or not raw_side(float(power[a - 1]), level, bands, previous):
                continue
            j = a - 1
        while j >= lowest and raw_side(float(power[j]), level, bands, previous):
            j -= 1
        began[k] = min(j + 1, a)
    return began

"""Properties of the detector over generated inputs (hypothesis), and the Sense-forum standby case.

Batch replay == streaming feed (the first state, open runs and unobserved time included);
snapshot/restore anywhere changes nothing; every transition is a row of fsm.TRANSITIONS; constant
input and noise inside a band never transition; a clean step gives one transition; no state is
left before its dwell has passed.
"""

from __future__ import annotations

import itertools
import json
import random
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plugwatch.detect import Detector, replay
from plugwatch.detect.fsm import EDGES, Trigger, dwell_of
from plugwatch.model import (
    DetectorSettings,
    Event,
    ReadFailure,
    Reading,
    RunSummary,
    State,
    Transition,
)

LIMITS = settings(max_examples=150, deadline=None)


@dataclass
class ArrayTrace:
    ts: np.ndarray
    power_w: np.ndarray


def stream(plug: str, samples: list[Reading | ReadFailure], s: DetectorSettings,
           restore_at: frozenset[int] = frozenset()) -> list[Event]:
    detector = Detector(plug, s)
    events: list[Event] = []
    for i, sample in enumerate(samples):
        if i in restore_at:
            snap = json.loads(json.dumps(detector.snapshot()))
            detector = Detector.restore(plug, s, snap)
        events += detector.feed(sample)
    run = detector.open_run()
    return events + ([run] if run is not None else [])


detector_settings = st.builds(
    DetectorSettings,
    window_s=st.sampled_from([0.0, 5.0, 12.5, 20.0, 60.0]),
    standby_w=st.just(0.5), standby_band_w=st.sampled_from([0.0, 0.2]),
    on_w=st.just(10.0), on_band_w=st.sampled_from([0.0, 2.0]),
    dwell_on_s=st.sampled_from([0.0, 10.0, 30.0]),
    dwell_standby_s=st.sampled_from([0.0, 20.0, 180.0]),
    dwell_off_s=st.sampled_from([0.0, 20.0, 120.0]),
    gap_s=st.sampled_from([15.0, 60.0]),
    ignore_pulses=st.booleans(),
)
# powers that sit on and around every band edge, plus loads
watts = st.one_of(
    st.sampled_from([0.0, 0.3, 0.5, 0.7, 2.0, 8.0, 10.0, 12.0, 500.0, 2000.0]),
    st.floats(0.0, 3000.0, allow_nan=False),
)
steps = st.sampled_from([0.0, 1.0, 5.0, 7.5, 30.0, 120.0])


@st.composite
def power_traces(draw: st.DrawFn) -> tuple[list[float], list[float]]:
    powers = draw(st.lists(watts, min_size=1, max_size=120))
    gaps = draw(st.lists(steps, min_size=len(powers), max_size=len(powers)))
    ts = list(np.cumsum(gaps) + 1.7e9)
    return ts, powers


def is_change(e: Event) -> bool:
    """A state change (not the first state decided, which comes out of unknown)."""
    return isinstance(e, Transition) and e.from_state is not State.UNKNOWN


def readings(ts: list[float], powers: list[float]) -> list[Reading | ReadFailure]:
    return [Reading(float(t), float(p)) for t, p in zip(ts, powers, strict=True)]


@LIMITS
@given(power_traces(), detector_settings)
def test_batch_replay_equals_streaming(trace: tuple[list[float], list[float]],
                                       s: DetectorSettings) -> None:
    ts, powers = trace
    batch = replay("p", ArrayTrace(np.array(ts), np.array(powers)), s)
    assert batch == stream("p", readings(ts, powers), s)


# (times, powers) each giving one of the events the batch path must also give
NEW_EVENTS = {
    "first state and an open run": ([0.0, 5, 10, 15], [900.0] * 4),
    "a run carrying unobserved time": ([0.0, 5, 10, 400, 405, 410, 415, 800, 805],
                                       [900.0] * 7 + [0.0, 0.0]),
    "a run ended at the last reading before a gap": ([0.0, 5, 10, 400, 405, 800],
                                                      [900.0, 900, 900, 0, 0, 0]),
}


@pytest.mark.parametrize("case", list(NEW_EVENTS))
def test_batch_replay_gives_the_new_events_as_streaming_does(case: str) -> None:
    ts, powers = NEW_EVENTS[case]
    s = DetectorSettings(window_s=0.0, dwell_on_s=0.0, dwell_standby_s=0.0, dwell_off_s=0.0,
                         gap_s=60.0)
    events = stream("p", readings(ts, powers), s)
    assert replay("p", ArrayTrace(np.array(ts), np.array(powers)), s) == events
    first, *_ = events
    assert isinstance(first, Transition) and first.from_state is State.UNKNOWN
    runs = [e for e in events if isinstance(e, RunSummary)]
    if case.startswith("first"):
        assert [(r.start, r.end, r.open) for r in runs] == [(0.0, 15.0, True)]
    elif case.startswith("a run carrying"):
        # on again after the first gap (390 s unseen); below on after the second: ended at 415
        assert [(r.end, r.unobserved_s) for r in runs] == [(415.0, 390.0)]
    else:
        assert [(r.end, r.unobserved_s) for r in runs] == [(10.0, 0.0)]


@LIMITS
@given(power_traces(), detector_settings, st.lists(st.integers(0, 119), max_size=8),
       st.sets(st.integers(0, 119), max_size=5))
def test_every_transition_is_a_row_of_the_table(
    trace: tuple[list[float], list[float]], s: DetectorSettings, failures_at: list[int],
    relay_off_at: set[int],
) -> None:
    """From, to and reason of every transition, with failures and relay-off readings, is one
    row of fsm.TRANSITIONS; and a state's `since` is the last transition's time."""
    ts, powers = trace
    samples: list[Reading | ReadFailure] = [
        Reading(float(t), float(p), relay_on=False if i in relay_off_at else None)
        for i, (t, p) in enumerate(zip(ts, powers, strict=True))]
    for i in sorted(set(failures_at), reverse=True):
        if i < len(samples):
            samples[i:i] = [ReadFailure(samples[i].ts, "timeout")] * s.unreachable_after
    detector = Detector("p", s)
    rows = {(e.source, e.target, e.reason) for e in EDGES.values()}
    for sample in samples:
        for event in detector.feed(sample):
            if isinstance(event, Transition):
                assert (event.from_state, event.to_state, event.reason) in rows
                assert (detector.state, detector.since) == (event.to_state, event.ts)
    assert {e.trigger for e in EDGES.values()} == set(Trigger)


@LIMITS
@given(power_traces(), detector_settings, st.sets(st.integers(0, 120)),
       st.lists(st.integers(0, 119), max_size=8), st.sets(st.integers(0, 119), max_size=5),
       st.booleans())
def test_snapshot_restore_anywhere_changes_nothing(
    trace: tuple[list[float], list[float]], s: DetectorSettings, restore_at: set[int],
    failures_at: list[int], relay_off_at: set[int], counter: bool,
) -> None:
    ts, powers = trace
    energy = np.cumsum(np.array(powers) * 5.0 / 3.6e6) if counter else [None] * len(powers)
    samples: list[Reading | ReadFailure] = [
        Reading(float(t), float(p), relay_on=False if i in relay_off_at else None,
                energy_kwh=None if e is None else float(e))
        for i, (t, p, e) in enumerate(zip(ts, powers, energy, strict=True))
    ]
    for i in sorted(set(failures_at), reverse=True):  # failures (some runs of them) in between
        if i < len(samples):
            samples[i:i] = [ReadFailure(samples[i].ts, "timeout")] * 3
    assert stream("p", samples, s, frozenset(restore_at)) == stream("p", samples, s)


@LIMITS
@given(st.floats(0.0, 3000.0, allow_nan=False), st.integers(1, 300), detector_settings)
def test_constant_input_never_transitions(watts_: float, n: int, s: DetectorSettings) -> None:
    """Only the first state is reported (and, when on, the run still open at the end)."""
    samples = [Reading(1e9 + 5.0 * i, watts_) for i in range(n)]
    events = stream("p", samples, s)
    assert [e.from_state for e in events if isinstance(e, Transition)] == [State.UNKNOWN]
    assert all(e.open for e in events if isinstance(e, RunSummary))


@LIMITS
@given(st.sampled_from([(0.0, "standby"), (5.0, "standby"), (5.0, "on"), (100.0, "on")]),
       st.lists(st.floats(0.0, 1.0), min_size=1, max_size=200), detector_settings)
def test_noise_inside_a_band_never_transitions(
    start: tuple[float, str], noise: list[float], s: DetectorSettings
) -> None:
    settled, band = start
    centre, half = (s.standby_w, s.standby_band_w) if band == "standby" else (s.on_w, s.on_band_w)
    samples = [Reading(1e9 + 5.0 * i, settled) for i in range(100)]  # 500 s: every dwell passed
    samples += [Reading(1e9 + 500.0 + 5.0 * i, centre - half + 2 * half * u)
                for i, u in enumerate(noise)]
    assert [e for e in stream("p", samples, s) if is_change(e)] == []


LEVEL_W = {State.OFF: 0.0, State.STANDBY: 3.0, State.ON: 800.0}


@LIMITS
@given(st.sampled_from(list(LEVEL_W)), st.sampled_from(list(LEVEL_W)), detector_settings,
       st.sampled_from([1.0, 5.0, 10.0]))
def test_a_clean_step_gives_one_transition_at_the_step(
    before: State, after: State, s: DetectorSettings, step: float
) -> None:
    """Stamped at the step itself, also when the moving average needs a few readings to cross."""
    s0 = 1e9
    samples = [Reading(s0 + step * i, LEVEL_W[before]) for i in range(int(400 / step))]
    step_at = s0 + 400.0
    samples += [Reading(step_at + step * i, LEVEL_W[after]) for i in range(int(400 / step))]
    changes = [e for e in stream("p", samples, s) if is_change(e)]
    if before is after:
        assert changes == []
        return
    (change,) = changes
    assert (change.from_state, change.to_state) == (before, after)
    assert change.ts == step_at


@LIMITS
@given(power_traces(), detector_settings)
def test_no_state_is_left_before_its_dwell(trace: tuple[list[float], list[float]],
                                           s: DetectorSettings) -> None:
    ts, powers = trace
    changes = [e for e in stream("p", readings(ts, powers), s) if is_change(e)]
    for entered, left in itertools.pairwise(changes):
        assert left.ts - entered.ts >= dwell_of(s, entered.to_state)


def sense_forum_standby(rng: random.Random, start: float, minutes: int) -> list[Reading]:
    """A TV-box standby as in the Sense forum post: modes near 0.60 W and 0.74 W that alternate
    every few minutes, with short dips below 0.5 W (one or two readings)."""
    out: list[Reading] = []
    t, mode = start, 0.60
    while t < start + minutes * 60:
        for _ in range(rng.randint(6, 60)):  # 30 s .. 5 min in one mode
            watts = mode + rng.uniform(-0.03, 0.03)
            if rng.random() < 0.08:
                watts = rng.uniform(0.35, 0.49)  # a dip below the 0.5 W threshold
            out.append(Reading(t, round(watts, 2)))
            t += 5.0
        mode = 0.74 if mode == 0.60 else 0.60
    return out


def test_sense_forum_standby_does_not_flap_but_switch_off_is_seen() -> None:
    rng = random.Random(7)
    standby = sense_forum_standby(rng, 1e9, minutes=180)
    off_at = standby[-1].ts + 5.0
    off = [Reading(off_at + 5.0 * i, 0.0) for i in range(12 * 40)]  # unplugged: 0 W, 40 min
    events = stream("tv", [*standby, *off], DetectorSettings())
    changes = [(e.from_state, e.to_state, e.reason) for e in events if is_change(e)]
    assert changes == [(State.STANDBY, State.OFF, "no_load")]
    (change,) = [e for e in events if is_change(e)]
    assert change.ts == off_at


@pytest.mark.parametrize(("ts", "spike"), [
    ([0.0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110, 120], 2),  # one spike, 10 s apart
    ([0.0, 0, 0, 0, 30, 30, 30, 60, 90, 120, 150, 180, 210], 3),  # repeated timestamps
])
def test_a_state_lasts_its_dwell_even_when_the_average_outlasts_the_load(
    ts: list[float], spike: int
) -> None:
    """A lone spike keeps the 40 s average above `on` for 40 s while the raw power drops at
    once: On is entered after its 30 s dwell, so leaving it is not dated back into it."""
    s = DetectorSettings(window_s=40.0, dwell_on_s=30, dwell_standby_s=60, dwell_off_s=60)
    powers = [100.0 if i == spike else 0.0 for i in range(len(ts))]
    readings_ = [Reading(t, p) for t, p in zip(ts, powers, strict=True)]
    events = stream("p", readings_, s)
    changes = [e for e in events if is_change(e)]
    for entered, left in itertools.pairwise(changes):
        assert left.ts - entered.ts >= dwell_of(s, entered.to_state)
    assert [(c.from_state, c.to_state) for c in changes] == [
        (State.OFF, State.ON), (State.ON, State.OFF)]
    assert events == replay("p", ArrayTrace(np.array(ts), np.array(powers)), s)

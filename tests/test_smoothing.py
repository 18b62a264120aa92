"""The time-weighted moving average: each value weighted by how long it held, whatever the rate."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plugwatch.detect import Detector
from plugwatch.detect.smoothing import TimeAverage, segment_starts, time_average, window_firsts
from plugwatch.model import DetectorSettings, Reading, RunSummary


def batch(ts: list[float], watts: list[float], window_s: float, gap_s: float = 1e9) -> list[float]:
    t = np.array(ts, dtype=np.float64)
    seg = segment_starts(t, gap_s)
    return time_average(t, np.array(watts, dtype=np.float64), seg,
                        window_firsts(t, seg, window_s), window_s).tolist()


def streamed(ts: list[float], watts: list[float], window_s: float) -> list[float]:
    average = TimeAverage(window_s)
    return [average.add(t, w) for t, w in zip(ts, watts, strict=True)]


@pytest.mark.parametrize(("ts", "watts", "window_s", "expected"), [
    # the first reading is its own average; the newest reading has held for no time yet
    ([0, 10], [100, 0], 20, [100, 100]),
    # 100 W for 10 s, then 0 W for 10 s: half the window at each
    ([0, 10, 20], [100, 0, 0], 20, [100, 100, 50]),
    # the window slides: 100 W held 0..10 s has left the 20 s window at 30 s
    ([0, 10, 20, 30], [100, 0, 0, 0], 20, [100, 100, 50, 0]),
    # a value held longer than the window is cut at the window's start
    ([0, 60, 70], [100, 0, 0], 20, [100, 100, 50]),
    # irregular: 40 W for 3 s and 10 W for 1 s in a 4 s window
    ([0, 3, 4], [40, 10, 0], 4, [40, 40, 32.5]),
    # window 0: no smoothing, every average is the reading itself
    ([0, 1, 2], [5, 7, 9], 0, [5, 7, 9]),
    # repeated timestamps: a value replaced at once held for no time
    ([0, 0, 10], [0, 100, 0], 20, [0, 100, 100]),
])
def test_average_by_hand(ts: list[float], watts: list[float], window_s: float,
                         expected: list[float]) -> None:
    assert streamed(ts, watts, window_s) == pytest.approx(expected)
    assert batch(ts, watts, window_s) == pytest.approx(expected)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([0.0, 0.5, 1.0, 3.0, 7.5, 30.0]),
                          st.floats(0.0, 4000.0, allow_nan=False)), min_size=1, max_size=80),
       st.sampled_from([0.0, 1.0, 5.0, 20.0, 90.0]))
def test_streaming_and_vectorised_averages_are_bit_identical(
    steps: list[tuple[float, float]], window_s: float
) -> None:
    ts = (1.7e9 + np.cumsum([s for s, _ in steps])).tolist()
    watts = [w for _, w in steps]
    assert streamed(ts, watts, window_s) == batch(ts, watts, window_s)


def washer_like(t: float) -> float:
    """W at second t: off 10 min, a drum turning 15 s / resting 7 s for 30 min, then 1 W."""
    if t < 600:
        return 0.0
    if t < 2400:
        return 180.0 if (t - 600) % 22 < 15 else 2.0
    return 1.0


def on_change(profile: object, end: float, heartbeat_s: float) -> list[Reading]:
    """Reports when the value changes (checked every second) and every `heartbeat_s` otherwise,
    as Tasmota's TelePeriod or zigbee2mqtt's maximum reporting interval do."""
    out: list[Reading] = []
    for t in range(int(end)):
        w = profile(float(t))  # type: ignore[operator]
        if not out or w != out[-1].power_w or t - out[-1].ts >= heartbeat_s:
            out.append(Reading(float(t), w))
    return out


def runs_of(readings: list[Reading], s: DetectorSettings) -> list[RunSummary]:
    detector = Detector("p", s)
    return [e for r in readings for e in detector.feed(r) if isinstance(e, RunSummary)]


@pytest.mark.parametrize("how", ["1 s", "4 s", "10 s", "on change + 60 s heartbeat"])
def test_the_same_window_means_the_same_at_any_reporting_rate(how: str) -> None:
    """A 20 s window keeps a flickering drum one run at 1, 4 and 10 s polling and with
    on-change reports; the run starts and ends where the load did (to within a reporting
    step). At 1 s the average passes the on band for one reading: the start is still where
    the load rose."""
    end = 4000.0
    if how.endswith(" s"):
        step = float(how.split()[0])
        readings = [Reading(t, washer_like(t)) for t in np.arange(0.0, end, step).tolist()]
    else:
        step = 1.0
        readings = on_change(washer_like, end, 60.0)
    s = DetectorSettings(window_s=20.0, dwell_standby_s=300.0, dwell_off_s=300.0, gap_s=120.0)
    (run,) = runs_of(readings, s)
    assert abs(run.start - 600.0) <= step
    assert abs(run.end - 2400.0) <= 22.0  # the last drum turn may end the run up to 7 s early


@pytest.mark.parametrize("window_s", [0.0, 5.0])
def test_dips_shorter_than_the_on_dwell_do_not_move_the_start(window_s: float) -> None:
    """Issue 12, case 2, without the window's help: a drum turning 15 s and resting 7 s from
    600 s on. Every rest drops the level below on, but the run starts at 600 s, not at the
    first spell of 60 s (a 60 s on dwell is never held in one piece)."""
    readings = [Reading(float(t), washer_like(float(t))) for t in range(4000)]
    s = DetectorSettings(window_s=window_s, dwell_on_s=60.0, dwell_standby_s=300.0,
                         dwell_off_s=300.0)
    (run,) = runs_of(readings, s)
    assert run.start == 600.0

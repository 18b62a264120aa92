"""The detector's rules, as a user sees them in transitions and runs (tables, one row a case)."""

from __future__ import annotations

import json

import pytest

from plugwatch.detect import Detector
from plugwatch.model import DetectorSettings, ReadFailure, Reading, RunSummary, State, Transition

# window 1 and no dwell: each row's power is the smoothed power and levels apply at once
RAW = DetectorSettings(window_s=0, dwell_on_s=0, dwell_standby_s=0, dwell_off_s=0)


def levels_after(powers: list[float], settings: DetectorSettings = RAW) -> list[State]:
    """The state after each reading, 10 s apart."""
    detector = Detector("p", settings)
    states = []
    for i, watts in enumerate(powers):
        detector.feed(Reading(1000.0 + 10 * i, watts))
        states.append(detector.state)
    return states


S, OFF, N = State.STANDBY, State.OFF, State.ON


@pytest.mark.parametrize(
    ("powers", "expected"),
    [
        ([0.0], [OFF]),  # clearly below the standby band -> off
        ([0.6], [S]),  # first value inside the band: the threshold (0.5) decides -> standby
        ([0.4], [OFF]),  # ... below the threshold -> off
        ([0.0, 0.6], [OFF, OFF]),  # off, then inside the standby band -> stays off
        ([0.0, 0.75], [OFF, S]),  # above the band (0.7) -> standby
        ([5.0, 0.35], [S, S]),  # standby, then inside the band -> stays standby
        ([5.0, 0.25], [S, OFF]),  # below the band (0.3) -> off
        ([5.0, 11.9], [S, S]),  # standby, inside the on band (8..12) -> stays standby
        ([5.0, 12.1], [S, N]),  # above the on band -> on
        ([100.0, 8.5], [N, N]),  # on, inside the on band -> stays on
        ([100.0, 7.9], [N, S]),  # below the on band -> standby
        ([100.0, 0.5], [N, S]),  # on, straight into the standby band -> standby (never on, not off)
        ([0.0, 10.0], [OFF, S]),  # off, straight into the on band -> standby (not on, not off)
        ([100.0, 0.0], [N, OFF]),  # on, straight to nothing -> off
        ([0.0, 8.0, 12.0, 0.7, 0.3], [OFF, S, S, S, S]),  # band edges belong to the band
    ],
)
def test_hysteresis_levels(powers: list[float], expected: list[State]) -> None:
    assert levels_after(powers) == expected


def feed_all(detector: Detector, samples: list[Reading | ReadFailure]) -> list[object]:
    events: list[object] = []
    for sample in samples:
        events += detector.feed(sample)
    return events


def steady(start: float, end: float, watts: float, step: float = 5.0, **kw: object
           ) -> list[Reading | ReadFailure]:
    """Readings of `watts` every `step` s from `start` up to (not including) `end`."""
    count = round((end - start) / step)
    return [Reading(start + i * step, watts, **kw) for i in range(count)]  # type: ignore[arg-type]


SETTINGS = DetectorSettings(window_s=0, dwell_on_s=30.0, dwell_standby_s=180.0, dwell_off_s=120.0)


def transitions(events: list[object]) -> list[tuple[float, State, State, str]]:
    """The state changes (not the first state decided, which comes out of unknown)."""
    return [(e.ts, e.from_state, e.to_state, e.reason) for e in events
            if isinstance(e, Transition) and e.from_state is not State.UNKNOWN]


def test_first_reading_decides_at_once_and_is_announced_once() -> None:
    """A new plug's first state is an event of its own (out of unknown); a restart never
    announces it again, even when the snapshot is unusable."""
    detector = Detector("p", SETTINGS)
    assert detector.feed(Reading(0.0, 0.0)) == [
        Transition("p", 0.0, State.UNKNOWN, OFF, "no_load", 0.0)]
    assert (detector.state, detector.since) == (State.OFF, 0.0)
    assert detector.feed(Reading(5.0, 0.0)) == []
    restarted = Detector.restore("p", SETTINGS, {"v": "damaged"})
    assert restarted.feed(Reading(10.0, 0.0)) == []
    assert restarted.state is OFF


def test_a_run_still_going_at_the_end_is_reported_open() -> None:
    """The router on all day: its state at the start and its open run, with energy so far."""
    detector = Detector("p", SETTINGS)
    events = feed_all(detector, steady(0, 3600, 12.0))
    assert events == [Transition("p", 0.0, State.UNKNOWN, N, "power", 12.0)]
    run = detector.open_run()
    assert run is not None and run.open and (run.start, run.end) == (0.0, 3595.0)
    assert run.energy_wh == pytest.approx(12.0 * 3595 / 3600)


def test_a_level_shorter_than_its_dwell_changes_nothing() -> None:
    """A 25 s burst of 500 W (dwell on 30 s) is not a start; a 2 min pause is not an end."""
    detector = Detector("p", SETTINGS)
    samples = steady(0, 200, 0.0) + steady(200, 225, 500.0) + steady(225, 400, 0.0)
    assert transitions(feed_all(detector, samples)) == []
    samples = steady(400, 500, 500.0) + steady(500, 600, 1.0) + steady(600, 700, 500.0)
    assert transitions(feed_all(detector, samples)) == [(400.0, OFF, N, "power")]


def test_transition_is_stamped_when_the_level_began() -> None:
    detector = Detector("p", SETTINGS)
    events = feed_all(detector, steady(0, 200, 0.0) + steady(200, 300, 500.0)
                      + steady(300, 600, 2.0))
    assert transitions(events) == [(200.0, OFF, N, "power"), (300.0, N, S, "power")]
    run = [e for e in events if isinstance(e, RunSummary)]
    # trapezoids: 95 s at 500 W, then 5 s sloping from 500 W to 2 W (the run ends at 300 s)
    energy = 500 * 95 / 3600 + (500 + 2) / 2 * 5 / 3600
    assert run == [RunSummary("p", 200.0, 300.0, pytest.approx(energy), 500.0)]


def test_relay_off_is_off_at_once_and_ends_the_run() -> None:
    detector = Detector("p", SETTINGS)
    feed_all(detector, steady(0, 200, 0.0) + steady(200, 300, 800.0))
    events = detector.feed(Reading(300.0, 0.0, relay_on=False))
    assert transitions(events) == [(300.0, N, OFF, "relay_off")]
    assert [(e.start, e.end) for e in events if isinstance(e, RunSummary)] == [(200.0, 300.0)]


@pytest.mark.parametrize(("second", "case"), [
    (1.015, "counter steady"),
    (0.000, "reset to zero (Shelly Gen1 reboot, Tasmota Total reset): the power counts"),
    (0.002, "reset, already counting again: the power counts"),
    (251.3, "another plug with its own counter: a jump no load can make, the power counts"),
])
def test_run_energy_comes_from_the_counter_and_survives_a_reset(second: float, case: str) -> None:
    """900 W for 4 minutes is 60 Wh whatever the counter does in between: a drop (reset) or an
    impossible rise (a replaced plug) is never a negative or huge run energy."""
    detector = Detector("p", SETTINGS)
    feed_all(detector, steady(0, 200, 0.0, energy_kwh=1.0))
    # the counter every 60 s; the interval 200 -> 260 s holds the reset or the jump
    counters = [1.0, second, second + 0.015, second + 0.030, second + 0.045]
    samples: list[Reading | ReadFailure] = [
        Reading(200.0 + 60 * i, 900.0 if i < 4 else 0.0, energy_kwh=e)
        for i, e in enumerate(counters)
    ]
    events = feed_all(detector, samples + steady(500, 800, 0.0, energy_kwh=counters[-1]))
    (run,) = [e for e in events if isinstance(e, RunSummary)]
    assert (run.start, run.end) == (200.0, 440.0)
    assert run.energy_wh == pytest.approx(60.0, abs=1e-6), case
    assert run.peak_w == 900.0


def test_read_failures_make_unreachable_at_the_first_one() -> None:
    detector = Detector("p", SETTINGS)
    feed_all(detector, steady(0, 200, 2.0))
    fails: list[Reading | ReadFailure] = [ReadFailure(200.0, "timeout"), ReadFailure(205.0, "x")]
    assert feed_all(detector, fails) == []  # two of three: nothing yet
    events = detector.feed(ReadFailure(210.0, "timeout"))
    assert events == [Transition("p", 200.0, S, State.UNREACHABLE, "read_failures", None)]
    assert detector.feed(ReadFailure(215.0, "timeout")) == []
    events = detector.feed(Reading(400.0, 0.0))  # back, with no load: off at once, not via dwell
    assert transitions(events) == [(400.0, State.UNREACHABLE, OFF, "recovered")]


def test_fewer_failures_than_the_limit_change_nothing() -> None:
    detector = Detector("p", SETTINGS)
    samples = [*steady(0, 200, 2.0), ReadFailure(200.0, "t"), ReadFailure(205.0, "t")]
    assert transitions(feed_all(detector, samples + steady(210, 400, 2.0))) == []
    assert detector.state is S


def test_a_wifi_drop_does_not_end_a_run() -> None:
    detector = Detector("p", SETTINGS)
    feed_all(detector, steady(0, 200, 0.0) + steady(200, 400, 1000.0))
    fails: list[Reading | ReadFailure] = [ReadFailure(400.0 + 5 * i, "t") for i in range(12)]
    events = feed_all(detector, fails + steady(460, 600, 1000.0) + steady(600, 800, 0.0))
    assert transitions(events) == [
        (400.0, N, State.UNREACHABLE, "read_failures"),
        (460.0, State.UNREACHABLE, N, "recovered"),
        (600.0, N, OFF, "no_load"),
    ]
    (run,) = [e for e in events if isinstance(e, RunSummary)]
    assert (run.start, run.end) == (200.0, 600.0)


def test_a_run_broken_by_an_outage_ends_where_the_plug_went_silent() -> None:
    detector = Detector("p", SETTINGS)
    feed_all(detector, steady(0, 200, 0.0) + steady(200, 400, 1000.0))
    fails: list[Reading | ReadFailure] = [ReadFailure(400.0 + 5 * i, "t") for i in range(3)]
    events = feed_all(detector, [*fails, Reading(900.0, 0.0)])
    (run,) = [e for e in events if isinstance(e, RunSummary)]
    assert (run.start, run.end) == (200.0, 400.0)


def test_unreachable_from_the_start_is_the_first_state() -> None:
    """A plug never reached is announced unreachable (from its first failure), then recovered."""
    detector = Detector("p", SETTINGS)
    fails: list[Reading | ReadFailure] = [ReadFailure(5.0 * i, "t") for i in range(5)]
    assert feed_all(detector, fails) == [
        Transition("p", 0.0, State.UNKNOWN, State.UNREACHABLE, "read_failures", None)]
    assert transitions(feed_all(detector, [Reading(30.0, 50.0)])) == [
        (30.0, State.UNREACHABLE, N, "recovered")]
    assert detector.state is N


def test_snapshot_is_small_json() -> None:
    detector = Detector("p", DetectorSettings())
    feed_all(detector, steady(0, 100_000, 1500.0, step=1.0))
    text = json.dumps(detector.snapshot())
    assert len(text) < 1000
    restored = Detector.restore("p", DetectorSettings(), json.loads(text))
    assert (restored.state, restored.since) == (detector.state, detector.since)


# A snapshot stored by plugwatch at 0df8326 (before the window became one array), 59 s into this
# washer's trace: 1 W, 800-802 W from 20 s to 80 s, 1 W again; the plug's counter every second.
WASHER = DetectorSettings(window_s=4.0, dwell_on_s=10.0, dwell_off_s=30.0, dwell_standby_s=30.0)
STORED_AT_59 = {
    "v": 2, "state": "on", "since": 1700000020.0, "on_high": True, "standby_high": True,
    "level": 2, "level_start": 1700000020.0, "level_power": 201.25,
    "window": {"ts": [1700000055.0, 1700000056.0, 1700000057.0, 1700000058.0, 1700000059.0],
               "w": [801.0, 802.0, 800.0, 801.0, 802.0],
               "e": [0.511, 0.5112, 0.5114, 0.5116, 0.5118]},
    "level_age": 38, "last_power_w": 801.0, "last": [1700000059.0, 802.0, 0.5118], "failures": 0,
    "first_failure": None, "before_unreachable": None,
    "run": {"start": 1700000020.0, "peak": 802.0, "energy": [7.800000000000029], "tail": None,
            "tail_peak": None, "unobserved": [], "tail_unobserved": None},
    "spell": None, "held_until": 1700000030.0, "dip": None, "back_on": None,
    "announce_first": True,
}


def test_a_snapshot_stored_by_an_earlier_version_goes_on_exactly() -> None:
    """A restart onto newer code: the stored snapshot restores, and the run it was in ends as it
    would have without the restart (same times, bit-identical energy)."""
    readings = [Reading(1.7e9 + t, 800.0 + t % 3 if 20 <= t < 80 else 1.0, relay_on=True,
                        energy_kwh=round(0.5 + t * 0.0002, 4)) for t in range(200)]
    never_stopped = Detector("washer", WASHER)
    before = feed_all(never_stopped, readings[:60])
    assert never_stopped.snapshot() == STORED_AT_59
    restored = Detector.restore("washer", WASHER, json.loads(json.dumps(STORED_AT_59)))
    after = feed_all(restored, readings[60:])
    assert after == feed_all(never_stopped, readings[60:])
    assert [e.to_state for e in before + after if isinstance(e, Transition)] == [
        State.STANDBY, State.ON, State.STANDBY]
    assert [(r.start, r.end) for r in after if isinstance(r, RunSummary)] == [
        (1.7e9 + 20, 1.7e9 + 80)]


def test_a_foreign_snapshot_gives_a_fresh_detector() -> None:
    detector = Detector.restore("p", DetectorSettings(), {"v": 99})
    assert detector.state is State.UNKNOWN


def test_a_reading_from_the_past_is_ignored() -> None:
    detector = Detector("p", SETTINGS)
    feed_all(detector, steady(0, 200, 0.0) + steady(200, 300, 800.0))
    assert detector.feed(Reading(100.0, 0.0, relay_on=False)) == []
    assert detector.state is N


def test_a_gap_never_stretches_a_run_silently() -> None:
    """Service down 2 h while the fridge ran: back below on, the run ended at the last reading
    before the gap; back on, the run goes on and carries the unobserved 2 h (issue 12, case 4)."""
    s = DetectorSettings(window_s=0, dwell_on_s=30, dwell_standby_s=120, dwell_off_s=120,
                         gap_s=60)
    off_after = Detector("fridge", s)
    events = feed_all(off_after, steady(0, 200, 1.0) + steady(200, 320, 90.0)
                      + steady(7515, 8000, 1.0))
    (run,) = [e for e in events if isinstance(e, RunSummary)]
    assert (run.start, run.end, run.unobserved_s) == (200.0, 315.0, 0.0)
    assert run.energy_wh == pytest.approx(90 * 115 / 3600)
    on_after = Detector("fridge", s)
    events = feed_all(on_after, steady(0, 200, 1.0) + steady(200, 320, 90.0)
                      + steady(7515, 7700, 90.0) + steady(7700, 8000, 1.0))
    (run,) = [e for e in events if isinstance(e, RunSummary)]
    assert (run.start, run.end, run.unobserved_s) == (200.0, 7700.0, 7200.0)
    # nothing is counted for the unseen 2 h (no counter): 295 s at 90 W, 5 s sloping to 1 W
    assert run.energy_wh == pytest.approx(90 * 295 / 3600 + 91 / 2 * 5 / 3600)


def test_energy_across_a_gap_comes_from_the_counter() -> None:
    """With a counter, the energy of the unobserved span is known and counts in the run."""
    s = DetectorSettings(window_s=0, dwell_on_s=30, dwell_standby_s=120, dwell_off_s=120,
                         gap_s=60)
    d = Detector("fridge", s)
    samples = [Reading(t, 0.0, energy_kwh=1.0) for t in range(0, 200, 5)]
    samples += [Reading(200.0 + t, 90.0, energy_kwh=1.0 + 90 * t / 3.6e6) for t in range(0, 120, 5)]
    samples += [Reading(3800.0 + t, 90.0, energy_kwh=1.0 + 90 * (3600 + t) / 3.6e6)
                for t in range(0, 60, 5)]
    samples += [Reading(3860.0 + t, 0.0, energy_kwh=1.0 + 90 * 3660 / 3.6e6)
                for t in range(0, 300, 5)]
    (run,) = [e for e in feed_all(d, samples) if isinstance(e, RunSummary)]
    assert (run.start, run.end) == (200.0, 3860.0)
    assert run.unobserved_s == 3800.0 - 315.0
    assert run.energy_wh == pytest.approx(90 * 3660 / 3600)


def test_dryer_anti_wrinkle_tumbles_belong_to_the_runs_tail() -> None:
    """A dryer heats and tumbles for 50 min, then turns the drum 10 s every 3 min for an hour:
    with kind dryer the run ends where the main phase did, and no tumble starts a run. Without
    it (a washer), each tumble would keep the run open."""
    from plugwatch.detect.kinds import kind_named

    samples = steady(0, 600, 0.5) + steady(600, 3600, 2300.0)
    for k in range(20):  # anti-wrinkle: 10 s at 250 W every 3 min
        t0 = 3600 + 180 * k
        samples += steady(t0, t0 + 170, 0.5) + steady(t0 + 170, t0 + 180, 250.0)
    samples += steady(7200, 9000, 0.5)
    dryer = kind_named("dryer").settings()
    runs = [e for e in feed_all(Detector("d", dryer), samples) if isinstance(e, RunSummary)]
    assert [(r.start, r.end) for r in runs] == [(600.0, 3600.0)]
    washer = kind_named("washer").settings()
    runs = [e for e in feed_all(Detector("w", washer), samples) if isinstance(e, RunSummary)]
    assert [(r.start, r.end) for r in runs] == [(600.0, 7200.0)]


@pytest.mark.parametrize(("kind", "away_s", "away_w", "runs_expected"), [
    ("computer", 14 * 60, 1.0, 2),  # shut down for 14 min (soft-off ~1 W): two sessions
    ("computer", 2 * 60, 1.0, 1),  # a reboot: one session
    ("tv", 20 * 60, 0.0, 2),  # a TV switched off for 20 min and on again
    ("tv", 90, 0.5, 1),  # ... a minute and a half: still the same evening
    ("washer", 10 * 60, 0.0, 2),  # switched off at the wall between two programmes
    ("washer", 8 * 60, 2.0, 1),  # a soak pause in standby: one programme
    ("generic", 14 * 60, 1.0, 1),  # one 30-min dwell for every plug joins them (issue 12 case 1)
])
def test_separate_uses_by_kind(kind: str, away_s: float, away_w: float, runs_expected: int
                               ) -> None:
    """Issue 12, case 1, synthetic: two uses of 1 h at 120 W with `away_s` at `away_w` between."""
    from plugwatch.detect.kinds import kind_named

    second = 3600 + 3600 + away_s
    samples = (steady(0, 3600, 0.0) + steady(3600, 7200, 120.0)
               + steady(7200, second, away_w) + steady(second, second + 3600, 120.0)
               + steady(second + 3600, second + 7200, 0.0))
    s = kind_named(kind).settings()
    runs = [e for e in feed_all(Detector("p", s), samples) if isinstance(e, RunSummary)]
    assert len(runs) == runs_expected, [(r.start, r.end) for r in runs]
    assert runs[0].start == 3600.0 and runs[-1].end == second + 3600

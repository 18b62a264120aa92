"""Issue 12's four causes of wrong runs, each on a real recording (tests/data/traces, SOURCES.txt).

Each test replays what a user would set: a kind and the on threshold. "Before" in the comments is
what the detector of c7b8d24 (before issue 12: a 5-reading average, one 30-min dwell for every
plug, runs dated from the last on-spell, no first state, no open run, gaps merged) gave on the
same recording; the note of issue 12 lists the command. Synthetic edge cases of the same rules
are in tests/test_detect.py and tests/test_smoothing.py.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from plugwatch.detect import Detector, replay
from plugwatch.detect.kinds import kind_named
from plugwatch.model import DetectorSettings, Event, Reading, RunSummary, State, Transition
from plugwatch.traces.reader import CsvOptions, Trace, read_trace

TRACES = Path(__file__).parent / "data" / "traces"
TB_WASHER = TRACES / "tracebase" / "Washingmachine__dev_7297E3_2012.01.08.csv"
TB_TV = TRACES / "tracebase" / "TV-LCD__dev_D35F73_2012.06.16.csv"
REFIT = TRACES / "refit_day"


def at(when: str) -> float:
    """Epoch seconds of 'YYYY-MM-DD HH:MM:SS' UTC."""
    return datetime.fromisoformat(when).replace(tzinfo=UTC).timestamp()


def user(kind: str, on_w: float, **over: float) -> DetectorSettings:
    """What a user sets: the kind and the on threshold (band 20 %), plus `over`."""
    return dataclasses.replace(kind_named(kind).settings(), on_w=on_w,
                               on_band_w=round(on_w * 0.2, 2), **over)


def trace(path: Path, column: str | None = None) -> Trace:
    return read_trace(path, CsvOptions(power_col=column) if column else None)


def runs(events: list[Event]) -> list[RunSummary]:
    return [e for e in events if isinstance(e, RunSummary)]


@dataclasses.dataclass
class Arrays:
    """A trace as plain arrays (cut or spliced from a real one)."""

    ts: np.ndarray
    power_w: np.ndarray


# -- cause 1: separate uses less than 30 min apart ---------------------------------------------

@pytest.mark.parametrize(("path", "column", "kind", "on_w", "uses"), [
    # two programmes 13 min apart, each heating to ~2.3 kW (before: one run 13:19:39-15:37:14)
    (TB_WASHER, None, "washer", 10.0,
     [("2012-01-08 13:19:23", "2012-01-08 14:24:10"),
      ("2012-01-08 14:37:07", "2012-01-08 15:37:08")]),
    # a TV off for 4 min between two sessions of one evening (before: one run 18:04:27-22:31:53)
    (REFIT / "house_7_day.csv", "Appliance7", "tv", 20.0,
     [("2015-01-08 18:04:27", "2015-01-08 19:32:31"),
      ("2015-01-08 19:36:44", "2015-01-08 22:31:45")]),
], ids=["tracebase-washer", "refit7-tv"])
def test_separate_uses_are_separate_runs(path: Path, column: str | None, kind: str, on_w: float,
                                         uses: list[tuple[str, str]]) -> None:
    recording = trace(path, column)
    found = runs(replay("p", recording, user(kind, on_w)))
    assert len(found) == len(uses), [(r.start, r.end) for r in found]
    for run, (first, last) in zip(found, uses, strict=True):
        assert abs(run.start - at(first)) <= 10 and 0 <= run.end - at(last) <= 10
    # one dwell of 30 min for every plug (the generic kind, as before) joins them into one
    assert len(runs(replay("p", recording, user("generic", on_w)))) == 1


def test_a_washer_switched_off_at_the_wall_between_programmes_ends_its_run() -> None:
    """The tracebase washer's two programmes with the machine switched off at the wall (0 W) for
    8 min between them: off ends the first run after the 3-min off dwell. Left in standby (2 W)
    instead, the 10-min standby dwell bridges the same 8 min (a soak pause)."""
    recording = trace(TB_WASHER)
    ts, watts = recording.ts, recording.power_w
    first = (ts >= at("2012-01-08 13:00:00")) & (ts < at("2012-01-08 14:25:00"))
    second = ts >= at("2012-01-08 14:37:00")
    pause = np.arange(at("2012-01-08 14:25:00"), at("2012-01-08 14:33:00"), 2.0)
    shift = at("2012-01-08 14:37:00") - at("2012-01-08 14:33:00")  # the second starts at 14:33
    spliced_ts = np.concatenate([ts[first], pause, ts[second] - shift])
    for pause_w, expected in ((0.0, 2), (2.0, 1)):
        spliced = np.concatenate([watts[first], np.full(pause.size, pause_w), watts[second]])
        found = runs(replay("p", Arrays(spliced_ts, spliced), user("washer", 10.0)))
        assert len(found) == expected, (pause_w, [(r.start, r.end) for r in found])
    assert found[0].start == pytest.approx(at("2012-01-08 13:19:23"), abs=10)


# -- cause 2: a late start when the load flickers -------------------------------------------

@pytest.mark.parametrize(("window_s", "on_w"), [(30.0, 10.0), (60.0, 10.0), (0.0, 30.0)])
def test_a_washer_run_starts_at_the_first_turn_of_the_drum(window_s: float, on_w: float) -> None:
    """The tracebase washer (1-3 s readings) turns its drum ~15 s and rests ~7 s (4 W) for the
    first minutes: each run starts at the first turn, whatever the window (before, with a
    5-reading average and a washer's dwells: 13:25:42 and 14:38:09, 6 min 19 s and 62 s late).
    Without a window the idle's 9-11 W noise crosses a 10 W threshold, so that row takes 30 W."""
    found = runs(replay("p", trace(TB_WASHER), user("washer", on_w, window_s=window_s)))
    starts = [r.start for r in found]
    assert starts == [at("2012-01-08 13:19:23"), at("2012-01-08 14:37:07")]


# -- cause 3: a plug in one state all day -------------------------------------------------

def test_a_plug_on_all_day_reports_its_state_and_its_open_run() -> None:
    """REFIT 10's TV site (a set-top box at ~55 W all day, the TV on top): with kind always_on
    and on at 30 W, the first state and the day's run, still open, with its energy so far
    (before: no output at all)."""
    recording = trace(REFIT / "house_10_day.csv", "Appliance7")
    events = replay("p", recording, user("always_on", 30.0))
    first, last = float(recording.ts[0]), float(recording.ts[-1])
    assert events[0] == Transition("p", first, State.UNKNOWN, State.ON, "power",
                                   float(recording.power_w[0]))
    (run,) = runs(events)
    assert (run.start, run.end, run.open) == (first, last, True)
    energy = float(np.sum((recording.power_w[1:] + recording.power_w[:-1]) / 2
                          * np.diff(recording.ts))) / 3600
    assert run.energy_wh == pytest.approx(energy)
    assert len(events) == 2


def test_a_plug_in_standby_all_day_reports_that_state_once() -> None:
    """REFIT 9's hi-fi reads 5 W all day: one event, standby from the first reading."""
    recording = trace(REFIT / "house_9_day.csv", "Appliance8")
    assert replay("p", recording, user("always_on", 10.0)) == [
        Transition("p", float(recording.ts[0]), State.UNKNOWN, State.STANDBY, "power", 5.0)]


# -- cause 4: unobserved time merged into a run -------------------------------------------

def test_a_loggers_gaps_are_carried_as_unobserved_time_not_breaks() -> None:
    """The tracebase TV's logger misses 1-7 min at a time during the evening session (12 gaps,
    2,437 s): the session stays one run and says how long nobody saw it (before: the gaps were
    invisible, and the session, still on at midnight, was not reported at all)."""
    recording = trace(TB_TV)
    found = runs(replay("p", recording, user("tv", 20.0)))
    *done, evening = found
    assert evening.open and evening.start == at("2012-06-16 18:14:19")
    gaps = np.diff(recording.ts)
    inside = (recording.ts[:-1] >= evening.start) & (gaps > user("tv", 20.0).gap_s)
    assert evening.unobserved_s == pytest.approx(float(gaps[inside].sum())) == 2437.0
    assert all(r.unobserved_s == 0 for r in done)


def test_a_service_outage_is_never_merged_into_a_fridge_run() -> None:
    """REFIT 7's fridge with the service down 40 min (the readings cut, 12:08-12:48), as when
    plugwatch was stopped: the compressor run going at 12:00 ends at the last reading before the
    outage, nothing covers the outage without saying so, and the live detector agrees (before:
    one run 12:04:52-12:48:00, stretched 40 min over the outage to the first reading after it)."""
    recording = trace(REFIT / "house_7_day.csv", "Appliance1")
    down, up = at("2015-01-08 12:08:00"), at("2015-01-08 12:48:00")
    keep = (recording.ts < down) | (recording.ts >= up)
    cut = Arrays(recording.ts[keep], recording.power_w[keep])
    s = user("fridge", 30.0)
    events = replay("p", cut, s)
    last_before = float(cut.ts[cut.ts < down][-1])
    assert cut.power_w[cut.ts < down][-1] > s.on_w  # the compressor was running at 12:08
    across = [r for r in runs(events) if r.start < down and r.end > last_before]
    assert all(r.unobserved_s >= up - down - 60 for r in across), across
    assert any(r.end == last_before for r in runs(events))
    detector = Detector("p", s)
    streamed = [e for t, w in zip(cut.ts, cut.power_w, strict=True)
                for e in detector.feed(Reading(float(t), float(w)))]
    open_run = detector.open_run()
    assert streamed + ([open_run] if open_run else []) == events

"""Real washer and dishwasher recordings: every cycle comes out as exactly one run.

Cycles were counted from the data (bursts of >= 50 W; docs/replay.md): the table below lists
each cycle's first and last sample of >= 50 W (UTC). A cycle is "one run" when exactly one run
starts before its first burst and ends after its last one, and no other run exists.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from plugwatch.model import DetectorSettings, RunSummary, Transition
from plugwatch.traces.reader import CsvOptions, read_trace

detect = pytest.importorskip("plugwatch.detect")
if not hasattr(detect, "replay") or not hasattr(detect, "Detector"):
    pytest.skip("plugwatch.detect has no replay/Detector yet", allow_module_level=True)

TRACES = Path(__file__).parent / "data" / "traces"
TB = TRACES / "tracebase"
REFIT = TRACES / "refit_day"

# The "appliance" profile: soak, rinse and drying pauses (up to ~30 min at 0-3 W, plus a drain
# pump ~30 min after a dishwasher's drying) must not end a run; one stray sample must not start one.
# The defaults except the two dwells that end a run.
APPLIANCE = DetectorSettings(dwell_standby_s=50 * 60.0, dwell_off_s=50 * 60.0)
# REFIT 7's washer idles at ~1 W read as 0/1 W: a long dwell never sees one level hold, so it
# gets the settings `plugwatch calibrate` proposes for it (on threshold 3.5 W, short dwells).
REFIT7_WASHER = DetectorSettings(
    window_s=20.0, standby_w=0.3, standby_band_w=0.12, on_w=3.5, on_band_w=0.49,
    dwell_on_s=70.0, dwell_standby_s=180.0, dwell_off_s=360.0,
)


def at(day: str, hms: str) -> float:
    """Epoch seconds of a UTC date and time."""
    return datetime.fromisoformat(f"{day}T{hms}+00:00").astimezone(UTC).timestamp()


CASES = [
    # (id, file, power column, settings, [(first, last) >= 50 W sample of each cycle])
    ("tracebase-washer", TB / "Washingmachine__dev_7297E3_2012.01.08.csv", None, APPLIANCE,
     [("2012-01-08", "13:19:23", "15:37:08")]),  # two programmes 13 min apart, joined by these
    # 50-min dwells (kind washer keeps them apart: tests/test_replay_causes.py)
    ("tracebase-dishwasher", TB / "Dishwasher__dev_B7E6F4_2012.02.03.csv", None, APPLIANCE,
     [("2012-02-03", "07:49:27", "09:05:34")]),  # one programme; standby flickers 0/2 W
    ("refit2-washer", REFIT / "house_2_day.csv", "Appliance2", APPLIANCE,
     [("2015-01-08", "13:33:28", "14:39:51")]),
    ("refit2-dishwasher", REFIT / "house_2_day.csv", "Appliance3", APPLIANCE,
     [("2015-01-08", "19:02:33", "21:27:19")]),  # drying pause at 0 W, drain pump at 21:26
    ("refit7-washer", REFIT / "house_7_day.csv", "Appliance5", REFIT7_WASHER,
     [("2015-01-08", "07:43:59", "08:55:46"), ("2015-01-08", "18:26:39", "19:30:29")]),
    ("refit7-dishwasher", REFIT / "house_7_day.csv", "Appliance6", APPLIANCE,
     [("2015-01-08", "18:42:46", "20:04:40")]),
    ("refit9-washer", REFIT / "house_9_day.csv", "Appliance3", APPLIANCE,
     []),  # the channel reads 0 W all day: no run, no transition
    ("refit9-washer-dryer", REFIT / "house_9_day.csv", "Appliance2", APPLIANCE,
     [("2015-01-08", "18:09:20", "18:49:18")]),
    ("refit9-dishwasher", REFIT / "house_9_day.csv", "Appliance4", APPLIANCE,
     [("2015-01-08", "18:57:51", "21:29:13")]),  # bursts up to ~20 min apart: one programme
    ("refit10-washer", REFIT / "house_10_day.csv", "Appliance5", APPLIANCE,
     [("2015-01-08", "19:42:54", "21:47:44")]),
    ("refit10-dishwasher", REFIT / "house_10_day.csv", "Appliance6", APPLIANCE,
     [("2015-01-08", "19:15:27", "20:37:17")]),  # plus one 257 W sample at 23:02: not a run
]


def _trace(path: Path, column: str | None):  # type: ignore[no-untyped-def]
    return read_trace(path, CsvOptions(power_col=column) if column else None)


@pytest.mark.parametrize(("path", "column", "settings", "cycles"),
                         [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_each_cycle_is_exactly_one_run(path, column, settings, cycles) -> None:
    """As many runs as cycles, each run spanning its whole cycle (pauses included)."""
    trace = _trace(path, column)
    runs = [e for e in detect.replay("appliance", trace, settings) if isinstance(e, RunSummary)]
    assert len(runs) == len(cycles), [(r.start, r.end) for r in runs]
    for run, (day, first, last) in zip(runs, cycles, strict=True):
        assert run.start <= at(day, first) + 60  # the smoothed power may lag one window
        assert run.end >= at(day, last)
        assert run.peak_w >= 50
        assert run.energy_wh > 0


@pytest.mark.parametrize(("path", "column", "settings"),
                         [case[1:4] for case in CASES], ids=[case[0] for case in CASES])
def test_no_flapping_on_real_traces(path, column, settings) -> None:
    """Per cycle at most on and back: never more than two transitions per run plus one settle."""
    trace = _trace(path, column)
    events = detect.replay("appliance", trace, settings)
    transitions = [e for e in events if isinstance(e, Transition)]
    runs = [e for e in events if isinstance(e, RunSummary)]
    assert len(transitions) <= 2 * len(runs) + 1


@pytest.mark.parametrize(("path", "column", "settings"),
                         [case[1:4] for case in CASES[:2] + CASES[4:5]],
                         ids=[case[0] for case in CASES[:2] + CASES[4:5]])
def test_streaming_detector_matches_replay_on_real_traces(path, column, settings) -> None:
    """Feeding the live Detector reading by reading gives the very events of the batch replay."""
    trace = _trace(path, column)
    detector = detect.Detector("appliance", settings)
    streamed = [event for reading in trace.readings() for event in detector.feed(reading)]
    assert streamed == detect.replay("appliance", trace, settings)


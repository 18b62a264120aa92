"""Renderings users and scripts read: durations, ISO times, JSON lines of events."""

from __future__ import annotations

import json

import pytest

from plugwatch.formatting import format_duration, format_power, iso, run_json, transition_json
from plugwatch.model import RunSummary, State, Transition


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0 s"),
        (45.9, "45 s"),  # rounded down
        (65, "1 min 5 s"),  # short minutes keep their seconds
        (720, "12 min"),
        (725, "12 min"),  # long minutes drop them
        (3600, "1 h"),
        (4320, "1 h 12 min"),
        (86400 + 3 * 3600, "1 d 3 h"),
        (-90, "-1 min 30 s"),
    ],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_iso_is_utc_whole_seconds() -> None:
    assert iso(1767323045.7) == "2026-01-02T03:04:05+00:00"


def test_format_power() -> None:
    assert [format_power(w) for w in (None, 0.6234, 45.26, 2036.4)] == [
        "-", "0.62 W", "45.3 W", "2036 W"]


def test_transition_json_shape() -> None:
    t = Transition("washer", 1767323045.0, State.STANDBY, State.ON, "power", 1234.5678)
    assert json.loads(json.dumps(transition_json(t))) == {
        "type": "transition", "ts": "2026-01-02T03:04:05+00:00", "plug": "washer",
        "from": "standby", "to": "on", "reason": "power", "power_w": 1234.568,
    }


def test_run_json_shape() -> None:
    r = RunSummary("washer", 1767323045.0, 1767327365.0, 812.34567, 2100.0)
    assert run_json(r) == {
        "type": "run", "plug": "washer", "start": "2026-01-02T03:04:05+00:00",
        "end": "2026-01-02T04:16:05+00:00", "duration_s": 4320.0, "energy_wh": 812.346,
        "peak_w": 2100.0, "cost": None, "currency": None, "open": False, "unobserved_s": 0.0,
    }
    priced = RunSummary("washer", 0.0, 1.0, 812.0, 2100.0, cost=0.251723, currency="EUR")
    assert (run_json(priced)["cost"], run_json(priced)["currency"]) == (0.2517, "EUR")


def test_unreachable_transition_has_null_power() -> None:
    """A transition to unreachable measured nothing: its power is JSON null, not 0."""
    t = Transition("freezer", 1767323045.0, State.ON, State.UNREACHABLE, "read_failures", None)
    line = json.dumps(transition_json(t))
    assert '"power_w": null' in line and '"to": "unreachable"' in line


@pytest.mark.parametrize(("seconds", "text"), [
    (float("nan"), "?"),  # no duration known
    (59.999, "59 s"),  # never rounded up into the next unit
    (2 * 86400, "2 d"),  # whole days drop the hours
])
def test_format_duration_edges(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text

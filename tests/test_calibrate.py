"""`plugwatch.detect.calibrate` on real recordings: levels found, thresholds in the gaps, dwells."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from plugwatch.detect.calibrate import cycle_pauses, propose, smoothed
from tests.conftest import TRACES

# (name, file, REFIT channel or None for a tracebase file, appliance cycles in the trace)
WASHERS_AND_DISHWASHERS = [
    ("tracebase washer", "tracebase/Washingmachine__dev_7297E3_2012.01.08.csv", None, 1),
    ("tracebase dishwasher", "tracebase/Dishwasher__dev_B7E6F4_2012.02.03.csv", None, 1),
    ("REFIT 2 washer", "refit_day/house_2_day.csv", 2, 1),
    ("REFIT 2 dishwasher", "refit_day/house_2_day.csv", 3, 1),
    ("REFIT 7 washer", "refit_day/house_7_day.csv", 5, 2),
    ("REFIT 7 dishwasher", "refit_day/house_7_day.csv", 6, 1),
    ("REFIT 9 washer", "refit_day/house_9_day.csv", 3, 0),  # idle all day: 0 W throughout
    ("REFIT 9 dishwasher", "refit_day/house_9_day.csv", 4, 1),
    ("REFIT 10 washer", "refit_day/house_10_day.csv", 5, 1),
    ("REFIT 10 dishwasher", "refit_day/house_10_day.csv", 6, 1),
]


def load(file: str, channel: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Epoch seconds and watts of one appliance, parsed with numpy alone (not traces.py)."""
    path = TRACES / file
    if channel is not None:
        data = np.loadtxt(path, delimiter=",", skiprows=1, usecols=(1, 2 + channel))
        return data[:, 0], data[:, 1]
    ts, power = [], []
    for line in path.read_text().splitlines():
        when, watts, _ = line.split(";")
        stamp = dt.datetime.strptime(when, "%d/%m/%Y %H:%M:%S").replace(tzinfo=dt.UTC)
        ts.append(stamp.timestamp())
        power.append(float(watts))
    return np.array(ts), np.array(power)


@pytest.fixture(scope="module", params=WASHERS_AND_DISHWASHERS, ids=lambda t: t[0])
def trace(request: pytest.FixtureRequest) -> tuple[str, np.ndarray, np.ndarray, int]:
    name, file, channel, cycles = request.param
    ts, power = load(file, channel)
    return name, ts, power, cycles


def test_thresholds_sit_between_standby_and_active_levels(trace) -> None:
    """Every standby level reads as standby and every active level as on, bands included."""
    _, ts, power, _ = trace
    proposal = propose(ts, power)
    s = proposal.settings
    for mode in proposal.standby_modes:
        assert s.standby_w + s.standby_band_w <= mode.power_w <= s.on_w - s.on_band_w
    for mode in proposal.active_modes:
        assert mode.power_w >= s.on_w + s.on_band_w


def test_heating_level_is_found(trace) -> None:
    """A washer or dishwasher heats at ~2 kW; calibrate names that level."""
    _, ts, power, cycles = trace
    proposal = propose(ts, power)
    if cycles:
        assert any(1500 <= m.power_w <= 2500 for m in proposal.active_modes)
    else:
        assert proposal.active_modes == []


def test_dwell_outlasts_every_pause_inside_a_cycle(trace) -> None:
    """Standby/off must hold longer than the longest quiet spell inside one cycle."""
    _, ts, power, _ = trace
    s = propose(ts, power).settings
    pauses = cycle_pauses(ts, smoothed(ts, power, s.window_s, s.gap_s), s.on_w, s.dwell_on_s,
                          40 * 60)
    assert all(p < s.dwell_standby_s and p < s.dwell_off_s for p in pauses)


def test_bimodal_standby_is_two_levels() -> None:
    """The Sense forum's standby at 0.60 and 0.74 W shows as two levels, both below 'on'."""
    rng = np.random.default_rng(7)
    ts = np.arange(20_000) * 5.0
    power = np.where(rng.random(ts.size) < 0.5, 0.60, 0.74) + rng.normal(0, 0.01, ts.size)
    power[5000:5400] = rng.normal(1000, 30, 400)  # a spin at ~1 kW
    proposal = propose(ts, power)
    levels = [round(m.power_w, 1) for m in proposal.standby_modes]
    assert levels == [0.6, 0.7]
    assert proposal.settings.standby_w + proposal.settings.standby_band_w < 0.59
    assert "0.589 W" in proposal.reasons[1] and "0.741 W" in proposal.reasons[1]


def test_yaml_snippet_and_json_carry_the_same_settings() -> None:
    """The paste-able YAML and the --json output agree."""
    ts, power = load("refit_day/house_7_day.csv", 5)
    proposal = propose(ts, power)
    data = proposal.to_json()["settings"]
    snippet = proposal.yaml_snippet()
    assert f"on: {data['on_w']:g}, hysteresis: {{standby: " in snippet
    assert snippet.startswith("kind: washer\nwindow: 20s\ngap: 70s\nthresholds: {standby: ")
    assert "dwell: {on: 1m, " in snippet


def test_yaml_snippet_pasted_under_a_plug_gives_the_proposed_settings(tmp_path) -> None:
    """What calibrate prints, pasted into plugwatch.yaml, is exactly what the detector gets."""
    from plugwatch.config import load_config

    ts, power = load("tracebase/Washingmachine__dev_7297E3_2012.01.08.csv", None)
    proposal = propose(ts, power)
    pasted = "".join(f"    {line}\n" for line in proposal.yaml_snippet().splitlines())
    config = tmp_path / "plugwatch.yaml"
    config.write_text(
        "database: sqlite:///plugwatch.db\nplugs:\n  - name: washer\n    host: 127.0.0.1\n" + pasted
    )
    assert load_config(config).plug("washer").detector == proposal.settings


@pytest.mark.parametrize(("path", "column", "kind"), [
    ("tracebase/Washingmachine__dev_7297E3_2012.01.08.csv", None, "washer"),
    ("refit_day/house_2_day.csv", "Appliance3", "dishwasher"),  # a 24-min drying pause
    ("refit_day/house_7_day.csv", "Appliance1", "fridge"),  # tens of compressor cycles
    ("refit_day/house_7_day.csv", "Appliance2", "fridge"),  # a freezer: the same physics
    ("refit_day/house_2_day.csv", "Appliance8", "kettle"),
    ("refit_day/house_2_day.csv", "Appliance4", "tv"),
])
def test_calibrate_proposes_a_kind(path: str, column: str | None, kind: str) -> None:
    """The kind is read from the runs: heater + programme, compressor cycles, boils, sessions."""
    from plugwatch.traces.reader import CsvOptions, read_trace

    trace = read_trace(TRACES / path, CsvOptions(power_col=column) if column else None)
    proposal = propose(trace.ts, trace.power_w)
    assert proposal.settings.kind == kind
    assert any(line.startswith(f"kind {kind}: ") for line in proposal.reasons)

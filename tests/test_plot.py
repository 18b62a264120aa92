"""`plugwatch.traces.plot`: real PNG files of the asked size whose legends name the thresholds."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from plugwatch.detect.calibrate import histogram, propose
from plugwatch.model import RunSummary, State, Transition
from plugwatch.traces.plot import plot_histogram, plot_power
from tests.conftest import TRACES


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk (fails unless the file is a PNG)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def house_7_washer() -> tuple[np.ndarray, np.ndarray]:
    data = np.loadtxt(
        TRACES / "refit_day/house_7_day.csv", delimiter=",", skiprows=1, usecols=(1, 7)
    )
    return data[:, 0], data[:, 1]


def test_power_plot_is_a_png_of_the_asked_size_naming_thresholds(tmp_path: Path) -> None:
    """The time plot has the asked pixels and a legend naming both thresholds with their bands."""
    ts, power = house_7_washer()
    settings = propose(ts, power).settings
    start, end = float(ts[3000]), float(ts[3600])
    events = [
        Transition("washer", float(ts[0]), State.UNKNOWN, State.OFF, "power", 0.0),
        Transition("washer", start, State.OFF, State.ON, "power", 150.0),
        RunSummary("washer", start, end, 1234.0, 2100.0),
        Transition("washer", end, State.ON, State.STANDBY, "power", 1.0),
    ]
    out = tmp_path / "power.png"
    labels = plot_power(out, ts, power, settings, events, title="washer", width=800,
                        height=400).legend
    assert png_size(out) == (800, 400)
    assert f"standby threshold {settings.standby_w:g} W ± {settings.standby_band_w:g}" in labels
    assert f"on threshold {settings.on_w:g} W ± {settings.on_band_w:g}" in labels
    assert {"state off", "state on", "state standby"} <= set(labels)


def test_histogram_is_a_png_of_the_asked_size_naming_thresholds(tmp_path: Path) -> None:
    """--hist draws the histogram at the asked size with both proposed thresholds named and
    its power axis in plain watts."""
    ts, power = house_7_washer()
    proposal = propose(ts, power)
    out = tmp_path / "hist.png"
    drawn = plot_histogram(out, histogram(ts, power), proposal, width=1200, height=600)
    labels = drawn.legend
    assert png_size(out) == (1200, 600)
    ticks = {t.get_text() for t in drawn.axes.get_xticklabels()}
    assert {"0.1", "1", "10", "100", "1\u2009000"} <= ticks  # plain watts, not 10^n
    assert sum(label.startswith(("standby threshold", "on threshold")) for label in labels) == 2

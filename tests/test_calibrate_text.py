"""`plugwatch calibrate` reads as proofread text: plurals, rates over enough data, round numbers.

Each case is a slice of a real recording (tests/data/traces) written to a CSV file as a user would.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from plugwatch.cli import main
from tests.conftest import TRACES

TUYA = TRACES / "tuya_plug/2025-09-12.csv"  # 1 s readings of a plug, one day


def tuya_slice(tmp_path: Path, first: int, last: int, name: str = "slice") -> Path:
    """Rows first..last (1-based data rows) of the Tuya day as their own CSV file."""
    lines = TUYA.read_text().splitlines()
    out = tmp_path / f"{name}.csv"
    out.write_text("\n".join([lines[0], *lines[first:last + 1]]) + "\n")
    return out


def calibrate(path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    assert main(["calibrate", str(path)]) == 0
    return capsys.readouterr().out


def test_a_half_hour_trace_gives_counts_in_the_singular_and_no_daily_rate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    """32 minutes around the kettle-like burst: one run and one change read "1 run", "1 state
    change"; no "/day" rate is extrapolated from half an hour, and the output says why."""
    out = calibrate(tuya_slice(tmp_path, 2200, 4060), capsys)
    assert "1,861 readings over 32 min" in out
    assert "a plain 0.5 W threshold on raw readings: 1 run, 1 state change, no flaps" in out
    assert "/day" not in out
    assert "(no daily rates: the readings cover less than 12 h)" in out
    assert not re.search(r"\b1 (runs|state changes|flaps)\b", out)


def test_a_day_gives_daily_rates_rounded(capsys: pytest.CaptureFixture[str]) -> None:
    """A whole day gives rates per day: one decimal when small, whole numbers when large."""
    assert main(["calibrate", str(TRACES / "refit_day/house_7_day.csv"),
                 "--power-col", "Appliance5"]) == 0
    out = capsys.readouterr().out
    assert "replay with these settings: 2 runs, 6 state changes (6.0/day), no off/standby flaps" \
        in out
    assert "1,510 runs, 3,019 state changes (3,019/day), 1,509 flaps" in out
    assert "off must hold 4 min" in out  # durations in prose, config syntax only in the snippet
    assert "on must hold 1 min (twice the 20 s window and a ~7 s sample)" in out
    assert "\ndwell: {on: 1m, standby: 3m, off: 4m}\n" in out


def test_jittery_timestamps_give_a_rounded_sample_interval(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    """Timestamps with sub-millisecond jitter (as a logger writes them) give "~1 s", not
    "~1.00001 s"."""
    lines = TUYA.read_text().splitlines()[2200:4060]
    jittered = ["ts,power"]
    for i, line in enumerate(lines):
        power = line.split(",")[3]
        jittered.append(f"{1757635200 + i * 1.00001 + (i % 3) * 1e-5:.5f},{power}")
    trace = tmp_path / "jitter.csv"
    trace.write_text("\n".join(jittered) + "\n")
    out = calibrate(trace, capsys)
    assert "a ~1 s sample)" in out
    assert "1.00001" not in out


def test_a_plug_never_at_zero_says_so_instead_of_zero_percent(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    """A slice where the load never drops to ~0 W says "never at ~0 W", not "0% of the time"."""
    out = calibrate(tuya_slice(tmp_path, 2922, 3500, "busy"), capsys)
    assert "never at ~0 W (no reading <= 0.3 W)" in out
    assert "0% of the time" not in out

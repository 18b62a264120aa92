"""Reading CSV traces: the real layouts, options, bad rows with line numbers, time zones."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plugwatch.errors import TraceError
from plugwatch.model import Reading
from plugwatch.traces.reader import CsvOptions, add_csv_arguments, csv_options_from_args, read_trace
from plugwatch.traces.timeparse import parse_one, parse_times, zone

TRACES = Path(__file__).parent / "data" / "traces"


def epoch(*args: int) -> float:
    return datetime(*args, tzinfo=UTC).timestamp()  # type: ignore[misc]


def write(tmp_path: Path, text: str, name: str = "t.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8", newline="")
    return path


def test_tracebase_layout_is_read_without_options() -> None:
    """No header, `;`, dd/mm/yyyy times, CRLF: all guessed; the 1 s power column is used."""
    trace = read_trace(TRACES / "tracebase" / "Washingmachine__dev_7297E3_2012.01.08.csv")
    assert len(trace) == 58890
    assert trace.ts[0] == epoch(2012, 1, 8, 0, 0, 1)
    assert trace.problems == []
    assert trace.power_w.max() > 1000


def test_tracebase_local_time_zone() -> None:
    """--tz Europe/Berlin reads the naive times as German winter time (UTC+1)."""
    path = TRACES / "tracebase" / "Washingmachine__dev_7297E3_2012.01.08.csv"
    trace = read_trace(path, CsvOptions(tz="Europe/Berlin"))
    assert trace.ts[0] == epoch(2012, 1, 7, 23, 0, 1)


def test_refit_named_column() -> None:
    """REFIT: header, ISO-like times; a channel chosen by name."""
    path = TRACES / "refit_day" / "house_2_day.csv"
    trace = read_trace(path, CsvOptions(power_col="Appliance2"))
    assert trace.ts[0] == 1420675200.0
    assert len(trace) == 12616
    assert trace.power_w.max() == 2036.0


def test_refit_unix_column_by_index() -> None:
    """The Unix column with --time-format unix gives the same times as the Time column."""
    path = TRACES / "refit_day" / "house_2_day.csv"
    by_text = read_trace(path, CsvOptions(power_col=4))
    by_unix = read_trace(path, CsvOptions(time_col=1, power_col=4, time_format="unix"))
    np.testing.assert_array_equal(by_text.ts, by_unix.ts)


def test_tuya_power_column_found_by_name() -> None:
    trace = read_trace(TRACES / "tuya_plug" / "2025-09-12.csv")
    assert trace.power_w.max() > 1000  # the power column, not voltage (~230) or current (mA)


def test_bad_rows_are_skipped_and_named_by_line(tmp_path: Path) -> None:
    path = write(tmp_path, "ts,power\n100,1\n101,x\n\nbogus,3\n99,4\n102,5\n103\n")
    trace = read_trace(path)
    assert trace.ts.tolist() == [100.0, 102.0]
    assert trace.power_w.tolist() == [1.0, 5.0]
    lines = [problem.split(":")[1] for problem in trace.problems]
    assert lines == ["3", "5", "6", "8"]
    assert "goes backwards" in trace.problems[2]


def test_strict_stops_at_first_bad_row(tmp_path: Path) -> None:
    path = write(tmp_path, "ts,power\n100,1\n101,nan\n102,2\n")
    with pytest.raises(TraceError, match=r"t\.csv:3: power nan is not a finite number"):
        read_trace(path, strict=True)


def test_unknown_column_lists_the_columns(tmp_path: Path) -> None:
    path = write(tmp_path, "ts,power\n100,1\n")
    with pytest.raises(TraceError, match="no column 'watt'; the columns are: ts, power"):
        read_trace(path, CsvOptions(power_col="watt"))


def test_missing_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(TraceError, match=r"cannot read trace .*nope\.csv"):
        read_trace(tmp_path / "nope.csv")


def test_unguessable_time_format(tmp_path: Path) -> None:
    path = write(tmp_path, "when;power\nyesterday;1\n")
    with pytest.raises(TraceError, match=r"t\.csv:2: cannot tell the time format.*--time-format"):
        read_trace(path)


def test_iso_with_offsets_and_fractions(tmp_path: Path) -> None:
    text = "time,power\n2026-01-02T03:04:05Z,1\n2026-01-02T04:04:06.5+01:00,2\n"
    trace = read_trace(write(tmp_path, text))
    assert trace.ts.tolist() == [epoch(2026, 1, 2, 3, 4, 5), epoch(2026, 1, 2, 3, 4, 6) + 0.5]


def test_strftime_pattern_and_invalid_date(tmp_path: Path) -> None:
    text = "02.01.2026 03:04;1\n31.02.2026 03:05;2\n02.01.2026 03:06;3\n"
    trace = read_trace(write(tmp_path, text), CsvOptions(time_format="%d.%m.%Y %H:%M"))
    assert trace.ts.tolist() == [epoch(2026, 1, 2, 3, 4), epoch(2026, 1, 2, 3, 6)]
    assert trace.problems[0].endswith("t.csv:2: time '31.02.2026 03:05' does not match "
                                      "--time-format %d.%m.%Y %H:%M")


def test_milliseconds_are_recognised(tmp_path: Path) -> None:
    trace = read_trace(write(tmp_path, "ms,power\n1767323045000,1\n1767323046500,2\n"))
    assert trace.ts.tolist() == [1767323045.0, 1767323046.5]


def test_dst_change_in_local_time(tmp_path: Path) -> None:
    """Times across the spring-forward change keep their true spacing."""
    text = "2026-03-29 01:59:00,1\n2026-03-29 03:01:00,2\n"
    trace = read_trace(write(tmp_path, text), CsvOptions(tz="Europe/Berlin"))
    assert trace.ts[1] - trace.ts[0] == 120.0


def test_readings_iterates_reading_values(tmp_path: Path) -> None:
    trace = read_trace(write(tmp_path, "1,2.5\n2,3\n"))
    assert list(trace.readings()) == [Reading(1.0, 2.5), Reading(2.0, 3.0)]


def test_command_line_options() -> None:
    parser = argparse.ArgumentParser()
    add_csv_arguments(parser)
    args = parser.parse_args(["--time-col", "Unix", "--power-col", "3", "--delimiter", "tab",
                              "--no-header", "--time-format", "unix", "--tz", "Europe/Berlin"])
    assert csv_options_from_args(args) == CsvOptions(
        time_col="Unix", power_col=3, delimiter="\t", header=False, time_format="unix",
        tz="Europe/Berlin",
    )


def test_unknown_time_zone(tmp_path: Path) -> None:
    with pytest.raises(TraceError, match="unknown time zone 'Mars/Base'"):
        read_trace(write(tmp_path, "1,2\n"), CsvOptions(tz="Mars/Base"))


def test_long_time_text_is_not_cut(tmp_path: Path) -> None:
    """A time field longer than the fast reader's width is read whole (line-by-line path)."""
    padded = "2026-01-02T03:04:05.123456+00:00" + " " * 20
    trace = read_trace(write(tmp_path, f"time,power\n{padded},1\n"))
    assert trace.ts.tolist() == [epoch(2026, 1, 2, 3, 4, 5) + 0.123456]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.datetimes(min_value=datetime(1901, 1, 1), max_value=datetime(2399, 12, 31)),
                min_size=1, max_size=50),
       st.sampled_from(["iso", "%d/%m/%Y %H:%M:%S", "%Y%m%d%H%M%S", "%d.%m.%y %H:%M"]),
       st.sampled_from([None, "Europe/Berlin", "America/New_York"]))
def test_vectorised_times_match_datetime(stamps: list[datetime], fmt: str, tz: str | None) -> None:
    """The numpy fast path reads every date exactly as datetime.strptime/fromisoformat does."""
    pattern = "%Y-%m-%d %H:%M:%S" if fmt == "iso" else fmt
    texts = np.array([s.strftime(pattern) for s in stamps])
    zone_ = zone(tz)
    expected = [parse_one(str(text), fmt, zone_) for text in texts]
    assert parse_times(texts, fmt, zone_).tolist() == expected

"""Read recorded power traces (CSV exports of plugs and data sets) into numpy arrays, fast.

A clean file is parsed by numpy's C reader in one pass; a file with bad rows is re-read line by
line so each problem is reported with its line number (and skipped, or raised when strict).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from plugwatch.errors import TraceError
from plugwatch.model import Reading
from plugwatch.sources.validate import DEFAULT_LIMITS, Limits, check_power
from plugwatch.traces.layout import Layout, sniff_layout
from plugwatch.traces.options import CsvOptions, add_csv_arguments, csv_options_from_args
from plugwatch.traces.timeparse import (
    UNIX,
    FloatArray,
    guess_format,
    parse_times,
    unix_seconds,
    zone,
)

__all__ = ["CsvOptions", "Trace", "add_csv_arguments", "csv_options_from_args", "read_trace"]

_TIME_BYTES = 40  # longest time text the fast path reads (ISO with microseconds and offset: 32)


@dataclass
class Trace:
    """A power trace: epoch seconds and watts as float64 arrays, plus the rows that were skipped."""

    path: Path
    ts: FloatArray
    power_w: FloatArray
    problems: list[str] = field(default_factory=list)  # "file:line: what is wrong", skipped rows

    def __len__(self) -> int:
        return int(self.ts.size)

    def readings(self) -> Iterator[Reading]:
        """The trace as Reading values (no relay or energy counter: a CSV carries neither)."""
        for ts, power in zip(self.ts.tolist(), self.power_w.tolist(), strict=True):
            yield Reading(ts=ts, power_w=power)


def read_trace(path: str | Path, options: CsvOptions | None = None, *, strict: bool = False
               ) -> Trace:
    """Read a CSV trace; bad rows are skipped and listed in `.problems` (raised when strict)."""
    path = Path(path)
    options = options or CsvOptions()
    layout = sniff_layout(path, options)
    time_format = options.time_format
    if time_format == "auto":
        guessed = guess_format(layout.first_time)
        if guessed is None:
            raise TraceError(
                f"{path}:{layout.first_data_line}: cannot tell the time format of "
                f"{layout.first_time!r}; pass --time-format unix, iso or a strftime pattern"
            )
        time_format = guessed
    tz = zone(options.tz)
    limits = DEFAULT_LIMITS if options.max_power_w is None else Limits(options.max_power_w)
    parsed = _read_fast(path, layout, time_format)
    if parsed is not None:
        times, power = parsed
        ts = _to_seconds(times, time_format, tz)
        # every power in 0..max passes check_power unchanged; any other row: the slow path
        plausible = bool(((power >= 0.0) & (power <= limits.max_power_w)).all())
        if plausible and np.isfinite(ts).all() and not _goes_back(ts):
            return Trace(path, ts, power)
    return _read_slow(path, layout, time_format, tz, strict, limits)


def _to_seconds(times: np.ndarray, time_format: str, tz: object) -> FloatArray:
    if time_format == UNIX:
        return unix_seconds(times.astype(np.float64))
    return parse_times(times, time_format, tz)  # type: ignore[arg-type]


def _goes_back(ts: FloatArray) -> bool:
    return bool(ts.size > 1 and (np.diff(ts) < 0).any())


def _read_fast(
    path: Path, layout: Layout, time_format: str
) -> tuple[np.ndarray, FloatArray] | None:
    """Both columns via numpy's C reader, or None when any row does not parse.

    Times are read as bytes (2-3x faster than str); a value that fills the field may have been
    cut, so then the line-by-line path reads the file instead.
    """
    time_dtype = "f8" if time_format == UNIX else f"S{_TIME_BYTES}"
    try:
        table = np.loadtxt(
            path, delimiter=layout.delimiter, usecols=(layout.time_index, layout.power_index),
            skiprows=layout.skip_lines, comments=None, encoding="utf-8-sig",
            dtype=[("t", time_dtype), ("p", "f8")], ndmin=1,
        )
    except (ValueError, IndexError, UnicodeError):
        return None
    times = np.ascontiguousarray(table["t"])
    if times.dtype.kind == "S" and times.size:
        last_byte = times.view(np.uint8).reshape(times.size, _TIME_BYTES)[:, -1]
        if last_byte.any():
            return None
    return times, np.ascontiguousarray(table["p"])


def _read_slow(
    path: Path, layout: Layout, time_format: str, tz: object, strict: bool, limits: Limits,
) -> Trace:
    """Line by line, so that every bad row is named by its line number. Powers go through
    sources.validate.check_power, the rule live readings follow."""
    problems: list[tuple[int, str]] = []
    line_nos: list[int] = []
    times: list[str] = []
    powers: list[float] = []
    need = max(layout.time_index, layout.power_index) + 1

    def bad(line_no: int, what: str) -> None:
        problems.append((line_no, f"{path}:{line_no}: {what}"))

    with path.open(encoding="utf-8-sig", errors="replace", newline=None) as handle:
        for line_no, line in enumerate(handle, start=1):
            if line_no <= layout.skip_lines or not line.strip():
                continue
            cells = line.rstrip("\r\n").split(layout.delimiter)
            if len(cells) < need:
                bad(line_no, f"{len(cells)} column(s), expected at least {need}")
                continue
            text = cells[layout.power_index].strip()
            try:
                power = float(text)
            except ValueError:
                bad(line_no, f"power {text!r} is not a number")
                continue
            try:
                power = check_power(power, limits)
            except ValueError as exc:
                bad(line_no, str(exc))
                continue
            line_nos.append(line_no)
            times.append(cells[layout.time_index].strip())
            powers.append(power)
    if time_format == UNIX:
        raw = np.array([_float_or_nan(t) for t in times], dtype=np.float64)
        ts = unix_seconds(raw)
    else:
        ts = parse_times(np.array(times, dtype=str), time_format, tz)  # type: ignore[arg-type]
    keep = np.ones(ts.size, dtype=bool)
    latest = -np.inf
    for i, value in enumerate(ts.tolist()):
        if not np.isfinite(value):
            bad(line_nos[i], f"time {times[i]!r} does not match --time-format {time_format}")
            keep[i] = False
        elif value < latest:
            bad(line_nos[i], f"time {times[i]!r} goes backwards (earlier than the row before)")
            keep[i] = False
        else:
            latest = value
    messages = [message for _, message in sorted(problems)]
    if strict and messages:
        raise TraceError(f"{messages[0]} (drop --strict to skip bad rows)")
    if not keep.any():
        first = messages[0] if messages else "the file has no data rows"
        raise TraceError(f"{path}: no readable rows; first problem: {first}")
    return Trace(path, ts[keep], np.array(powers)[keep], messages)


def _float_or_nan(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return float("nan")

"""Vectorised parsing of trace timestamps: unix seconds, ISO 8601 and fixed strftime patterns.

Rows that fit a fixed-width layout are parsed with numpy digit arithmetic (millions per second);
the rest fall back to `datetime` one by one. Naive times are read in the given IANA time zone.
Unparsable values come back as NaN; the caller reports them with their line numbers.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import numpy.typing as npt

from plugwatch.errors import TraceError

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

ISO = "iso"
UNIX = "unix"
# strftime fields the fast path understands, with their width in characters
_WIDTH = {"%Y": 4, "%m": 2, "%d": 2, "%H": 2, "%M": 2, "%S": 2, "%y": 2}
# `--time-format auto` tries these on the first row, in this order (day before month, as in Europe)
GUESSES = (ISO, "%d/%m/%Y %H:%M:%S", "%d.%m.%Y %H:%M:%S", "%Y/%m/%d %H:%M:%S", "%d/%m/%Y %H:%M")


def zone(name: str | None) -> tzinfo:
    """The time zone called `name` (IANA, e.g. Europe/Berlin); UTC when None or empty."""
    if not name or name.upper() == "UTC":
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise TraceError(
            f"unknown time zone {name!r}: use an IANA name such as Europe/Berlin or UTC"
        ) from exc


def parse_one(text: str, time_format: str, tz: tzinfo) -> float | None:
    """One timestamp as epoch seconds, or None when it does not fit `time_format`."""
    text = text.strip()
    try:
        if time_format == UNIX:
            return float(text)  # a column of milliseconds is scaled by unix_seconds()
        if time_format == ISO:
            dt = datetime.fromisoformat(text)
        else:
            dt = datetime.strptime(text, time_format)
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=tz)
    return dt.timestamp()


def guess_format(text: str) -> str | None:
    """The first of unix/ISO/GUESSES that reads `text`, or None."""
    if parse_one(text, UNIX, UTC) is not None:
        return UNIX
    for fmt in GUESSES:
        if parse_one(text, fmt, UTC) is not None:
            return fmt
    return None


def _layout(time_format: str) -> tuple[list[tuple[str, int]], list[tuple[int, bytes]], int] | None:
    """Field positions, literal positions and total width of a fixed-width pattern, or None."""
    pattern = "%Y-%m-%d %H:%M:%S" if time_format == ISO else time_format
    fields: list[tuple[str, int]] = []
    literals: list[tuple[int, bytes]] = []
    pos = i = 0
    while i < len(pattern):
        if pattern[i] == "%":
            code = pattern[i : i + 2]
            if code not in _WIDTH:
                return None
            fields.append((code, pos))
            pos += _WIDTH[code]
            i += 2
        else:
            allowed = b" T" if time_format == ISO and pattern[i] == " " else pattern[i].encode()
            if len(pattern[i].encode()) != 1:
                return None
            literals.append((pos, allowed))
            pos += 1
            i += 1
    return fields, literals, pos


def _days_from_civil(y: IntArray, m: IntArray, d: IntArray) -> IntArray:
    """Days since 1970-01-01 of proleptic Gregorian dates (H. Hinnant's algorithm, vectorised)."""
    y = y - (m <= 2)
    era = np.floor_divide(y, 400)
    yoe = y - era * 400
    doy = (153 * ((m + 9) % 12) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def _fast(values: npt.NDArray[Any], time_format: str) -> FloatArray | None:
    """Naive epoch seconds of fixed-width values (NaN where a row does not fit), or None."""
    layout = _layout(time_format)
    if layout is None or values.size == 0:
        return None
    fields, literals, width = layout
    try:
        raw = values.astype(f"S{width + 1}")
    except UnicodeEncodeError:
        return None
    chars = raw.view(np.uint8).reshape(values.size, width + 1)
    ok = chars[:, width] == 0  # exactly `width` characters long
    all_digits = chars[:, :width].astype(np.int16) - 48  # literals too; only fields are read
    parts: dict[str, IntArray] = {}
    for code, start in fields:
        digits = all_digits[:, start : start + _WIDTH[code]]
        ok &= ((digits >= 0) & (digits <= 9)).all(axis=1)
        value = digits[:, 0].astype(np.int64)
        for k in range(1, digits.shape[1]):
            value = value * 10 + digits[:, k]
        parts[code] = value
    for pos, allowed in literals:
        ok &= np.isin(chars[:, pos], np.frombuffer(allowed, dtype=np.uint8))
    n = values.size
    if "%Y" in parts:
        year = parts["%Y"]
    elif "%y" in parts:  # strptime's pivot: 69-99 are 19xx, 00-68 are 20xx
        year = np.where(parts["%y"] >= 69, 1900, 2000) + parts["%y"]
    else:
        year = np.full(n, 1900, dtype=np.int64)
    month = parts.get("%m", np.ones(n, np.int64))
    day = parts.get("%d", np.ones(n, np.int64))
    hour, minute, second = (parts.get(c, np.zeros(n, np.int64)) for c in ("%H", "%M", "%S"))
    ok &= (month >= 1) & (month <= 12)
    first_day, days_in_month = _month_days(year * 12 + np.where(ok, month, 1) - 1, ok)
    ok &= (day >= 1) & (day <= days_in_month) & (hour <= 23) & (minute <= 59) & (second <= 60)
    seconds = (first_day + day - 1) * 86400 + hour * 3600 + minute * 60 + second
    return np.where(ok, seconds.astype(np.float64), np.nan)


def _month_days(months: IntArray, ok: npt.NDArray[np.bool_]) -> tuple[IntArray, IntArray]:
    """Days since 1970-01-01 of the first of each month (year * 12 + month - 1) and the days in
    it: a trace spans few months, so the calendar is worked out once per month in its range
    (at most 120,000: years have 4 digits), not once per row; garbage where not `ok`."""
    lo, hi = (int(months[ok].min()), int(months[ok].max())) if ok.any() else (0, 0)
    span = np.arange(lo, hi + 2, dtype=np.int64)
    starts = _days_from_civil(span // 12, span % 12 + 1, np.ones(span.size, np.int64))
    k = np.clip(months - lo, 0, hi - lo)
    return starts[k], starts[k + 1] - starts[k]


def _localise(naive: FloatArray, tz: tzinfo) -> FloatArray:
    """Shift naive local epoch seconds to UTC epoch seconds, one offset look-up per hour run."""
    if tz is UTC or naive.size == 0:
        return naive
    hours = np.floor(np.nan_to_num(naive) / 3600.0)
    starts = np.flatnonzero(np.concatenate(([True], hours[1:] != hours[:-1])))
    offsets = np.empty(starts.size)
    for j, i in enumerate(starts):
        local = datetime(1970, 1, 1) + timedelta(seconds=float(hours[i]) * 3600.0)
        offsets[j] = local.replace(tzinfo=tz).utcoffset().total_seconds()  # type: ignore[union-attr]
    run_lengths = np.diff(np.append(starts, naive.size))
    return naive - np.repeat(offsets, run_lengths)


def parse_times(values: npt.NDArray[Any], time_format: str, tz: tzinfo) -> FloatArray:
    """Epoch seconds of each value (NaN where unparsable); fast path first, then `datetime`."""
    fast = _fast(values, time_format)
    result = np.full(values.size, np.nan) if fast is None else _localise(fast, tz)
    as_bytes = values.dtype.kind == "S"
    for i in np.flatnonzero(np.isnan(result)):
        value = values[i]
        text = value.decode("utf-8", "replace") if as_bytes else str(value)
        parsed = parse_one(text, time_format, tz)
        if parsed is not None:
            result[i] = parsed
    return result


def unix_seconds(values: FloatArray) -> FloatArray:
    """Unix times as seconds; a column of millisecond values (above 1e11) is divided by 1000."""
    finite = values[np.isfinite(values)]
    if finite.size and float(np.max(finite)) > 1e11:
        return values / 1000.0
    return values

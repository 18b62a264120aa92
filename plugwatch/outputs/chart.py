"""The status page's chart: a day of one plug's power with its state bands, as inline SVG.

Pure: arrays and bands in, SVG text out (no clock, no I/O). The power is drawn as the highest
value per pixel column, so a short spike stays visible however many readings a column holds;
columns without readings leave a gap. Every text is escaped.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from html import escape
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

WIDTH, HEIGHT = 720, 180
LEFT, RIGHT, TOP, BOTTOM = 48, 8, 8, 22  # margins for the axes' labels
Band = tuple[float, float, str]  # (start, end, state)


def nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 x 10^n that is >= value (an axis maximum); 1 for <= 0."""
    if not value > 0 or not math.isfinite(value):
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if step * power >= value:
            return step * power
    return 10 * power


def column_maxima(
    ts: npt.NDArray[np.float64], watts: npt.NDArray[np.float64], start: float, end: float,
    columns: int,
) -> npt.NDArray[np.float64]:
    """The highest power in each of `columns` equal slices of [start, end); NaN where none."""
    out = np.full(columns, -np.inf)
    inside = (ts >= start) & (ts < end) & np.isfinite(watts)
    if inside.any():
        index = ((ts[inside] - start) / (end - start) * columns).astype(np.int64)
        np.maximum.at(out, np.clip(index, 0, columns - 1), watts[inside])
    out[np.isinf(out)] = np.nan
    return out


def power_chart(
    plug: str, ts: npt.NDArray[np.float64], watts: npt.NDArray[np.float64],
    bands: Sequence[Band], start: float, end: float, zone: str = "UTC",
) -> str:
    """An <svg> of `plug`'s power between start and end (epoch s) over its state bands."""
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    span = end - start

    def x(t: float) -> float:
        return LEFT + (min(max(t, start), end) - start) / span * plot_w

    peaks = column_maxima(ts, watts, start, end, plot_w // 2)
    top = nice_ceiling(float(np.nanmax(peaks)) if np.isfinite(peaks).any() else 0.0)
    parts = [f'<svg class="chart" role="img" viewBox="0 0 {WIDTH} {HEIGHT}" '
             f'width="{WIDTH}" height="{HEIGHT}" aria-label="{escape(plug)}: power over the '
             f'last 24 hours with its states"><title>{escape(plug)}: power, last 24 h</title>']
    for b_start, b_end, state in bands:
        if b_end <= start or b_start >= end:
            continue
        x0, x1 = x(b_start), x(b_end)
        parts.append(f'<rect class="band {escape(state)}" x="{x0:.1f}" y="{TOP}" '
                     f'width="{max(x1 - x0, 0.5):.1f}" height="{plot_h}">'
                     f'<title>{escape(state)} {_clock(b_start, zone)}-{_clock(b_end, zone)}'
                     f'</title></rect>')
    parts.append(_power_path(peaks, top, plot_w, plot_h))
    parts.append(f'<line class="axis" x1="{LEFT}" y1="{TOP + plot_h}" x2="{LEFT + plot_w}" '
                 f'y2="{TOP + plot_h}"/><text class="label" x="{LEFT - 4}" y="{TOP + 10}" '
                 f'text-anchor="end">{_watts(top)}</text><text class="label" x="{LEFT - 4}" '
                 f'y="{TOP + plot_h}" text-anchor="end">0 W</text>')
    step = 3 * 3600
    first = math.ceil(start / step) * step
    for tick in np.arange(first, end, step):
        parts.append(f'<text class="label" x="{x(float(tick)):.1f}" y="{HEIGHT - 6}" '
                     f'text-anchor="middle">{_clock(float(tick), zone)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _power_path(peaks: npt.NDArray[np.float64], top: float, plot_w: int, plot_h: int) -> str:
    """A filled area under the column maxima, broken where a column has no reading."""
    col_w = plot_w / len(peaks)
    base = TOP + plot_h
    d, run = [], False
    for i, value in enumerate(peaks):
        if math.isnan(value):
            if run:
                d.append(f"L{LEFT + i * col_w:.1f},{base}Z")
            run = False
            continue
        y = base - min(value / top, 1.0) * plot_h
        if not run:
            d.append(f"M{LEFT + i * col_w:.1f},{base}")
            run = True
        d.append(f"L{LEFT + i * col_w:.1f},{y:.1f}L{LEFT + (i + 1) * col_w:.1f},{y:.1f}")
    if run:
        d.append(f"L{LEFT + plot_w:.1f},{base}Z")
    return f'<path class="power" d="{"".join(d)}"/>' if d else ""


def _watts(value: float) -> str:
    return f"{value / 1000:g} kW" if value >= 1000 else f"{value:g} W"


def _clock(ts: float, zone: str) -> str:
    return datetime.fromtimestamp(ts, ZoneInfo(zone)).strftime("%H:%M")


def state_bands(
    transitions: Sequence[tuple[float, str, str]], current: str, start: float, end: float,
    first_seen: float | None,
) -> list[Band]:
    """Bands [(start, end, state)] from transitions [(ts, from_state, to_state)] (oldest first)
    within [start, end]; before the first transition the plug was in its from_state; nothing is
    drawn before `first_seen` (the plug's first reading or transition)."""
    begin = max(start, first_seen) if first_seen is not None else start
    bands: list[Band] = []
    at, state = begin, transitions[0][1] if transitions else current
    for ts, _from, to in transitions:
        if ts > at:
            bands.append((at, ts, state))
        at, state = max(at, ts), to
    if end > at:
        bands.append((at, end, state))
    return bands

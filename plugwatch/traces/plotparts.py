"""The pieces of a power plot that a person must be able to read without help.

Pure helpers (numbers in, numbers out) and small drawing steps used by plugwatch.traces.plot:
where the readings have gaps, which state holds when (shaded from the first sample, never across
a gap), run labels that do not overlap each other or the legend, a run table when they would,
and a time axis that always says the date.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, tzinfo
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.text import Text
from matplotlib.transforms import Bbox

from plugwatch.formatting import format_duration, format_energy, plural
from plugwatch.model import RunSummary, State, Transition

DAY_S = 86400.0
Span = tuple[float, float]


def gaps(ts: np.ndarray, gap_s: float) -> list[Span]:
    """(last reading before, first reading after) of every pause longer than `gap_s`."""
    if len(ts) < 2:
        return []
    at = np.flatnonzero(np.diff(ts) > gap_s)
    return [(float(ts[i]), float(ts[i + 1])) for i in at]


def state_spans(
    ts: np.ndarray, transitions: Sequence[Transition], holes: Sequence[Span] = (),
) -> list[tuple[State, float, float]]:
    """(state, start, end) of every spell from the first sample to the last, cut at the gaps.

    The first decided state holds from the first sample (the detector dates it there); each
    later transition starts a spell at its own time.
    """
    if len(ts) == 0 or not transitions:
        return []
    first, last = float(ts[0]), float(ts[-1])
    ordered = sorted(transitions, key=lambda t: t.ts)
    starts = [min(first, ordered[0].ts)] + [t.ts for t in ordered[1:]]
    stops = [t.ts for t in ordered[1:]] + [last]
    spans = []
    for t, start, stop in zip(ordered, starts, stops, strict=True):
        for a, b in _cut(start, stop, holes):
            spans.append((t.to_state, a, b))
    return spans


def _cut(start: float, stop: float, holes: Sequence[Span]) -> list[Span]:
    """[start, stop] without the holes that fall inside it."""
    pieces, at = [], start
    for a, b in holes:
        if b <= at or a >= stop:
            continue
        if a > at:
            pieces.append((at, a))
        at = max(at, b)
    if stop > at:
        pieces.append((at, stop))
    return pieces


def broken_at_gaps(ts: np.ndarray, values: np.ndarray, gap_s: float) -> tuple[np.ndarray, ...]:
    """(ts, values) with a NaN inserted inside every gap, so a line drawn through them breaks."""
    at = np.flatnonzero(np.diff(ts) > gap_s) + 1
    if at.size == 0:
        return ts, values
    mid = (ts[at - 1] + ts[at]) / 2
    return np.insert(ts.astype(float), at, mid), np.insert(values.astype(float), at, np.nan)


def run_text(run: RunSummary) -> str:
    """The label of a run: its duration (as replay says it) and its energy in sensible units."""
    what = f"{format_duration(run.duration_s)}" + (" so far" if run.open else "")
    unseen = f"\n{format_duration(run.unobserved_s)} unobserved" if run.unobserved_s else ""
    return f"{what}\n{format_energy(run.energy_wh)}{unseen}"


def place_labels(
    ax: Axes, runs: Sequence[RunSummary], texts: Sequence[str], renderer: Any,
    avoid: Sequence[Bbox] = (),
) -> tuple[list[Text], list[int]]:
    """Label runs above their peaks, largest energy first, dropping any label that would overlap
    one already placed, a box in `avoid` (the legend) or the axes' edge. Returns the labels
    drawn and the indexes of the runs left without one."""
    placed: list[Text] = []
    boxes = list(avoid)
    frame = ax.get_window_extent(renderer)
    dropped = []
    for i in sorted(range(len(runs)), key=lambda k: -runs[k].energy_wh):
        run = runs[i]
        label = ax.annotate(texts[i], ((run.start + run.end) / 2 / DAY_S, max(run.peak_w, 1.0)),
                            xytext=(0, 3), textcoords="offset points", ha="center", va="bottom",
                            fontsize=8, annotation_clip=False)
        label.set_in_layout(False)
        box = label.get_window_extent(renderer).expanded(1.05, 1.1)
        inside = frame.x0 <= box.x0 and box.x1 <= frame.x1 and box.y1 <= frame.y1
        if not inside or any(box.overlaps(other) for other in boxes):
            label.remove()
            dropped.append(i)
            continue
        placed.append(label)
        boxes.append(box)
    return placed, sorted(dropped)


def table_runs(runs: Sequence[RunSummary], limit: int) -> list[RunSummary]:
    """The runs the table lists: the `limit` largest by energy, in time order (#1, #2 ...)."""
    return sorted(sorted(runs, key=lambda r: -r.energy_wh)[:limit], key=lambda r: r.start)


def table_rows(listed: Sequence[RunSummary], runs: Sequence[RunSummary], tz: tzinfo
               ) -> list[list[str]]:
    """Rows of the run table: one per listed run, then the total of all runs."""
    rows = [[f"#{n}", _day_time(run.start, tz), _day_time(run.end, tz),
             format_duration(run.duration_s) + (" so far" if run.open else ""),
             format_energy(run.energy_wh), f"{run.peak_w:.0f} W"]
            for n, run in enumerate(listed, 1)]
    rows.append(["", f"all {plural(len(runs), 'run')} together", "",
                 format_duration(sum(r.duration_s for r in runs)),
                 format_energy(sum(r.energy_wh for r in runs)), ""])
    return rows


def _day_time(ts: float, tz: tzinfo) -> str:
    return datetime.fromtimestamp(ts, tz).strftime("%d %b %H:%M")


def draw_table(ax: Axes, rows: list[list[str]]) -> Any:
    """The run table in its own axes (under the chart)."""
    ax.axis("off")
    header = ["", "start", "end", "duration", "energy", "peak"]
    ax.set_title(f"the {plural(len(rows) - 1, 'largest run')} by energy, numbered on the chart",
                 fontsize=8, loc="left")
    table = ax.table(cellText=rows, colLabels=header, loc="upper center", cellLoc="left",
                     colLoc="left", edges="horizontal",
                     colWidths=[0.06, 0.2, 0.2, 0.2, 0.17, 0.17])
    table.auto_set_font_size(False)
    table.set_fontsize(8)
    table.scale(1.0, 1.0)
    return table


def time_axis(ax: Axes, first: float, last: float, tz: tzinfo, zone_name: str) -> None:
    """The span of the readings, ticks that name the day at each midnight ("09 Jan", never a
    bare "01-08 00"), and the dates spanned in the axis label."""
    ax.xaxis_date(tz=tz)
    pad = max((last - first) * 0.01, 1.0)
    ax.set_xlim((first - pad) / DAY_S, (last + pad) / DAY_S)
    locator = AutoDateLocator(tz=tz, minticks=4, maxticks=10)
    formatter = ConciseDateFormatter(
        locator, tz=tz, show_offset=False,
        formats=["%Y", "%d %b", "%d %b", "%H:%M", "%H:%M", "%H:%M:%S"],
        zero_formats=["", "%Y", "%d %b %Y", "%d %b", "%d %b", "%H:%M"],
    )
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(formatter)
    ax.set_xlabel(f"time ({zone_name}), {date_span(first, last, tz)}")


def power_ticks(axis: Any) -> None:
    """Power ticks as plain watts ("0.1", "1", "100", "10 000"), not powers of ten."""
    from matplotlib.ticker import FuncFormatter

    def watts(value: float, _pos: object) -> str:
        return f"{value:,.0f}".replace(",", "\u2009") if value >= 1 else f"{value:g}"

    axis.set_major_formatter(FuncFormatter(watts))


def date_span(first: float, last: float, tz: tzinfo) -> str:
    """ "Thu 08 Jan 2015", or "Thu 08 Jan 2015 to Sat 10 Jan 2015"."""
    a, b = (datetime.fromtimestamp(t, tz).strftime("%a %d %b %Y") for t in (first, last))
    return a if a == b else f"{a} to {b}"

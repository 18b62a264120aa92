"""Plots for tuning: power over time with states and runs, and the power histogram.

Draws with matplotlib's Agg canvas directly (no pyplot, no global backend), so it works headless.
The file's extension picks the format (.png, .svg, .pdf); anything else is refused in one line.
What a person reads is checked by tests on the figure itself (tests/test_plot_reading.py): every
state shaded from the first sample, gaps left as gaps, run labels that never overlap (thinned, or
moved into a table under the chart), energies in Wh or kWh, a time axis that says the date.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, tzinfo
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.text import Text

from plugwatch.detect.calibrate import Histogram, Proposal, off_text, smoothed
from plugwatch.formatting import format_duration
from plugwatch.model import DetectorSettings, Event, RunSummary, State, Transition
from plugwatch.traces import plotparts as parts
from plugwatch.traces.plotfile import output_format

DPI = 100
DAY_S = parts.DAY_S
MAX_INLINE_RUNS = 12  # more runs than this: a table under the chart instead of labels
ROW_PX = 17  # height of one table row at 8 pt
STATE_COLOURS = {
    State.OFF: "#9e9e9e",
    State.STANDBY: "#64b5f6",
    State.ON: "#ffb74d",
    State.UNREACHABLE: "#e57373",
}


@dataclass
class Drawn:
    """What a plot shows, for callers and tests: the figure and what is drawn on it."""

    figure: Figure
    axes: Axes
    legend: list[str]
    format: str
    spans: list[tuple[State, float, float]] = field(default_factory=list)  # shaded states
    gaps: list[tuple[float, float]] = field(default_factory=list)  # no readings here
    run_labels: list[Text] = field(default_factory=list)  # labels on the chart
    table: list[list[str]] = field(default_factory=list)  # rows under the chart ([]: none)


def plot_power(
    path: Path,
    ts: np.ndarray,
    power_w: np.ndarray,
    settings: DetectorSettings,
    events: Sequence[Event] = (),
    *,
    title: str = "",
    note: str = "",
    width: int = 1200,
    height: int = 600,
    tz: tzinfo = UTC,
    zone_name: str = "UTC",
) -> Drawn:
    """Readings as dots (symlog scale), the detector's moving average, both thresholds with
    their bands, each state's spells, gaps, and the runs with duration and energy; saved to
    `path` in the format of its extension. `note` is a second title line (the settings)."""
    fmt = output_format(path)
    runs = [e for e in events if isinstance(e, RunSummary)]
    transitions = [e for e in events if isinstance(e, Transition)]
    args = (ts, power_w, settings, runs, transitions, title, note, width, height, tz, zone_name)
    drawn = _power_figure(*args, table=len(runs) > MAX_INLINE_RUNS)
    if not drawn.table and len(drawn.run_labels) < len(runs):  # some labels would overlap
        drawn = _power_figure(*args, table=True)
    drawn.format = fmt
    drawn.figure.savefig(path, dpi=DPI, format=fmt)
    return drawn


def _power_figure(
    ts: np.ndarray, power_w: np.ndarray, settings: DetectorSettings, runs: list[RunSummary],
    transitions: list[Transition], title: str, note: str, width: int, height: int,
    tz: tzinfo, zone_name: str, *, table: bool,
) -> Drawn:
    fig = Figure(figsize=(width / DPI, height / DPI), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    if table:
        grid = fig.add_gridspec(2, 1, height_ratios=[2.4, 1])
        ax, table_ax = fig.add_subplot(grid[0]), fig.add_subplot(grid[1])
    else:
        ax, table_ax = fig.add_subplot(), None
    holes = parts.gaps(ts, settings.gap_s)
    spans = parts.state_spans(ts, transitions, holes)
    _state_bands(ax, spans)
    for i, (a, b) in enumerate(holes):
        ax.axvspan(a / DAY_S, b / DAY_S, facecolor="none", edgecolor="#bdbdbd", hatch="///",
                   lw=0, label=f"no readings (gap over {format_duration(settings.gap_s)})"
                   if i == 0 else None)
    ax.plot(ts / DAY_S, power_w, ".", ms=1.5, color="#455a64", label="reading", rasterized=True)
    line_ts, line_w = parts.broken_at_gaps(ts, smoothed(ts, power_w, settings.window_s,
                                                        settings.gap_s), settings.gap_s)
    ax.plot(line_ts / DAY_S, line_w, "-", lw=0.8, color="#1b5e20",
            label=f"average over {format_duration(settings.window_s)}")
    _thresholds(ax, settings, horizontal=True)
    parts.time_axis(ax, float(ts[0]), float(ts[-1]), tz, zone_name)
    ax.set_yscale("symlog", linthresh=1.0)
    ax.set_ylim(0, max(float(np.nanmax(power_w, initial=1.0)) * 8, 10.0))
    parts.power_ticks(ax.yaxis)
    ax.set_ylabel("power (W; log scale above 1 W)")
    ax.set_title(f"{title}\n{note}" if note else title, fontsize=10)
    legend = fig.legend(loc="outside upper center", ncols=4, fontsize=8, frameon=False)
    rows: list[list[str]] = []
    labelled, texts = runs, [parts.run_text(r) for r in runs]
    if table_ax is not None:  # the largest runs numbered on the chart, listed under it
        fig.draw_without_rendering()
        room = int(table_ax.get_window_extent().height // ROW_PX) - 2  # header and total
        labelled = parts.table_runs(runs, max(1, room))
        texts = [f"#{n}" for n in range(1, len(labelled) + 1)]
        rows = parts.table_rows(labelled, runs, tz)
        parts.draw_table(table_ax, rows)
    fig.draw_without_rendering()  # the final layout: label boxes are measured in it
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    placed, _ = parts.place_labels(ax, labelled, texts, renderer,
                                   avoid=[legend.get_window_extent(renderer)])
    return Drawn(fig, ax, [t.get_text() for t in legend.get_texts()], "png", spans, holes,
                 placed, rows)


def plot_histogram(
    path: Path,
    hist: Histogram,
    proposal: Proposal,
    *,
    title: str = "",
    width: int = 1200,
    height: int = 600,
) -> Drawn:
    """The histogram of log power with the found levels and proposed thresholds, saved to `path`
    in the format of its extension."""
    fmt = output_format(path)
    fig, ax = _figure(width, height)
    edges = hist.edges_w
    ax.stairs(hist.density * 100, edges, fill=True, color="#90a4ae", label="share of time")
    for i, mode in enumerate(proposal.standby_modes + proposal.active_modes):
        label = "level found" if i == 0 else None
        ax.axvline(mode.power_w, color="#37474f", lw=0.6, ls=":", label=label)
    _thresholds(ax, proposal.settings, horizontal=False)
    ax.set_xscale("log")
    ax.set_xlim(0.1, float(edges[-1]))
    parts.power_ticks(ax.xaxis)
    ax.set_xlabel(f"power (W); not shown: {off_text(proposal.off_share)}")
    ax.set_ylabel("% of time")
    ax.set_title(title)
    legend = ax.legend(loc="upper right", fontsize=8)
    fig.savefig(path, dpi=DPI, format=fmt)
    return Drawn(fig, ax, [t.get_text() for t in legend.get_texts()], fmt)


def _figure(width: int, height: int) -> tuple[Figure, Axes]:
    fig = Figure(figsize=(width / DPI, height / DPI), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot()


def _thresholds(ax: Axes, s: DetectorSettings, *, horizontal: bool) -> None:
    """Both thresholds as lines with their hysteresis bands shaded; the legend names them."""
    for name, level, band, colour in (
        ("standby", s.standby_w, s.standby_band_w, "#1565c0"),
        ("on", s.on_w, s.on_band_w, "#e65100"),
    ):
        label = f"{name} threshold {level:g} W ± {band:g}"
        if horizontal:
            ax.axhline(level, color=colour, lw=1, ls="--", label=label)
            ax.axhspan(level - band, level + band, color=colour, alpha=0.12)
        else:
            ax.axvline(level, color=colour, lw=1, ls="--", label=label)
            ax.axvspan(level - band, level + band, color=colour, alpha=0.12)


def _state_bands(ax: Axes, spans: Sequence[tuple[State, float, float]]) -> None:
    """Shade each state's spells in its colour, one legend entry per state shown."""
    labelled: set[State] = set()
    for state, start, stop in spans:
        colour = STATE_COLOURS.get(state)
        if colour is None:
            continue
        label = None if state in labelled else f"state {state.value}"
        labelled.add(state)
        ax.axvspan(start / DAY_S, stop / DAY_S, color=colour, alpha=0.18, lw=0, label=label)

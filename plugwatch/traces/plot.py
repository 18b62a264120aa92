"""PNG plots for tuning: power over time with states and runs, and the power histogram.

Draws with matplotlib's Agg canvas directly (no pyplot, no global backend), so it works headless.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.legend import Legend

from plugwatch.detect.calibrate import Histogram, Proposal, off_text, smoothed
from plugwatch.formatting import format_duration
from plugwatch.model import DetectorSettings, Event, RunSummary, State, Transition

DPI = 100
DAY_S = 86400.0
STATE_COLOURS = {
    State.OFF: "#9e9e9e",
    State.STANDBY: "#64b5f6",
    State.ON: "#ffb74d",
    State.UNREACHABLE: "#e57373",
}


def plot_power(
    path: Path,
    ts: np.ndarray,
    power_w: np.ndarray,
    settings: DetectorSettings,
    events: Sequence[Event] = (),
    *,
    title: str = "",
    width: int = 1200,
    height: int = 600,
) -> list[str]:
    """Power as dots on a symlog scale, the moving average, thresholds with bands, states, runs.

    Returns the legend's labels (what a reader of the PNG sees named).
    """
    fig, ax = _figure(width, height)
    when = ts / DAY_S  # matplotlib dates: days since 1970-01-01 UTC
    ax.plot(when, power_w, ".", ms=1.5, color="#455a64", label="reading", rasterized=True)
    smooth = smoothed(ts, power_w, settings.window_s, settings.gap_s)
    ax.plot(when, smooth, "-", lw=0.8, color="#1b5e20",
            label=f"average over {format_duration(settings.window_s)}")
    _thresholds(ax, settings, horizontal=True)
    _state_bands(ax, ts, [e for e in events if isinstance(e, Transition)])
    for run in (e for e in events if isinstance(e, RunSummary)):
        mid = (run.start + run.end) / 2 / DAY_S
        ax.annotate(
            f"{format_duration(run.duration_s)}\n{run.energy_wh / 1000:.2f} kWh",
            (mid, run.peak_w),
            ha="center",
            va="bottom",
            fontsize=8,
        )
    ax.xaxis_date(tz="UTC")
    ax.set_yscale("symlog", linthresh=1.0)
    ax.set_ylim(0, max(float(power_w.max(initial=1.0)) * 3, 10.0))
    ax.set_ylabel("power (W, symlog)")
    ax.set_xlabel("time (UTC)")
    ax.set_title(title)
    return _save(fig, ax.legend(loc="upper left", fontsize=8, ncols=2), path)


def plot_histogram(
    path: Path,
    hist: Histogram,
    proposal: Proposal,
    *,
    title: str = "",
    width: int = 1200,
    height: int = 600,
) -> list[str]:
    """The histogram of log power with the found levels and proposed thresholds; legend labels."""
    fig, ax = _figure(width, height)
    edges = hist.edges_w
    ax.stairs(hist.density * 100, edges, fill=True, color="#90a4ae", label="share of time")
    for i, mode in enumerate(proposal.standby_modes + proposal.active_modes):
        label = "level found" if i == 0 else None
        ax.axvline(mode.power_w, color="#37474f", lw=0.6, ls=":", label=label)
    _thresholds(ax, proposal.settings, horizontal=False)
    ax.set_xscale("log")
    ax.set_xlim(0.1, float(edges[-1]))
    ax.set_xlabel(f"power (W); not shown: {off_text(proposal.off_share)}")
    ax.set_ylabel("% of time")
    ax.set_title(title)
    return _save(fig, ax.legend(loc="upper right", fontsize=8), path)


def _figure(width: int, height: int) -> tuple[Figure, Axes]:
    fig = Figure(figsize=(width / DPI, height / DPI), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot()


def _save(fig: Figure, legend: Legend, path: Path) -> list[str]:
    fig.savefig(path, dpi=DPI, format="png")
    return [text.get_text() for text in legend.get_texts()]


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


def _state_bands(ax: Axes, ts: np.ndarray, transitions: Sequence[Transition]) -> None:
    """Shade each state's spell in its colour, one legend entry per state shown."""
    if not transitions or len(ts) == 0:
        return
    stops = [t.ts for t in transitions[1:]] + [float(ts[-1])]
    labelled: set[State] = set()
    for t, stop in zip(transitions, stops, strict=True):
        colour = STATE_COLOURS.get(t.to_state)
        if colour is None:
            continue
        label = None if t.to_state in labelled else f"state {t.to_state.value}"
        labelled.add(t.to_state)
        ax.axvspan(t.ts / DAY_S, stop / DAY_S, color=colour, alpha=0.18, lw=0, label=label)

"""Propose detector settings from recorded power: modes of log power, thresholds in gaps, dwells.

PURE: numpy arrays in, a Proposal out. No I/O, no clock. `plugwatch calibrate` prints the result.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from plugwatch.formatting import format_duration, plural
from plugwatch.model import DetectorSettings, Event, RunSummary, State, Transition

OFF_MAX_W = 0.3  # at or below: the meter's zero (Kasa reads 0.0-0.2 W with nothing drawing)
STANDBY_MAX_W = 4.5  # standby levels sit below this (EU 1275/2008: 0.5-2 W, network standby more)
MAX_CYCLE_PAUSE_S = 40 * 60  # a longer quiet spell ends a cycle (a dishwasher dries <= ~30 min)
MIN_MODE_SHARE = 0.002  # a histogram peak holding less of the measured time is noise
MERGE_DIP = 0.7  # a dip must fall below this share of the lower peak to separate two levels
LOG_BIN = 0.02  # histogram bin width in decades of watts
LOG_LO, LOG_HI = -1.0, 4.5  # 0.1 W .. 31.6 kW
MIN_RATE_SPAN_S = 12 * 3600  # a per-day rate from less than this would be an extrapolation


@dataclass(frozen=True, slots=True)
class Mode:
    """One peak of the power distribution: its power and the share of measured time spent there."""

    power_w: float
    share: float


@dataclass(frozen=True, slots=True)
class Histogram:
    """Time-weighted histogram of log10(power) of the samples above OFF_MAX_W, lightly smoothed."""

    edges_w: np.ndarray  # bin edges in W (log-spaced)
    density: np.ndarray  # share of the total measured time per bin
    off_share: float  # share of time at or below OFF_MAX_W


@dataclass(slots=True)
class Proposal:
    """Proposed detector settings, the evidence behind them and the reasoning in plain lines."""

    settings: DetectorSettings
    off_share: float
    standby_modes: list[Mode]
    active_modes: list[Mode]
    pauses_s: list[float]  # quiet spells inside cycles, longest first
    reasons: list[str] = field(default_factory=list)

    def yaml_snippet(self) -> str:
        """The settings as plugwatch.yaml keys (under a plug or `defaults:`), ready to paste."""
        s = self.settings
        return (
            f"kind: {s.kind}\n"
            f"window: {_dur(s.window_s)}\n"
            f"gap: {_dur(s.gap_s)}\n"
            f"thresholds: {{standby: {_num(s.standby_w)}, on: {_num(s.on_w)}, "
            f"hysteresis: {{standby: {_num(s.standby_band_w)}, on: {_num(s.on_band_w)}}}}}\n"
            f"dwell: {{on: {_dur(s.dwell_on_s)}, standby: {_dur(s.dwell_standby_s)}, "
            f"off: {_dur(s.dwell_off_s)}}}\n"
        )

    def to_json(self) -> dict[str, Any]:
        """A JSON-able dict: settings, modes, pauses and the reasons."""
        s = self.settings
        return {
            "settings": {
                "kind": s.kind,
                "window_s": s.window_s,
                "standby_w": s.standby_w,
                "standby_band_w": s.standby_band_w,
                "on_w": s.on_w,
                "on_band_w": s.on_band_w,
                "dwell_on_s": s.dwell_on_s,
                "dwell_standby_s": s.dwell_standby_s,
                "dwell_off_s": s.dwell_off_s,
                "gap_s": s.gap_s,
            },
            "off_share": round(self.off_share, 4),
            "standby_modes": [_mode_json(m) for m in self.standby_modes],
            "active_modes": [_mode_json(m) for m in self.active_modes],
            "cycle_pauses_s": [round(p, 1) for p in self.pauses_s],
            "reasons": list(self.reasons),
        }


def time_weights(ts: np.ndarray, cap_s: float) -> np.ndarray:
    """Seconds each sample stands for (until the next one), capped so a gap does not count."""
    if len(ts) < 2:
        return np.ones(len(ts))
    dt = np.diff(ts, append=ts[-1] + np.median(np.diff(ts)))
    return np.clip(dt, 0.0, cap_s)


def histogram(ts: np.ndarray, power_w: np.ndarray, cap_s: float = 60.0) -> Histogram:
    """The time-weighted log-power histogram, smoothed with a small Gaussian kernel (a KDE)."""
    weights = time_weights(ts, cap_s)
    total = float(weights.sum()) or 1.0
    on = power_w > OFF_MAX_W
    edges = np.arange(LOG_LO, LOG_HI + LOG_BIN / 2, LOG_BIN)
    logp = np.log10(np.clip(power_w[on], 10**LOG_LO, 10**LOG_HI))
    counts, _ = np.histogram(logp, bins=edges, weights=weights[on])
    kernel = np.exp(-0.5 * (np.arange(-4, 5) / 1.0) ** 2)
    density = np.convolve(counts, kernel / kernel.sum(), mode="same") / total
    off_share = float(weights[~on].sum()) / total
    return Histogram(edges_w=10**edges, density=density, off_share=off_share)


def find_modes(hist: Histogram) -> list[Mode]:
    """The peaks of the smoothed histogram, each owning the time up to the valleys beside it.

    Neighbouring peaks without a real dip between them (valley above MERGE_DIP of the lower peak)
    are one level; levels holding less than MIN_MODE_SHARE of the time are noise and dropped.
    """
    d = hist.density
    centres = np.sqrt(hist.edges_w[:-1] * hist.edges_w[1:])
    inner = (d[1:-1] > 0) & (d[1:-1] >= d[:-2]) & (d[1:-1] > d[2:])
    peaks = [int(i) + 1 for i in np.flatnonzero(inner)]
    merged: list[int] = []
    for i in peaks:
        if merged:
            j = merged[-1]
            valley = d[j : i + 1].min()
            if valley > MERGE_DIP * min(d[i], d[j]):
                merged[-1] = i if d[i] > d[j] else j
                continue
        merged.append(i)
    cuts = [0]
    for j, i in itertools.pairwise(merged):
        cuts.append(j + int(np.argmin(d[j : i + 1])))
    cuts.append(len(d))
    modes = []
    for k, i in enumerate(merged):
        share = float(d[cuts[k] : cuts[k + 1]].sum())
        if share >= MIN_MODE_SHARE:
            modes.append(Mode(power_w=float(centres[i]), share=share))
    return modes


def _valley_w(hist: Histogram, low_w: float, high_w: float) -> float:
    """The power of least density strictly between two levels (geometric middle on ties)."""
    centres = np.sqrt(hist.edges_w[:-1] * hist.edges_w[1:])
    inside = np.where((centres > low_w * 1.2) & (centres < high_w / 1.2))[0]
    if len(inside) == 0:
        return math.sqrt(low_w * high_w)
    least = hist.density[inside].min()
    flat = inside[hist.density[inside] <= least + 1e-12]
    return float(np.sqrt(centres[flat[0]] * centres[flat[-1]]))


def propose(ts: np.ndarray, power_w: np.ndarray, window_s: float = 20.0) -> Proposal:
    """Propose settings for one plug's trace (arrays of epoch seconds and watts, time-ordered)."""
    step = float(np.median(np.diff(ts))) if len(ts) > 1 else 5.0
    gap_s = max(60.0, 10 * step)
    hist = histogram(ts, power_w, cap_s=gap_s)
    modes = find_modes(hist)
    standby = [m for m in modes if m.power_w < STANDBY_MAX_W]
    active = [m for m in modes if m.power_w >= STANDBY_MAX_W]
    reasons = [off_text(hist.off_share)]
    if standby:
        reasons.append("standby levels: " + _modes_text(standby))
        standby_w = max(OFF_MAX_W, round(standby[0].power_w / 4, 2))
    else:
        reasons.append(f"no standby level below {STANDBY_MAX_W:g} W: the plug is off or active")
        standby_w = 0.5
    standby_band = round(standby_w * 0.4, 2)
    floor_w = max(standby[-1].power_w if standby else 0.0, (standby_w + standby_band) * 1.5)
    if active:
        reasons.append("active levels: " + _modes_text(active))
        on_w = _valley_w(hist, floor_w, active[0].power_w)
    else:
        reasons.append("no active level found: the on threshold is a guess, record a cycle")
        on_w = max(floor_w * 2, 10.0)
    on_w = round(on_w, 1) if on_w < 20 else float(round(on_w))
    room = min(on_w - floor_w, (active[0].power_w - on_w) if active else on_w)
    on_band = max(math.floor(min(on_w * 0.2, 0.9 * room) * 100) / 100, 0.0)
    below = "the highest standby level" if standby else f"the {_num(floor_w)} W floor"
    above = "the lowest active level" if active else "nothing (no activity recorded)"
    reasons.append(
        f"standby threshold {_num(standby_w)} +/- {_num(standby_band)} W sits between 0 W and "
        f"{'the lowest standby level' if standby else 'any load'}; "
        f"on threshold {_num(on_w)} +/- {_num(on_band)} W sits "
        f"in the emptiest gap between {below} and {above}"
    )
    dwell_on = float(max(60, math.ceil(2 * (window_s + step) / 10) * 10))
    smooth = smoothed(ts, power_w, window_s, gap_s)
    pauses = cycle_pauses(ts, smooth, on_w, dwell_on, MAX_CYCLE_PAUSE_S)
    longest = pauses[0] if pauses else 0.0
    dwell_quiet = _dwell_above(longest)
    if pauses:
        reasons.append(
            f"{plural(len(pauses), 'quiet spell')} inside cycles, longest {_human(longest)}: "
            f"standby/off must hold {format_duration(dwell_quiet)} before a run ends"
        )
    else:
        reasons.append("no quiet spells inside cycles: standby/off dwell left at 3 min")
    dwell_off = dwell_quiet
    if standby:
        dips = cycle_pauses(ts, smooth, standby_w, 0.0, MAX_CYCLE_PAUSE_S)
        if dips and _dwell_above(dips[0]) > dwell_quiet:
            dwell_off = _dwell_above(dips[0])
            reasons.append(
                f"the standby level dips to ~0 W for up to {_human(dips[0])} (meter resolution): "
                f"off must hold {format_duration(dwell_off)}"
            )
    reasons.append(
        f"on must hold {format_duration(dwell_on)} (twice the {format_duration(window_s)} "
        f"window and a ~{_num(step)} s sample), so a lone spike "
        "is not a run"
    )
    settings = DetectorSettings(
        window_s=window_s,
        standby_w=standby_w,
        standby_band_w=standby_band,
        on_w=on_w,
        on_band_w=on_band,
        dwell_on_s=dwell_on,
        dwell_standby_s=dwell_quiet,
        dwell_off_s=dwell_off,
        gap_s=gap_s,
    )
    kind, why = _kind_of(ts, power_w, settings, longest)
    reasons.append(f"kind {kind}: {why}")
    settings = dataclasses.replace(settings, kind=kind)
    return Proposal(settings, hist.off_share, standby, active, pauses, reasons)


def _kind_of(ts: np.ndarray, power_w: np.ndarray, settings: DetectorSettings,
             longest_pause_s: float) -> tuple[str, str]:
    """The appliance kind the runs found with `settings` look like (detect/kindguess.py)."""
    from plugwatch.detect.batch import replay
    from plugwatch.detect.kindguess import guess_kind
    from plugwatch.traces.reader import Trace

    trace = Trace(path=Path("calibrate"), ts=ts, power_w=power_w)
    short_dwells = dataclasses.replace(settings, window_s=30.0, dwell_on_s=60.0,
                                       dwell_standby_s=120.0, dwell_off_s=120.0)
    found = [[e for e in replay("calibrate", trace, s) if isinstance(e, RunSummary)]
             for s in (short_dwells, settings)]
    span = float(ts[-1] - ts[0]) if len(ts) > 1 else 0.0
    return guess_kind(found[0], found[1], span, longest_pause_s)


def smoothed(ts: np.ndarray, power_w: np.ndarray, window_s: float, gap_s: float) -> np.ndarray:
    """The detector's own time-weighted moving average of every sample (detect/smoothing.py)."""
    from plugwatch.detect.smoothing import segment_starts, time_average, window_firsts

    ts = np.ascontiguousarray(ts, dtype=np.float64)
    seg = segment_starts(ts, gap_s)
    firsts = window_firsts(ts, seg, window_s)
    return time_average(ts, np.ascontiguousarray(power_w, dtype=np.float64), seg, firsts,
                        window_s)


def cycle_pauses(
    ts: np.ndarray, smooth_w: np.ndarray, on_w: float, min_on_s: float, max_s: float
) -> list[float]:
    """Quiet spells (smoothed power below `on_w`) between active bursts, up to `max_s`, longest 1st.

    A burst must last `min_on_s` to count, so a lone spike does not split a long quiet spell.
    """
    active = smooth_w >= on_w
    if not active.any():
        return []
    change = np.flatnonzero(np.diff(active.astype(np.int8)))
    starts = np.concatenate(([0] if active[0] else [], change[~active[change]] + 1)).astype(int)
    ends = np.concatenate((change[active[change]], [len(active) - 1] if active[-1] else []))
    ends = ends.astype(int)
    keep = ts[ends] - ts[starts] >= min_on_s
    starts, ends = starts[keep], ends[keep]
    gaps = ts[starts[1:]] - ts[ends[:-1]]
    return sorted((float(g) for g in gaps if g <= max_s), reverse=True)


def _dwell_above(longest_s: float) -> float:
    """A dwell safely above the longest spell it must ride out: +25 % and a minute, >= 3 min."""
    return float(max(180, math.ceil((1.25 * longest_s + 60) / 60) * 60))


def _human(seconds: float) -> str:
    """A measured duration for people: '45 s' or '15.6 min'."""
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def _modes_text(modes: list[Mode]) -> str:
    return ", ".join(f"{_num(m.power_w)} W ({m.share:.1%})" for m in modes)


def percent(share: float) -> str:
    """A share of time for people: "65%", "<1%" (never "0%" for a share that is not 0)."""
    if 0 < share < 0.005:
        return "<1%"
    if 0.995 <= share < 1:
        return ">99%"
    return f"{share:.0%}"


def off_text(share: float) -> str:
    """The first reason line: how much of the time the plug read ~0 W."""
    if share == 0:
        return f"never at ~0 W (no reading <= {OFF_MAX_W} W)"
    return f"{percent(share)} of the time at ~0 W (off, <= {OFF_MAX_W} W)"


def _mode_json(m: Mode) -> dict[str, float]:
    return {"power_w": round(m.power_w, 3), "share": round(m.share, 4)}


def _num(x: float) -> str:
    """A power for people: 3 significant digits, no trailing zeros."""
    return f"{x:.3g}" if x < 1000 else f"{x:.0f}"


def _dur(seconds: float) -> str:
    """A duration in the config's own syntax: 90s, 5m, 1h."""
    s = round(seconds)
    if s % 3600 == 0 and s >= 3600:
        return f"{s // 3600}h"
    if s % 60 == 0 and s >= 60:
        return f"{s // 60}m"
    return f"{s}s"


FLAP_S = 10 * 60  # a visit to off/standby shorter than this, back to the same state, is a flap


@dataclass(frozen=True, slots=True)
class ReplayFigures:
    """What a set of thresholds makes of a trace: runs, state changes (per day) and flaps."""

    runs: int
    changes: int
    changes_per_day: float | None  # None: the trace is too short for a daily rate
    flaps: int

    def to_json(self) -> dict[str, float | None]:
        """A JSON-able dict of the figures."""
        per_day = self.changes_per_day
        return {
            "runs": self.runs,
            "changes": self.changes,
            "changes_per_day": None if per_day is None else round(per_day, 1),
            "flaps": self.flaps,
        }

    def text(self, flaps: str = "flap") -> str:
        """ "2 runs, 4 state changes (4.0/day), no flaps" (no rate for a short trace)."""
        rate = self.changes_per_day
        per_day = "" if rate is None else f" ({rate:.1f}/day)" if rate < 100 else (
            f" ({rate:,.0f}/day)")
        flapped = f"no {flaps}s" if self.flaps == 0 else plural(self.flaps, flaps)
        changes = plural(self.changes, "state change")
        return f"{plural(self.runs, 'run')}, {changes}{per_day}, {flapped}"


def count_flaps(spells: list[tuple[str, float, float]]) -> int:
    """Short visits (< FLAP_S) to off or standby between two spells of one same state.

    `spells` are (state, start, end) in time order.
    """
    flaps = 0
    for (before, _, _), (state, start, end), (after, _, _) in zip(
        spells, spells[1:], spells[2:], strict=False
    ):
        if state in ("off", "standby") and before == after and end - start < FLAP_S:
            flaps += 1
    return flaps


def figures(spells: list[tuple[str, float, float]], runs: int, span_s: float) -> ReplayFigures:
    """Figures of a replay given its state spells and number of runs over `span_s` seconds."""
    changes = max(len(spells) - 1, 0)
    return ReplayFigures(runs, changes, _per_day(changes, span_s), count_flaps(spells))


def _per_day(count: int, span_s: float) -> float | None:
    """`count` per day over `span_s`, or None when the span is too short to say."""
    return count * 86400 / span_s if span_s >= MIN_RATE_SPAN_S else None


def plain_threshold(ts: np.ndarray, power_w: np.ndarray, threshold_w: float = 0.5) -> ReplayFigures:
    """The naive detector for comparison: raw reading above `threshold_w` is on, else off."""
    if len(ts) == 0:
        return ReplayFigures(0, 0, 0.0, 0)
    on = power_w > threshold_w
    bounds = np.concatenate(([0], np.flatnonzero(np.diff(on.astype(np.int8))) + 1, [len(on)]))
    spells = []
    for lo, hi in itertools.pairwise(bounds):
        end = ts[hi] if hi < len(ts) else ts[-1]
        spells.append(("on" if on[lo] else "off", float(ts[lo]), float(end)))
    runs = sum(1 for state, _, _ in spells if state == "on")
    return figures(spells, runs, float(ts[-1] - ts[0]))


def replay_figures(events: Sequence[Event], first_ts: float, last_ts: float) -> ReplayFigures:
    """Figures of a detector replay (its Transitions and RunSummaries) over [first_ts, last_ts]."""
    transitions = [e for e in events if isinstance(e, Transition)]
    stops = [t.ts for t in transitions[1:]] + [last_ts]
    spells = [(t.to_state.value, t.ts, stop) for t, stop in zip(transitions, stops, strict=False)]
    runs = sum(1 for e in events if isinstance(e, RunSummary))
    result = figures(spells, runs, last_ts - first_ts)
    first_decision = 1 if transitions and transitions[0].from_state is State.UNKNOWN else 0
    changes = len(transitions) - first_decision
    return ReplayFigures(runs, changes, _per_day(changes, last_ts - first_ts), result.flaps)

"""Guess an appliance kind from a recording (PURE): what `plugwatch calibrate` proposes.

The guess reads the runs the detector finds with the proposed thresholds: how long they last,
how often they come, how high they peak and the share of time on. Each rule is physics, not a
fit: a kettle is a short 2-3 kW pulse, a compressor runs minutes many times a day below 1 kW, a
washer or dishwasher heats at ~2 kW inside an hour-long programme (a dishwasher's drying pause is
the long one), a dryer heats for most of its run, a TV or computer draws tens to hundreds of
watts for hours. Anything else is `generic`.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence

from plugwatch.model import RunSummary

HEATER_W = 1500.0  # a heating element: kettles, washers and dishwashers heating, dryers


def _figures(runs: Sequence[RunSummary], span_s: float) -> tuple[float, float, float, float,
                                                                  float]:
    """(typical duration s, peak W, share of time on, runs per day, mean W while on)."""
    durations = [r.duration_s for r in runs]
    return (statistics.median(durations), max(r.peak_w for r in runs), sum(durations) / span_s,
            len(runs) / max(span_s / 86400.0, 1 / 24),
            sum(r.energy_wh for r in runs) * 3600.0 / max(sum(durations), 1.0))


def guess_kind(short: Sequence[RunSummary], runs: Sequence[RunSummary], span_s: float,
               longest_pause_s: float) -> tuple[str, str]:
    """(kind, why in a few words) for a recording `span_s` long: `short` are its runs with
    2-minute dwells (each compressor cycle or boil apart), `runs` those with the proposal."""
    if not short or not runs or span_s <= 0:
        return "generic", "no run recorded: record a few uses, then calibrate again"
    typical, peak, on_share, per_day, mean_w = _figures(short, span_s)
    programme_s = statistics.median(r.duration_s for r in runs)
    if on_share > 0.9:
        return "always_on", f"on for {on_share:.0%} of the recording"
    if peak >= HEATER_W and typical <= 8 * 60 and programme_s <= 15 * 60:  # not inside a cycle
        return "kettle", f"runs of ~{typical / 60:.0f} min at up to {peak:.0f} W"
    if per_day >= 8 and 3 * 60 <= typical <= 60 * 60 and mean_w < 500:
        return "fridge", (f"{per_day:.0f} runs a day of ~{typical / 60:.0f} min at "
                          f"~{mean_w:.0f} W: a compressor")
    typical, peak, on_share, per_day, mean_w = _figures(runs, span_s)
    if peak >= HEATER_W and typical >= 30 * 60:
        if mean_w >= 1000:
            return "dryer", f"runs of ~{typical / 60:.0f} min heating most of the time"
        if longest_pause_s >= 15 * 60:
            return "dishwasher", (f"runs of ~{typical / 60:.0f} min with a heater and a pause "
                                  f"of {longest_pause_s / 60:.0f} min (drying)")
        return "washer", f"runs of ~{typical / 60:.0f} min with a heater and short pauses"
    if typical >= 20 * 60 and peak < 600:
        return "tv", (f"sessions of ~{typical / 60:.0f} min at ~{mean_w:.0f} W (a TV or a "
                      "computer: use kind: computer for a PC)")
    return "generic", "no kind fits the runs recorded"

"""Human and machine renderings of plugwatch values: durations, ISO times, events as JSON dicts."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from plugwatch.model import RunSummary, Transition

__all__ = [
    "format_duration", "format_power", "iso", "plural", "run_json", "transition_json",
]


def format_duration(seconds: float) -> str:
    """A duration for people: "45 s", "12 min", "1 h 12 min", "2 d 3 h" (rounded down)."""
    if not math.isfinite(seconds):
        return "?"
    sign = "-" if seconds < 0 else ""
    total = int(abs(seconds))
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        text = f"{days} d {hours} h" if hours else f"{days} d"
    elif hours:
        text = f"{hours} h {minutes} min" if minutes else f"{hours} h"
    elif minutes:
        text = f"{minutes} min {secs} s" if secs and minutes < 10 else f"{minutes} min"
    else:
        text = f"{secs} s"
    return sign + text


def iso(ts: float) -> str:
    """Epoch seconds as ISO 8601 in UTC, whole seconds: "2026-01-02T03:04:05+00:00"."""
    return datetime.fromtimestamp(math.floor(ts), UTC).isoformat()


def format_power(watts: float | None) -> str:
    """Power for people: "-" when unknown, "0.62 W", "45.3 W", "2036 W"."""
    if watts is None or not math.isfinite(watts):
        return "-"
    if abs(watts) < 10:
        return f"{watts:.2f} W"
    if abs(watts) < 100:
        return f"{watts:.1f} W"
    return f"{watts:.0f} W"


def plural(count: int, noun: str, many: str | None = None) -> str:
    """ "1 run", "2 runs", "0 runs"; `many` for an irregular plural ("1 match", "3 matches")."""
    return f"{count:,} {noun}" if count == 1 else f"{count:,} {many or noun + 's'}"


def _rounded(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def transition_json(t: Transition) -> dict[str, Any]:
    """A transition as a JSON-able dict (one line of `replay --json`)."""
    return {
        "type": "transition",
        "ts": iso(t.ts),
        "plug": t.plug,
        "from": str(t.from_state),
        "to": str(t.to_state),
        "reason": t.reason,
        "power_w": _rounded(t.power_w, 3),
    }


def run_json(r: RunSummary) -> dict[str, Any]:
    """A run as a JSON-able dict (one line of `replay --json`)."""
    return {
        "type": "run",
        "plug": r.plug,
        "start": iso(r.start),
        "end": iso(r.end),
        "duration_s": round(r.duration_s, 3),
        "energy_wh": round(r.energy_wh, 3),
        "peak_w": round(r.peak_w, 3),
    }

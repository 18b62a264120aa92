"""Human and machine renderings of plugwatch values: times, durations, energy, money, JSON.

One place for how plugwatch shows a value, so the CLI, notifications and logs agree:

    tz = zone_named(config.timezone)      # None -> the machine's zone; ConfigError when unknown
    clock(ts, tz)                          # "2026-12-01 20:56:41" (lines of history, run)
    when(ts, tz, now)                      # "20:56", "yesterday 20:56", "28 Nov 20:56"
    format_duration(4500)                  # "1 h 15 min"
    format_energy(550)                     # "0.55 kWh"      format_money(0.17, "EUR") -> "0.17 EUR"
    iso(ts)                                # "2026-12-01T19:56:41+00:00" (JSON: always UTC)
"""

from __future__ import annotations

import math
import os
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from plugwatch.errors import ConfigError
from plugwatch.model import RunSummary, State, Transition

__all__ = [
    "clock", "format_duration", "format_energy", "format_money", "format_power", "iso",
    "machine_zone", "plural", "run_json", "transition_json", "when", "zone_named",
]
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def machine_zone() -> str:
    """The machine's IANA time zone name (TZ, /etc/timezone, /etc/localtime), else "UTC"."""
    name = os.environ.get("TZ", "").lstrip(":")
    if not name:
        try:
            name = Path("/etc/timezone").read_text(encoding="utf-8").strip()
        except OSError:
            link = os.path.realpath("/etc/localtime")
            name = link.split("zoneinfo/", 1)[1] if "zoneinfo/" in link else ""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return "UTC"
    return name


def zone_named(name: str | None, what: str = "timezone") -> tzinfo:
    """The zone called `name` (IANA, e.g. Europe/Berlin); the machine's when None or empty.

    An unknown name is a ConfigError naming `what` (the setting or flag it came from).
    """
    if not name:
        name = machine_zone()
    if name.upper() == "UTC":
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"{what}: unknown time zone {name!r} "
                          "(use an IANA name such as Europe/Berlin, or UTC)") from None


def clock(ts: float, tz: tzinfo) -> str:
    """Epoch seconds as local date and time in `tz`, whole seconds: "2026-12-01 20:56:41"."""
    return datetime.fromtimestamp(math.floor(ts), tz).strftime("%Y-%m-%d %H:%M:%S")


def when(ts: float, tz: tzinfo, now: float) -> str:
    """A moment as people say it, seen from `now`: "20:56" today, "yesterday 20:56",
    "tomorrow 07:00", "28 Nov 20:56" within the year, "28 Nov 2025 20:56" otherwise."""
    moment = datetime.fromtimestamp(ts, tz)
    today = datetime.fromtimestamp(now, tz).date()
    hhmm = moment.strftime("%H:%M")
    if moment.date() == today:
        return hhmm
    if moment.date() == today - timedelta(days=1):
        return f"yesterday {hhmm}"
    if moment.date() == today + timedelta(days=1):
        return f"tomorrow {hhmm}"
    day = f"{moment.day} {_MONTHS[moment.month - 1]}"
    if moment.year != today.year:
        day += f" {moment.year}"
    return f"{day} {hhmm}"


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


def format_energy(wh: float | None) -> str:
    """Energy for people, Wh below 100 Wh, else kWh: "4.2 Wh", "45 Wh", "0.55 kWh", "12.4 kWh"."""
    if wh is None or not math.isfinite(wh):
        return "-"
    if abs(wh) < 10:
        return f"{wh:.1f} Wh"
    if abs(wh) < 100:
        return f"{wh:.0f} Wh"
    kwh = wh / 1000.0
    if abs(kwh) < 10:
        return f"{kwh:.2f} kWh"
    return f"{kwh:.1f} kWh" if abs(kwh) < 100 else f"{kwh:.0f} kWh"


def format_money(amount: float | None, currency: str = "") -> str:
    """Money for people, two decimals: "0.17 EUR"; "< 0.01 EUR" for a cost that rounds to 0."""
    if amount is None or not math.isfinite(amount):
        return "-"
    unit = f" {currency}" if currency else ""
    if 0 < amount < 0.005:
        return f"< 0.01{unit}"
    return f"{amount:.2f}{unit}"


def _rounded(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def transition_json(t: Transition) -> dict[str, Any]:
    """A transition as a JSON-able dict (one line of `replay --json`); the first state decided
    for a plug (out of unknown) is `{"type": "state", "state": ..., "since": ...}`."""
    if t.from_state is State.UNKNOWN:
        return {"type": "state", "plug": t.plug, "state": str(t.to_state), "since": iso(t.ts),
                "reason": t.reason, "power_w": _rounded(t.power_w, 3)}
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
        "cost": _rounded(r.cost, 4),
        "currency": r.currency,
        "open": r.open,
        "unobserved_s": round(r.unobserved_s, 3),
    }

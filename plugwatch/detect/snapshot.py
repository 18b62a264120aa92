"""Detector snapshots: the whole state of one plug's detector as a small JSON-able dict.

Floats survive JSON exactly, so a restored detector gives exactly the same future output. The
size is bounded: the moving-average window, a handful of partial sums and a few scalars.
"""

from __future__ import annotations

from typing import Any

from plugwatch.detect.fsm import Detector, Drop
from plugwatch.detect.runs import RunMeter
from plugwatch.model import State

VERSION = 2  # 2: the time-weighted window (items with their terms)


def to_snapshot(d: Detector) -> dict[str, Any]:
    """The detector's state as a JSON-able dict."""
    return {
        "v": VERSION,
        "state": str(d.state),
        "since": d.since,
        "on_high": d.levels.on_high,
        "standby_high": d.levels.standby_high,
        "level": d.levels.level,
        "level_start": d.levels.start,
        "level_power": d.levels.power,
        "window": d.window.to_json(),
        "level_age": d.levels.age,
        "last_power_w": d.last_power_w,
        "last": None if d.last is None else list(d.last),
        "failures": d.failures,
        "first_failure": d.first_failure,
        "before_unreachable": None if d.before_unreachable is None else str(d.before_unreachable),
        "run": None if d.run is None else d.run.to_dict(),
        "spell": None if d.drop is None else [d.drop.start, d.drop.power],
        "held_until": d.held_until,
        "dip": d.dip,
        "back_on": None if d.drop is None else d.drop.back_on,
        "announce_first": d.announce_first,
    }


def from_snapshot(d: Detector, snap: dict[str, Any]) -> bool:
    """Load `snap` (from to_snapshot) into a fresh detector `d`; False if it is unusable."""
    if not isinstance(snap, dict) or snap.get("v") != VERSION:
        return False
    try:
        d.state = State(snap["state"])
        d.since = snap["since"]
        levels = d.levels
        levels.on_high = bool(snap["on_high"])
        levels.standby_high = bool(snap["standby_high"])
        levels.level = snap["level"]
        levels.start = float(snap["level_start"])
        levels.power = float(snap["level_power"])
        d.window.restore(snap["window"])
        levels.age = int(snap["level_age"])
        d.last_power_w = snap["last_power_w"]
        last = snap["last"]
        d.last = None if last is None else (float(last[0]), float(last[1]), last[2])
        d.failures = int(snap["failures"])
        d.first_failure = snap["first_failure"]
        before = snap["before_unreachable"]
        d.before_unreachable = None if before is None else State(before)
        d.run = None if snap["run"] is None else RunMeter.from_dict(snap["run"])
        spell, back_on = snap["spell"], snap.get("back_on")
        d.drop = None if spell is None else Drop(float(spell[0]), float(spell[1]),
                                                 None if back_on is None else float(back_on))
        d.announce_first = bool(snap.get("announce_first", False))
        dip = snap.get("dip")
        d.dip = None if dip is None else float(dip)
        held = snap.get("held_until")
        d.held_until = None if held is None else float(held)
    except (KeyError, ValueError, TypeError, IndexError):
        return False
    return True

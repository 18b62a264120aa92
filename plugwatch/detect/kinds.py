"""Appliance kinds: a documented preset of window and dwells per kind of appliance (PURE).

A user picks the two thresholds and a kind; the kind says how long each level must hold, which
is what separates one use from the next. Explicit settings override the preset (the config
loader and `replay --kind` apply a preset first, then what was given). docs/detector.md has the
reasoning behind each number and the traces it was checked on.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from plugwatch.model import DetectorSettings

MIN, S = 60.0, 1.0


@dataclass(frozen=True, slots=True)
class Kind:
    """One appliance kind: its preset and a one-line reason."""

    name: str
    window_s: float
    dwell_on_s: float
    dwell_standby_s: float
    dwell_off_s: float
    why: str
    ignore_pulses: bool = False

    def settings(self, base: DetectorSettings | None = None) -> DetectorSettings:
        """`base` (default: the built-in settings) with this kind's window and dwells."""
        return dataclasses.replace(
            base or DetectorSettings(), kind=self.name, window_s=self.window_s,
            dwell_on_s=self.dwell_on_s, dwell_standby_s=self.dwell_standby_s,
            dwell_off_s=self.dwell_off_s, ignore_pulses=self.ignore_pulses)


KINDS: dict[str, Kind] = {k.name: k for k in (
    Kind("generic", 20 * S, 30 * S, 30 * MIN, 30 * MIN,
         "unknown appliance: a pause of up to half an hour stays inside one run"),
    Kind("washer", 30 * S, 60 * S, 10 * MIN, 3 * MIN,
         "drum turns and rests (a 30 s window rides them out); pauses inside a programme "
         "are short, a new load takes longer than 10 min; switched off (0 W) ends it in 3 min"),
    Kind("dryer", 30 * S, 60 * S, 10 * MIN, 3 * MIN,
         "the heater cycles but the drum keeps turning; anti-wrinkle tumbles after the end "
         "last seconds (shorter than the on dwell), so they neither extend nor start a run",
         ignore_pulses=True),
    Kind("dishwasher", 60 * S, 60 * S, 45 * MIN, 45 * MIN,
         "drying pauses last 20-40 min and read 0 W on coarse meters: both dwells outlast them"),
    Kind("tv", 20 * S, 30 * S, 3 * MIN, 3 * MIN,
         "a TV switched off and on again a few minutes later is a new session"),
    Kind("computer", 20 * S, 60 * S, 5 * MIN, 5 * MIN,
         "a reboot passes in under 5 min; a shutdown or sleep of longer ends the session"),
    Kind("fridge", 30 * S, 2 * MIN, 2 * MIN, 2 * MIN,
         "each compressor cycle (5-40 min on, then off) is one run; the door light and the "
         "start-up spike are shorter than the on dwell"),
    Kind("freezer", 30 * S, 2 * MIN, 2 * MIN, 2 * MIN,
         "as a fridge: each compressor cycle is one run"),
    Kind("kettle", 5 * S, 10 * S, 1 * MIN, 1 * MIN,
         "boils in 1-5 min at 2-3 kW with clean edges; a re-boil a minute later is a new run"),
    Kind("always_on", 60 * S, 2 * MIN, 10 * MIN, 1 * MIN,
         "a router or a hub: on all the time; what matters is that it went off (1 min)"),
)}


def kind_named(name: str) -> Kind:
    """The kind called `name`; ValueError listing the valid names otherwise."""
    try:
        return KINDS[name]
    except KeyError:
        raise ValueError(f"unknown kind {name!r} (valid: {', '.join(KINDS)})") from None

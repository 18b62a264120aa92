"""InfluxDB line protocol for plugwatch's values: readings, transitions and runs.

    plugwatch_reading,plug=washer power_w=812.3,energy_kwh=12.5,relay_on=true 1796158812345
    plugwatch_state,plug=washer state="on",from_state="standby",reason="power",code=3i,... <ms>
    plugwatch_run,plug=washer duration_s=3120.5,energy_wh=812.3,peak_w=2100.0,start=...,
        cost=0.25,currency="EUR" <ms end>              (cost where `price:` is configured)

Timestamps are integer milliseconds (writes say precision=ms). Non-finite numbers are left out
(a reading whose power is not finite is no line at all). Pure: values in, text out.
"""

from __future__ import annotations

import math
from math import isfinite

from plugwatch.model import Reading, RunSummary, Transition

STATE_CODES = {"unknown": 0, "off": 1, "standby": 2, "on": 3, "unreachable": 4}
_TAG = str.maketrans({",": r"\,", "=": r"\=", " ": r"\ "})
_MEASUREMENT = str.maketrans({",": r"\,", " ": r"\ "})


def tag(value: str) -> str:
    """A tag key or value escaped (commas, equals signs, spaces)."""
    return value.translate(_TAG)


def string_field(value: str) -> str:
    """A string field value, quoted, with backslashes and quotes escaped."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _float(name: str, value: float | None) -> str | None:
    if value is None or not math.isfinite(value):
        return None
    return f"{name}={float(value)!r}"


def _ms(ts: float) -> int:
    return round(ts * 1000)


def reading_head(prefix: str, plug: str) -> str:
    """The measurement and tags of `plug`'s readings: "plugwatch_reading,plug=washer "."""
    return f"{prefix.translate(_MEASUREMENT)}_reading,plug={tag(plug)} "


def reading_line(head: str, r: Reading) -> str | None:
    """One reading as a point after `head` (reading_head); None when its power is not finite.

    Written out field by field: this runs once per reading (a few µs at most).
    """
    power = r.power_w
    if not isfinite(power):
        return None
    line = f"{head}power_w={float(power)!r}"
    if (v := r.voltage_v) is not None and isfinite(v):
        line += f",voltage_v={float(v)!r}"
    if (a := r.current_a) is not None and isfinite(a):
        line += f",current_a={float(a)!r}"
    if (e := r.energy_kwh) is not None and isfinite(e):
        line += f",energy_kwh={float(e)!r}"
    if r.relay_on is not None:
        line += ",relay_on=true" if r.relay_on else ",relay_on=false"
    return f"{line} {round(r.ts * 1000)}"


def transition_line(prefix: str, t: Transition) -> str:
    """One state change as a point of `<prefix>_state`, stamped when the new level began."""
    fields = [f"state={string_field(str(t.to_state))}",
              f"from_state={string_field(str(t.from_state))}",
              f"reason={string_field(t.reason)}", f"code={STATE_CODES.get(str(t.to_state), 0)}i"]
    power = _float("power_w", t.power_w)
    if power:
        fields.append(power)
    return f"{prefix.translate(_MEASUREMENT)}_state,plug={tag(t.plug)} {','.join(fields)} " \
           f"{_ms(t.ts)}"


def run_line(prefix: str, r: RunSummary) -> str:
    """One finished run as a point of `<prefix>_run`, stamped at its end."""
    fields = [f for f in (_float("duration_s", r.duration_s), _float("energy_wh", r.energy_wh),
                          _float("peak_w", r.peak_w), _float("start", r.start),
                          _float("cost", r.cost)) if f]
    if r.cost is not None and r.currency:
        fields.append(f"currency={string_field(r.currency)}")
    return f"{prefix.translate(_MEASUREMENT)}_run,plug={tag(r.plug)} {','.join(fields)} " \
           f"{_ms(r.end)}"

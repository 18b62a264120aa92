"""The one duration grammar of plugwatch: config keys, rule files and command-line flags alike.

    parse_duration("30s") == 30.0      parse_duration("1h30m") == 5400.0
    parse_duration("5min") == 300.0    parse_duration("1 h 30 min") == 5400.0
    parse_duration("500ms") == 0.5     parse_duration(90) == 90.0   (a plain number is seconds)

Units: ms, s (sec), m (min), h, d, w; parts may repeat in any order and case, spaces are ignored.
"""

from __future__ import annotations

import math
import re

from plugwatch.errors import ConfigError

_UNITS = {"ms": 0.001, "s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "d": 86400.0,
          "w": 604800.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|sec|s|min|m|h|d|w)")
_WHOLE = re.compile(rf"(?:{_PART.pattern})+")
HINT = "use e.g. 30s, 5m, 1h30m or 2d"


def parse_duration(value: object) -> float:
    """Seconds in `value` (a duration string or a number of seconds); ValueError otherwise."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        if math.isfinite(value) and value >= 0:
            return float(value)
    elif isinstance(value, str):
        text = value.replace(" ", "").lower()
        if _WHOLE.fullmatch(text):
            return sum(float(n) * _UNITS[unit] for n, unit in _PART.findall(text))
        try:
            return parse_duration(float(text))
        except ValueError:
            pass
    raise ValueError(f"invalid duration {value!r} ({HINT})")


def duration_arg(flag: str, text: str) -> float:
    """A command-line flag's duration in seconds; a one-line ConfigError naming the flag."""
    try:
        return parse_duration(text)
    except ValueError:
        raise ConfigError(f"{flag}: invalid duration {text!r} ({HINT})") from None

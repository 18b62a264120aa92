"""Durations as users write them in rule files: "30s", "5m", "1h30m", "2d", or plain seconds."""

from __future__ import annotations

import math
import re

_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)", re.IGNORECASE)
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}


def parse_duration(value: object) -> float:
    """Seconds in `value`; raises ValueError with a hint when it is not a duration."""
    if isinstance(value, bool):
        raise ValueError(f"invalid duration {value!r} (use e.g. 30s, 5m, 1h30m)")
    if isinstance(value, int | float):
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"invalid duration {value!r}: use a positive number of seconds")
        return float(value)
    text = str(value).strip().replace(" ", "")
    if not text or not re.fullmatch(rf"(?:{_PART.pattern})+", text, re.IGNORECASE):
        try:
            return parse_duration(float(text))
        except ValueError:
            raise ValueError(f"invalid duration {value!r} (use e.g. 30s, 5m, 1h30m)") from None
    return sum(float(n) * _UNITS[unit.lower()] for n, unit in _PART.findall(text))

"""The sampling and detector keys (`interval`, `window`, `thresholds`, `dwell`, ...), given under
`defaults:` or on one plug. Every key is optional at both levels, so a plug's own value can be told
apart from "not given" and merged over the defaults key by key.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from plugwatch.config.durations import HINT, parse_duration


class Strict(BaseModel):
    """A frozen model that rejects unknown keys (a typo is an error, never ignored)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


Duration = Annotated[float, BeforeValidator(parse_duration)]
Watts = Annotated[float, Field(ge=0, allow_inf_nan=False)]


def _bands(value: object) -> object:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return {"standby": value, "on": value}
    if isinstance(value, dict):
        return value
    raise ValueError("use watts for both bands (e.g. 0.2) or {standby: 0.2, on: 2}")


def _positive_duration(value: object) -> float:
    seconds = parse_duration(value)
    if seconds <= 0:
        raise ValueError(f"must be longer than zero, got {value!r} ({HINT})")
    return seconds


PositiveDuration = Annotated[float, BeforeValidator(_positive_duration)]


def _window(value: object) -> object:
    if isinstance(value, bool):
        raise ValueError("use a duration (e.g. 20s) or a number of readings (e.g. 5)")
    if isinstance(value, int):
        if not 1 <= value <= 10_000:
            raise ValueError(f"a count of readings must be 1 to 10000, got {value} "
                             "(or give a duration, e.g. 20s)")
        return {"count": value}
    if isinstance(value, float):
        raise ValueError(f"a plain number is a count of readings: write {value:g}s for seconds")
    if isinstance(value, dict):
        return value
    try:
        return {"seconds": parse_duration(value)}
    except ValueError:
        raise ValueError(f"invalid window {value!r} (use a duration, e.g. 20s, or a number of "
                         "readings, e.g. 5)") from None


class Bands(Strict):
    """Hysteresis bands in W around the standby and on thresholds."""

    standby: Watts | None = None
    on: Watts | None = None


class Thresholds(Strict):
    """Power thresholds in W; `hysteresis` is one width for both bands or one per band."""

    standby: Watts | None = None
    on: Watts | None = None
    hysteresis: Annotated[Bands, BeforeValidator(_bands)] | None = None


class Window(Strict):
    """The moving average's span: a duration, or (older configs) a count of readings."""

    count: int | None = None
    seconds: float | None = None

    def seconds_at(self, interval_s: float) -> float:
        """The span in seconds; N readings span N - 1 intervals (1 reading: no smoothing)."""
        if self.seconds is not None:
            return self.seconds
        return max((self.count or 1) - 1, 0) * interval_s


class Dwell(Strict):
    """How long a new level must hold before it becomes the state."""

    on: Duration | None = None
    standby: Duration | None = None
    off: Duration | None = None


def _kind(value: object) -> object:
    from plugwatch.detect.kinds import kind_named

    return kind_named(str(value)).name


class Tuning(Strict):
    """Sampling and detector settings, given under `defaults:` or on one plug."""

    kind: Annotated[str, BeforeValidator(_kind)] | None = None
    interval: PositiveDuration | None = None
    timeout: PositiveDuration | None = None
    window: Annotated[Window, BeforeValidator(_window)] | None = None
    unreachable_after: Annotated[int, Field(ge=1, le=10_000)] | None = None
    gap: PositiveDuration | None = None
    thresholds: Thresholds | None = None
    dwell: Dwell | None = None
    max_power: Annotated[float, Field(gt=0, allow_inf_nan=False)] | None = None  # W per outlet

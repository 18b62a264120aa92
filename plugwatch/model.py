"""The small immutable values that flow through plugwatch: readings, states, transitions, runs.

Time is always a float of seconds since the Unix epoch (UTC). The pure core (detector, rules)
never reads a clock: every timestamp arrives inside a value defined here.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class State(StrEnum):
    """A plug's appliance state. UNKNOWN is the state before the first decision; never announced."""

    UNKNOWN = "unknown"
    OFF = "off"
    STANDBY = "standby"
    ON = "on"
    UNREACHABLE = "unreachable"


@dataclass(frozen=True, slots=True)
class Reading:
    """One good sample from a plug (or one row of a recorded trace)."""

    ts: float
    power_w: float
    relay_on: bool | None = None  # None: the source does not report a relay (e.g. a CSV trace)
    energy_kwh: float | None = None  # the plug's own cumulative energy counter, when it has one
    voltage_v: float | None = None
    current_a: float | None = None


@dataclass(frozen=True, slots=True)
class ReadFailure:
    """One failed attempt to read a plug; `reason` is a one-line human-readable cause.

    `kind` is one of a few fixed words (DeviceError.kind: timeout, unreachable, bad_answer, error)
    so that metrics can count failures by cause with a bounded set of labels.
    """

    ts: float
    reason: str
    kind: str = "error"


Sample = Reading | ReadFailure


@dataclass(frozen=True, slots=True)
class Transition:
    """A confirmed state change. `ts` is when the new level began, not when it was confirmed."""

    plug: str
    ts: float
    from_state: State
    to_state: State
    reason: str  # e.g. "power", "relay_off", "no_load", "read_failures", "recovered"
    power_w: float | None  # smoothed power at the start of the new level (None when unreachable)


@dataclass(frozen=True, slots=True)
class RunSummary:
    """One On spell of a plug: finished, or (`open`) still running when the readings ended."""

    plug: str
    start: float
    end: float
    energy_wh: float
    peak_w: float
    cost: float | None = None  # the energy's price (config `price:`), None when not configured
    currency: str | None = None
    open: bool = False  # still running at the end of what was seen: `end` is the last reading
    unobserved_s: float = 0.0  # time inside the run with no reading (service down, unreachable)

    @property
    def duration_s(self) -> float:
        return self.end - self.start


Event = Transition | RunSummary


@dataclass(frozen=True, slots=True)
class DetectorSettings:
    """Tuning of one plug's detector. Powers in W, durations in seconds.

    The Off/Standby boundary is `standby_w` with a band of +/- `standby_band_w`; the Standby/On
    boundary is `on_w` with a band of +/- `on_band_w`. A smoothed value inside a band keeps the
    current level. A new level becomes the state after holding for that state's dwell.
    """

    kind: str = "generic"  # the appliance kind whose preset these settings started from
    window_s: float = 20.0  # time-weighted moving average over this many seconds (0: none)
    standby_w: float = 0.5
    standby_band_w: float = 0.2
    on_w: float = 10.0
    on_band_w: float = 2.0
    dwell_on_s: float = 30.0
    dwell_standby_s: float = 1800.0  # 30 min: a soak or drying pause must not end a run
    dwell_off_s: float = 1800.0
    unreachable_after: int = 3
    gap_s: float = 60.0  # no sample for longer than this resets the moving average
    # after a stop (below on for the on dwell), a return to on shorter than the on dwell is a
    # pulse of the run's tail (a dryer's anti-wrinkle tumbles), not the run going on
    ignore_pulses: bool = False

    def __post_init__(self) -> None:
        if self.unreachable_after < 1:
            raise ValueError(f"unreachable_after must be at least 1, got {self.unreachable_after}")
        if self.standby_w + self.standby_band_w > self.on_w - self.on_band_w:
            raise ValueError(
                f"the standby band ({self.standby_w} +/- {self.standby_band_w} W) must sit below "
                f"the on band ({self.on_w} +/- {self.on_band_w} W)"
            )
        for name in ("window_s", "standby_band_w", "on_band_w", "dwell_on_s", "dwell_standby_s",
                     "dwell_off_s"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative, got {getattr(self, name)}")

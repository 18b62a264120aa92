"""The one rule for what a plug may report: finite, physical values. Live sources and replay use it.

    reading = check_reading(reading, "10.0.0.4:9999", limits)   # BadReading with a one-line reason
    sample = checked(sample, "10.0.0.4:9999", limits)           # a bad Reading -> a ReadFailure
    power = check_power(raw_w, limits)                          # ValueError (replay's CSV rows)

Power must lie in 0 .. `max_power_w` (4 kW per outlet unless configured with `max_power:`);
slightly negative noise (down to -`noise_w`) is clamped to 0. Voltage, current and the energy
counter, when reported, must be finite and physical too. NaN fails every comparison, so the
common case costs one chained comparison per value.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from plugwatch.errors import BadAnswer
from plugwatch.model import ReadFailure, Reading, Sample

MAINS_MIN_V = 100.0  # the lowest mains voltage: the current bound is max_power_w / this


class BadReading(BadAnswer):
    """A plug answered with a value that cannot be true (not a number, negative, too large)."""


@dataclass(frozen=True, slots=True)
class Limits:
    """What one plug may report. `max_power_w` is per outlet (config key `max_power`)."""

    max_power_w: float = 4000.0
    noise_w: float = 2.0  # power in [-noise_w, 0) is sensor noise: clamped to 0
    max_voltage_v: float = 300.0
    max_energy_kwh: float = 1e7  # a cumulative counter: decades at full load

    @property
    def max_current_a(self) -> float:
        """The largest current the plug may report: max power at the lowest mains voltage."""
        return self.max_power_w / MAINS_MIN_V


DEFAULT_LIMITS = Limits()


def check_power(power_w: float, limits: Limits = DEFAULT_LIMITS) -> float:
    """`power_w` if physical, 0.0 for slight negative noise; ValueError with the reason else."""
    if 0.0 <= power_w <= limits.max_power_w:
        return power_w
    if -limits.noise_w <= power_w < 0.0:
        return 0.0
    raise ValueError(_why("power", power_w, "W", f"0 .. {limits.max_power_w:g} W", limits))


def check_reading(reading: Reading, where: str, limits: Limits = DEFAULT_LIMITS) -> Reading:
    """`reading` if every value is physical (noise clamped); BadReading naming `where` else."""
    power, volts, amps, kwh = (reading.power_w, reading.voltage_v, reading.current_a,
                               reading.energy_kwh)
    if (0.0 <= power <= limits.max_power_w
            and (volts is None or 0.0 <= volts <= limits.max_voltage_v)
            and (amps is None or 0.0 <= amps <= limits.max_current_a)
            and (kwh is None or 0.0 <= kwh <= limits.max_energy_kwh)):
        return reading
    try:
        clamped = check_power(power, limits)
        if volts is not None and not 0.0 <= volts <= limits.max_voltage_v:
            raise ValueError(_why("voltage", volts, "V", f"0 .. {limits.max_voltage_v:g} V"))
        if amps is not None and not 0.0 <= amps <= limits.max_current_a:
            if -limits.noise_w / MAINS_MIN_V <= amps < 0.0:
                amps = 0.0
            else:
                raise ValueError(_why("current", amps, "A", f"0 .. {limits.max_current_a:g} A",
                                      limits))
        if kwh is not None and not 0.0 <= kwh <= limits.max_energy_kwh:
            raise ValueError(_why("energy counter", kwh, "kWh",
                                  f"0 .. {limits.max_energy_kwh:g} kWh"))
    except ValueError as exc:
        raise BadReading(f"bad reading from {where}: {exc}") from None
    return replace(reading, power_w=clamped, current_a=amps)


def checked(sample: Sample, where: str, limits: Limits = DEFAULT_LIMITS) -> Sample:
    """`sample` with a Reading checked by check_reading; a bad one becomes a ReadFailure."""
    if isinstance(sample, ReadFailure):
        return sample
    try:
        return check_reading(sample, where, limits)
    except BadReading as exc:
        return ReadFailure(sample.ts, str(exc), exc.kind)


def _why(what: str, value: float, unit: str, valid: str, limits: Limits | None = None) -> str:
    if not math.isfinite(value):
        return f"{what} {value} is not a finite number"
    hint = " (raise the plug's max_power if it is real)" if limits and value > 0 else ""
    return f"{what} {value:g} {unit} is outside {valid}{hint}"

"""The two Schmitt triggers that turn smoothed power into a level: off, standby or on.

Each boundary (standby_w, on_w) has a band of +/- its band width. Above the band the trigger goes
high, below it goes low, inside it keeps its last value. Before the first reading a trigger has no
value: the first smoothed value sets it by the threshold itself (`initial_triggers`), so a plug
first seen at 0.6 W with a 0.5 +/- 0.2 W standby band starts in standby, not off.
The level is `on` when the on trigger is high, else `standby` when the standby trigger is high,
else `off`. The bands do
not overlap (DetectorSettings checks), so "on high" always comes with "standby high".
Both the streaming detector and the numpy batch path use these exact comparisons.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from plugwatch.model import DetectorSettings, State

# levels as small integers for the numpy path; index into LEVEL_STATES
OFF, STANDBY, ON = 0, 1, 2
LEVEL_STATES = (State.OFF, State.STANDBY, State.ON)


@dataclass(frozen=True, slots=True)
class Bands:
    """The four edges of the two hysteresis bands, in W."""

    standby_lo: float
    standby_hi: float
    on_lo: float
    on_hi: float

    @classmethod
    def of(cls, s: DetectorSettings) -> Bands:
        """The bands of detector settings `s`."""
        return cls(
            s.standby_w - s.standby_band_w, s.standby_w + s.standby_band_w,
            s.on_w - s.on_band_w, s.on_w + s.on_band_w,
        )


def trigger(value: float, lo: float, hi: float, current: bool) -> bool:
    """One Schmitt trigger step: high above `hi`, low below `lo`, unchanged inside the band."""
    if value > hi:
        return True
    if value < lo:
        return False
    return current


def level_of(on_high: bool, standby_high: bool) -> int:
    """The level (OFF/STANDBY/ON) of the two trigger values."""
    if on_high:
        return ON
    return STANDBY if standby_high else OFF


def triggers_vec(
    smoothed: npt.NDArray[np.float64], lo: float, hi: float, initial: bool
) -> npt.NDArray[np.bool_]:
    """A Schmitt trigger over an array: forward-fill of the last decisive (outside band) value."""
    high = smoothed > hi
    decisive = high | (smoothed < lo)
    index = np.where(decisive, np.arange(smoothed.size), -1)
    np.maximum.accumulate(index, out=index)
    return np.where(index >= 0, high[np.maximum(index, 0)], initial)


def raw_side(watts: float, level: int, bands: Bands, previous: int | None = None) -> bool:
    """Whether one raw reading lies clearly in `level`'s range (outside both bands). Leaving on
    (`previous` ON) only needs the reading clearly below on: a drop is where the load fell,
    even when a coarse meter then flickers between the off and standby ranges."""
    if previous == ON and level != ON:
        return watts < bands.on_lo
    if level == ON:
        return watts > bands.on_hi
    if level == STANDBY:
        return bands.standby_hi < watts < bands.on_lo
    return watts < bands.standby_lo


def initial_triggers(first: float, settings: DetectorSettings) -> tuple[bool, bool]:
    """The (on, standby) trigger values before the first reading, from the first smoothed value."""
    return first >= settings.on_w, first >= settings.standby_w


def levels_vec(
    smoothed: npt.NDArray[np.float64], bands: Bands, initial: tuple[bool, bool] = (False, False)
) -> npt.NDArray[np.int8]:
    """The level of every smoothed value; `initial` = the (on, standby) triggers before it."""
    on_high = triggers_vec(smoothed, bands.on_lo, bands.on_hi, initial[0])
    standby_high = triggers_vec(smoothed, bands.standby_lo, bands.standby_hi, initial[1])
    return np.where(on_high, ON, np.where(standby_high, STANDBY, OFF)).astype(np.int8)

"""The two Schmitt triggers that turn smoothed power into a level: off, standby or on.

Each boundary (standby_w, on_w) has a band of +/- its band width. Above the band the trigger goes
high, below it goes low, inside it keeps its last value. Before the first reading a trigger has no
value: the first smoothed value sets it by the threshold itself (`initial_triggers`), so a plug
first seen at 0.6 W with a 0.5 +/- 0.2 W standby band starts in standby, not off.
The level is `on` when the on trigger is high, else `standby` when the standby trigger is high,
else `off`. The bands do not overlap (DetectorSettings checks), so "on high" always comes with
"standby high". A new level is dated back to where the raw power crossed (`LevelTracker.back`,
vectorised in batch.py's `_date_back`). Both the streaming detector and the numpy batch path use
these exact comparisons (rules 2 and 4 of docs/detector.md).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from plugwatch.model import DetectorSettings

# levels as small integers for the numpy path (fsm.LEVEL_STATES: the state each leads to)
OFF, STANDBY, ON = 0, 1, 2


@dataclass(frozen=True, slots=True)
class Bands:
    """The four edges of the two hysteresis bands, in W."""

    standby_lo: float
    standby_hi: float
    on_lo: float
    on_hi: float

    @classmethod
    @functools.lru_cache(maxsize=1024)
    def of(cls, s: DetectorSettings) -> Bands:
        """The bands of detector settings `s` (one object for equal settings, which plugs share)."""
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


class Held(Protocol):
    """A reading in the moving-average window (smoothing.Held): its time and raw power."""

    ts: float
    watts: float


class LevelTracker:
    """The streaming form of rules 2 and 4: the level of each smoothed value and when it began.

    `level` is None before the first reading; `start` is when the current level began (dated
    back), `power` the smoothed power when it was detected, `age` the readings since then."""

    __slots__ = ("age", "bands", "level", "on_high", "power", "settings", "standby_high", "start")

    def __init__(self, settings: DetectorSettings) -> None:
        self.settings, self.bands = settings, Bands.of(settings)
        self.on_high = self.standby_high = False
        self.level: int | None = None
        self.start = self.power = 0.0
        self.age = 0

    def update(self, smoothed: float) -> int | None:
        """Take the smoothed value of the newest reading: the new level if it changed (the
        caller then dates it with `begin`), else None."""
        b = self.bands
        if self.level is None:  # the very first reading sets the triggers by the thresholds
            self.on_high, self.standby_high = initial_triggers(smoothed, self.settings)
        self.age += 1
        self.on_high = trigger(smoothed, b.on_lo, b.on_hi, self.on_high)
        self.standby_high = trigger(smoothed, b.standby_lo, b.standby_hi, self.standby_high)
        level = level_of(self.on_high, self.standby_high)
        return None if level == self.level else level

    def begin(self, window: Sequence[Held], level: int, smoothed: float) -> int:
        """`level` (from update) began how many readings before the newest one in `window`."""
        back = self.back(window, level)
        self.level, self.start, self.power, self.age = level, window[-1 - back].ts, smoothed, 0
        return back

    def back(self, window: Sequence[Held], level: int) -> int:
        """How many readings before the newest one `level` began. The moving average lags a
        step, so the level is dated back over the last readings whose raw power is already on
        its side (those held inside the window, and after the previous level was detected).
        The newest reading has held for no time yet: when it is not on the side, the walk
        starts at the one before it (whose held value moved the average)."""
        # an on level may be dated back past a level passed on the way up (never confirmed)
        limit = len(window) - 1 if level == ON else min(len(window), self.age) - 1
        back = 0
        b, previous = self.bands, self.level
        if not raw_side(window[-1].watts, level, b, previous):
            if limit < 1 or not raw_side(window[-2].watts, level, b, previous):
                return 0
            back = 1
        while back < limit and raw_side(window[-2 - back].watts, level, b, previous):
            back += 1
        return back

    def set_now(self, ts: float, smoothed: float) -> None:
        """The level of `smoothed`, beginning at `ts` (after an outage: no dating back)."""
        b = self.bands
        self.on_high = trigger(smoothed, b.on_lo, b.on_hi, self.on_high)
        self.standby_high = trigger(smoothed, b.standby_lo, b.standby_hi, self.standby_high)
        self.level = level_of(self.on_high, self.standby_high)
        self.start, self.power, self.age = ts, smoothed, 0

    def reset(self, ts: float, watts: float) -> None:
        """The relay is open: both triggers go low, the level is off from `ts`."""
        self.on_high = self.standby_high = False
        self.level, self.start, self.power, self.age = OFF, ts, watts, 0

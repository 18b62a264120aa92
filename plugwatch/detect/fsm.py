"""One plug's detector: moving average -> two Schmitt triggers -> dwell-confirmed state machine.

Pure: no clock, no I/O; time comes with each sample. `feed()` returns the events the sample caused.
The rules (docs/detector.md has the full story):

- A level (off/standby/on, see levels.py) becomes the state once it has held for that state's
  dwell; the transition is stamped when the level began, with the smoothed power then.
- Leaving on is measured from when the level first dropped below on (the "spell"), even if it
  wanders between standby and off meanwhile: once the spell is as old as the dwell of the level
  it is at, that level becomes the state, stamped at the spell's start (where the run ends).
- The first reading decides the state at once (with dwells of half an hour, waiting for one
  would leave a new plug unknown that long); a fresh detector announces it as a transition out
  of `unknown`, a restored one (a restart) never does.
- `relay_on is False` -> off at once (reason relay_off). `unreachable_after` failures in a row ->
  unreachable, stamped at the first failure; the next reading sets the state to that reading's
  level at once (reason recovered). Unreachable entered from unknown is not announced.
- An on period is a run from the on level's start to the start of the confirmed drop that ended
  it. Unreachable while on keeps the run open; if the plug comes back not on, the run ends when
  it became unreachable.
"""

from __future__ import annotations

from typing import Any

from plugwatch.detect.levels import (
    LEVEL_STATES,
    ON,
    Bands,
    initial_triggers,
    level_of,
    raw_side,
    trigger,
)
from plugwatch.detect.runs import RunMeter, interval_wh
from plugwatch.detect.smoothing import TimeAverage
from plugwatch.model import DetectorSettings, Event, ReadFailure, Reading, RunSummary, State
from plugwatch.model import Transition as T

# every Transition.reason the detector gives
REASONS = ("power", "no_load", "relay_off", "read_failures", "recovered")
# A transition out of State.UNKNOWN is the first state decided for a plug (its reason is what
# decided it): announced once by a fresh detector, never by one restored after a restart.


def dwell_of(settings: DetectorSettings, state: State) -> float:
    """How long a level must hold before it becomes `state`."""
    if state is State.ON:
        return settings.dwell_on_s
    return settings.dwell_standby_s if state is State.STANDBY else settings.dwell_off_s


class Detector:
    """The state of one plug, updated one sample at a time."""

    def __init__(self, plug: str, settings: DetectorSettings, announce_first: bool = True
                 ) -> None:
        self.plug = plug
        self.settings = settings
        self.announce_first = announce_first  # emit the first decided state (out of unknown)
        self.bands = Bands.of(settings)
        self.state = State.UNKNOWN
        self.since: float | None = None
        self.on_high = self.standby_high = False  # the two Schmitt triggers
        self.level: int | None = None  # index into LEVEL_STATES; None before the first reading
        self.level_start = 0.0
        self.level_power = 0.0
        # the readings averaged now (time, W, counter) also date a level back to where it began
        self.window = TimeAverage(settings.window_s)
        self.level_age = 0  # readings since the current level was detected
        self.last_power_w: float | None = None  # smoothed power of the last reading
        self.last: tuple[float, float, float | None] | None = None  # ts, raw W, counter kWh
        self.failures = 0
        self.first_failure: float | None = None
        self.before_unreachable: State | None = None
        self.run: RunMeter | None = None  # open (state on) or pending (level on, not confirmed)
        self.spell: tuple[float, float] | None = None  # state on, level below: (start, power)
        self.dip: float | None = None  # state below on, a pending run, level below since then
        # state on, a drop pending, the level on again since then: a pulse (anti-wrinkle
        # tumbles) cancels the drop only once it has held the on dwell
        self.back_on: float | None = None
        # a state entered after its dwell lasts at least that dwell: the next change is never
        # dated before this time (None: the state came at once, by relay, outage or first reading)
        self.held_until: float | None = None

    def __repr__(self) -> str:
        b = self.bands
        return (f"Detector({self.plug!r}, state={self.state}, since={self.since}, "
                f"standby={b.standby_lo}..{b.standby_hi} W, on={b.on_lo}..{b.on_hi} W)")

    def feed(self, sample: Reading | ReadFailure) -> list[Event]:
        """Take one reading or failure (in time order); return the transitions and runs it ends.

        A reading older than the last one is ignored (time never runs backwards in a detector).
        """
        if isinstance(sample, ReadFailure):
            return self._failure(sample)
        if self.last is not None and sample.ts < self.last[0]:
            return []
        return self._reading(sample)

    def _reading(self, r: Reading) -> list[Event]:
        recovering = self.state is State.UNREACHABLE
        self.failures = 0
        wh = None
        gap: tuple[float, float] | None = None  # (last reading before, seconds unobserved)
        if self.last is not None:
            t0, p0, e0 = self.last
            wh = interval_wh(t0, p0, e0, r.ts, r.power_w, r.energy_kwh, self.settings.gap_s)
            if r.ts - t0 > self.settings.gap_s:
                self._reset_window()
                gap = (t0, r.ts - t0)
        self.last = (r.ts, r.power_w, r.energy_kwh)
        if recovering:
            return self._recover(r, wh, gap)
        # Unobserved time never stretches a run: a plug on before a gap and below on after it
        # dropped at the last reading before the gap (the gap and its energy are the tail).
        gap_drop = (gap is not None and r.relay_on is not False and self.state is State.ON
                    and self.run is not None and self.run.tail is None)
        if self.run is not None and not gap_drop:
            self._count_interval(wh, gap)
        if r.relay_on is False:
            return self._relay_off(r)
        smoothed = self.window.add(r.ts, r.power_w, r.energy_kwh)
        self.level_age += 1
        self.last_power_w = smoothed
        self._set_level(r.ts, smoothed, gap[0] if gap_drop and gap is not None else None)
        if gap_drop and self.run is not None:
            self._count_interval(wh, gap)
        if self.run is not None:
            self.run.add_power(r.power_w, self.level == ON and self.spell is None)
        return self._confirm(r.ts)

    def _count_interval(self, wh: float | None, gap: tuple[float, float] | None) -> None:
        assert self.run is not None
        self.run.add_energy(wh)
        if gap is not None:
            self.run.add_unobserved(gap[1])

    def _set_level(self, ts: float, smoothed: float, gap_from: float | None = None) -> None:
        b = self.bands
        if self.level is None:  # the very first reading sets the triggers by the thresholds
            self.on_high, self.standby_high = initial_triggers(smoothed, self.settings)
        self.on_high = trigger(smoothed, b.on_lo, b.on_hi, self.on_high)
        self.standby_high = trigger(smoothed, b.standby_lo, b.standby_hi, self.standby_high)
        level = level_of(self.on_high, self.standby_high)
        if level == self.level:
            return
        previous = self.level
        back = self._back(level)
        start = self.window.items[-1 - back].ts
        self.level, self.level_start, self.level_power = level, start, smoothed
        self.level_age = 0
        if self.state is State.ON:
            assert self.run is not None
            if level == ON:
                assert self.spell is not None
                if self.settings.ignore_pulses and \
                        start - self.spell[0] >= self.settings.dwell_on_s:
                    self.back_on = start  # a pulse after a stop: the run goes on only once on
                    # holds the on dwell (_confirm), so anti-wrinkle tumbles stay in the tail
                else:  # back on before the drop was confirmed: the run goes on
                    self.run.merge_tail()
                    self.spell = None
            elif previous == ON and self.back_on is not None:
                self.back_on = None  # a pulse shorter than the on dwell: the drop goes on
            elif previous == ON:  # dropped below on: measure apart, the run may end here
                self.run.start_tail()
                assert self.run.tail is not None
                for wh in self._recent_wh(back):  # the drop began `back` readings ago
                    self.run.energy.add(-wh)
                    self.run.tail.add(wh)
                self.spell = (start if gap_from is None else gap_from, smoothed)
        elif level == ON:
            if self.run is not None and self.dip is not None and \
                    start - self.dip < self.settings.dwell_on_s:
                self.run.merge_tail()  # a dip shorter than the on dwell: the run began earlier
            else:  # a pending run starts with an on level
                peak = max(item.watts for item in list(self.window.items)[-1 - back :])
                self.run = RunMeter(start=start, peak=peak)
                for wh in self._recent_wh(back):
                    self.run.energy.add(wh)
            self.dip = None
        elif previous == ON and self.run is not None:
            self.dip = start  # the pending run waits: the load may come back within the on dwell
        elif self.dip is None:
            self.run = None

    def _back(self, level: int) -> int:
        """How many readings before this one the new level began: the moving average lags a
        step, so the level is dated back over the last readings whose raw power is already on
        its side (those held inside the window, and after the previous level was detected).
        The newest reading has held for no time yet: when it is not on the side, the walk
        starts at the one before it (whose held value moved the average)."""
        items = self.window.items
        # an on level may be dated back past a level passed on the way up (never confirmed)
        limit = len(items) - 1 if level == ON else min(len(items), self.level_age) - 1
        back = 0
        b, previous = self.bands, self.level
        if not raw_side(items[-1].watts, level, b, previous):
            if limit < 1 or not raw_side(items[-2].watts, level, b, previous):
                return 0
            back = 1
        while back < limit and raw_side(items[-2 - back].watts, level, b, previous):
            back += 1
        return back

    def _recent_wh(self, back: int) -> list[float]:
        """Energies of the last `back` intervals between the readings in the window."""
        out: list[float] = []
        items = list(self.window.items)
        for m in range(back):
            a, b = items[-2 - m], items[-1 - m]
            wh = interval_wh(a.ts, a.watts, a.energy_kwh, b.ts, b.watts, b.energy_kwh,
                             self.settings.gap_s)
            if wh is not None:
                out.append(wh)
        return out

    def _reset_window(self) -> None:
        self.window.reset()

    def _confirm(self, ts: float) -> list[Event]:
        assert self.level is not None
        if self.back_on is not None and ts - self.back_on >= self.settings.dwell_on_s:
            assert self.run is not None  # on again for the on dwell: the drop is cancelled
            self.run.merge_tail()
            self.spell = self.back_on = None
        target = LEVEL_STATES[self.level]
        if target is self.state:
            return []
        start, power = self.level_start, self.level_power
        if self.state is State.ON and self.spell is not None:
            start, power = self.spell
        elif target is State.ON and self.run is not None:
            start = self.run.start  # where the load first crossed into on (dips bridged)
        if self.held_until is not None:
            start = max(start, self.held_until)
        dwell = dwell_of(self.settings, target)
        if self.state is not State.UNKNOWN and ts - start < dwell:
            return []
        events: list[Event] = []
        if self.state is not State.UNKNOWN or self.announce_first:
            reason = "no_load" if target is State.OFF else "power"
            events.append(T(self.plug, start, self.state, target, reason, power))
        if self.state is State.ON:
            events.append(self._close_run(start))
        if target is State.ON and self.run is not None:
            self.run.start = start
        if target is not State.ON:
            self.run = self.dip = None  # a lower state confirmed: no run is pending any more
        self.held_until = None if self.state is State.UNKNOWN else start + dwell
        self.state, self.since, self.spell, self.back_on = target, start, None, None
        return events

    def open_run(self) -> RunSummary | None:
        """The run still going (state on) as of the last reading, marked open; else None."""
        if self.state is not State.ON or self.run is None or self.last is None:
            return None
        run = self.run
        energy = run.energy.value() if run.tail is None else run.energy.total_with(run.tail)
        peak = run.peak if run.tail_peak is None else max(run.peak, run.tail_peak)
        unseen = run.unobserved.value() if run.tail_unobserved is None else \
            run.unobserved.total_with(run.tail_unobserved)
        return RunSummary(self.plug, run.start, self.last[0], energy, peak, open=True,
                          unobserved_s=unseen)

    def _close_run(self, end: float) -> RunSummary:
        assert self.run is not None
        run, self.run = self.run, None
        return RunSummary(self.plug, run.start, end, run.energy.value(), run.peak,
                          unobserved_s=run.unobserved.value())

    def _relay_off(self, r: Reading) -> list[Event]:
        self._reset_levels(r.ts, r.power_w)
        events: list[Event] = []
        if self.state is not State.OFF:
            if self.state is not State.UNKNOWN or self.announce_first:
                events.append(T(self.plug, r.ts, self.state, State.OFF, "relay_off", r.power_w))
            if self.state is State.ON:
                assert self.run is not None
                self.run.merge_tail()
                events.append(self._close_run(r.ts))
            self.state, self.since, self.held_until = State.OFF, r.ts, None
        self.run = self.spell = self.dip = self.back_on = None
        return events

    def _reset_levels(self, ts: float, watts: float) -> None:
        """The relay is open: the average restarts and both triggers go low."""
        self._reset_window()
        self.level_age = 0
        self.on_high = self.standby_high = False
        self.level, self.level_start, self.level_power = 0, ts, watts
        self.last_power_w = watts

    def _failure(self, f: ReadFailure) -> list[Event]:
        self.failures += 1
        if self.failures == 1:
            self.first_failure = f.ts
        if self.failures < self.settings.unreachable_after or self.state is State.UNREACHABLE:
            return []
        start = self.first_failure if self.first_failure is not None else f.ts
        events: list[Event] = []
        if self.state is not State.UNKNOWN or self.announce_first:
            events.append(T(self.plug, start, self.state, State.UNREACHABLE, "read_failures", None))
        if self.state is State.ON and self.run is not None:
            self.run.merge_tail()  # the run stays open until the plug is back
        else:
            self.run = None
        self.spell = self.dip = self.back_on = None
        self.before_unreachable = self.state
        self.state, self.since, self.held_until = State.UNREACHABLE, start, None
        return events

    def _recover(self, r: Reading, wh: float | None, gap: tuple[float, float] | None
                 ) -> list[Event]:
        self._reset_window()
        self.level_age = 0
        if r.relay_on is False:
            self._reset_levels(r.ts, r.power_w)
            power = r.power_w
        else:
            power = self.window.add(r.ts, r.power_w, r.energy_kwh)
            self.last_power_w = power
            self._set_level_now(r.ts, power)
        assert self.level is not None
        target = LEVEL_STATES[self.level]
        events: list[Event] = []
        if self.before_unreachable is not State.UNKNOWN or self.announce_first:
            events.append(T(self.plug, r.ts, State.UNREACHABLE, target, "recovered", power))
        if self.run is not None:  # open since before the outage
            if target is State.ON:
                self._count_interval(wh, gap)
                self.run.add_power(r.power_w, True)
            else:
                assert self.since is not None
                events.append(self._close_run(self.since))
        elif target is State.ON:
            self.run = RunMeter(start=r.ts, peak=r.power_w)
        self.state, self.since, self.before_unreachable = target, r.ts, None
        self.held_until = None
        return events

    def _set_level_now(self, ts: float, smoothed: float) -> None:
        b = self.bands
        self.on_high = trigger(smoothed, b.on_lo, b.on_hi, self.on_high)
        self.standby_high = trigger(smoothed, b.standby_lo, b.standby_hi, self.standby_high)
        self.level = level_of(self.on_high, self.standby_high)
        self.level_start, self.level_power = ts, smoothed

    def snapshot(self) -> dict[str, Any]:
        """Everything needed to continue exactly where this detector is, as a small JSON dict."""
        from plugwatch.detect.snapshot import to_snapshot

        return to_snapshot(self)

    @classmethod
    def restore(cls, plug: str, settings: DetectorSettings, snap: dict[str, Any]) -> Detector:
        """A detector continuing from `snap` (from snapshot()); future output is identical.

        A snapshot of another version or a damaged one gives a fresh detector (state unknown,
        the next readings decide silently), so a restart never fails on it.
        """
        from plugwatch.detect.snapshot import from_snapshot

        detector = cls(plug, settings, announce_first=False)
        if not from_snapshot(detector, snap):
            detector = cls(plug, settings, announce_first=False)
        return detector

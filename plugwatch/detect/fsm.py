"""One plug's detector: moving average -> two Schmitt triggers -> dwell-confirmed state machine.

Pure: no clock, no I/O; time comes with each sample. `feed()` returns the events the sample caused.
Every state change the detector can make is one row of TRANSITIONS: where from, what triggers it,
the level that leads there, how long that level must hold, the reason and what happens to the run.
`Detector._enter` is the one place a row is applied; replay() (batch.py) and the tests read the
same table, and docs/detector.md shows it. "rule N" below is rule N of docs/detector.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from plugwatch.detect.levels import OFF, ON, STANDBY, LevelTracker
from plugwatch.detect.runs import RunMeter, interval_wh
from plugwatch.detect.smoothing import TimeAverage
from plugwatch.model import DetectorSettings, Event, ReadFailure, Reading, RunSummary, State
from plugwatch.model import Transition as T


class Trigger(StrEnum):
    """What makes a transition happen."""

    FIRST = "first reading"  # rule 7: the first reading decides at once
    LEVEL = "level held its dwell"  # rules 3-6: a level held for the dwell of its state
    RELAY_OFF = "relay off"  # rule 8: a reading with the relay open, at once
    FAILURES = "failures"  # rule 9: unreachable_after failures in a row
    RECOVERED = "a reading"  # rule 9: the first reading after unreachable decides at once


class RunEffect(StrEnum):
    """What a transition does to the run (rules 10, 11)."""

    NONE = "-"  # no run; a pending one (level on, not confirmed) is forgotten
    OPENS = "opens"  # the pending run becomes the run, from where the load first crossed (rule 5)
    ENDS_AT_DROP = "ends at the drop"  # where the level fell below on; the drop's tail is left out
    ENDS_HERE = "ends at this reading"  # everything up to the relay-off reading counts
    STAYS_OPEN = "stays open"  # unreachable while on: the plug may come back on
    GOES_ON = "goes on"  # back on after an outage (the outage unobserved); opens if none was open
    ENDS_AT_OUTAGE = "ends at the outage"  # back below on: ended where the plug became unreachable


@dataclass(frozen=True, slots=True)
class Edge:
    """One row of TRANSITIONS."""

    source: State
    trigger: Trigger
    level: int | None  # the level (levels.py) that leads to `target`; None: relay or failures
    target: State
    dwell: str | None  # the DetectorSettings field the level must hold for; None: at once
    reason: str
    run: RunEffect


_U, _O, _S, _N, _X = State.UNKNOWN, State.OFF, State.STANDBY, State.ON, State.UNREACHABLE
_F, _L, _R, _E, _B = (Trigger.FIRST, Trigger.LEVEL, Trigger.RELAY_OFF, Trigger.FAILURES,
                      Trigger.RECOVERED)
_DOFF, _DSTB, _DON = "dwell_off_s", "dwell_standby_s", "dwell_on_s"
_ = RunEffect

TRANSITIONS: tuple[Edge, ...] = (
    #    source trig level   target dwell  reason           run
    Edge(_U, _F, OFF,     _O, None,  "no_load",       _.NONE),
    Edge(_U, _F, STANDBY, _S, None,  "power",         _.NONE),
    Edge(_U, _F, ON,      _N, None,  "power",         _.OPENS),
    Edge(_O, _L, STANDBY, _S, _DSTB, "power",         _.NONE),
    Edge(_O, _L, ON,      _N, _DON,  "power",         _.OPENS),
    Edge(_S, _L, OFF,     _O, _DOFF, "no_load",       _.NONE),
    Edge(_S, _L, ON,      _N, _DON,  "power",         _.OPENS),
    Edge(_N, _L, STANDBY, _S, _DSTB, "power",         _.ENDS_AT_DROP),  # rule 6
    Edge(_N, _L, OFF,     _O, _DOFF, "no_load",       _.ENDS_AT_DROP),  # rule 6
    Edge(_U, _R, None,    _O, None,  "relay_off",     _.NONE),
    Edge(_S, _R, None,    _O, None,  "relay_off",     _.NONE),
    Edge(_N, _R, None,    _O, None,  "relay_off",     _.ENDS_HERE),
    Edge(_U, _E, None,    _X, None,  "read_failures", _.NONE),
    Edge(_O, _E, None,    _X, None,  "read_failures", _.NONE),
    Edge(_S, _E, None,    _X, None,  "read_failures", _.NONE),
    Edge(_N, _E, None,    _X, None,  "read_failures", _.STAYS_OPEN),
    Edge(_X, _B, OFF,     _O, None,  "recovered",     _.ENDS_AT_OUTAGE),
    Edge(_X, _B, STANDBY, _S, None,  "recovered",     _.ENDS_AT_OUTAGE),
    Edge(_X, _B, ON,      _N, None,  "recovered",     _.GOES_ON),
)
EDGES = {(e.source, e.trigger, e.target): e for e in TRANSITIONS}
# the state each level leads to (index: levels.OFF, STANDBY, ON), and each such state's dwell
LEVEL_STATES = tuple(e.target for e in sorted((e for e in TRANSITIONS if e.trigger is _F),
                                               key=lambda e: e.level or 0))
DWELLS = {e.target: e.dwell for e in TRANSITIONS if e.trigger is _L and e.dwell is not None}
# every Transition.reason the detector gives
REASONS = tuple(dict.fromkeys(e.reason for e in TRANSITIONS))
# A transition out of State.UNKNOWN is the first state decided for a plug (its reason is what
# decided it): announced once by a fresh detector, never by one restored after a restart.


def dwell_of(settings: DetectorSettings, state: State) -> float:
    """How long a level must hold before it becomes `state` (rule 3)."""
    return float(getattr(settings, DWELLS[state]))


@dataclass(slots=True)
class Drop:
    """State on, the level below on since `start` (smoothed `power` then), not confirmed yet.

    `back_on`: with ignore_pulses, when the level came back on after a stop of at least the on
    dwell; the drop is cancelled only once that return holds the on dwell (rule 6)."""

    start: float
    power: float
    back_on: float | None = None


class Detector:
    """The state of one plug, updated one sample at a time."""

    __slots__ = ("announce_first", "before_unreachable", "dip", "drop", "failures",
                 "first_failure", "held_until", "last", "last_power_w", "levels", "plug", "run",
                 "settings", "since", "state", "window")

    def __init__(self, plug: str, settings: DetectorSettings, announce_first: bool = True
                 ) -> None:
        self.plug = plug
        self.settings = settings
        self.announce_first = announce_first  # emit the first decided state (out of unknown)
        self.state = State.UNKNOWN
        self.since: float | None = None
        # the readings averaged now (time, W, counter) also date a level back to where it began
        self.window = TimeAverage(settings.window_s)
        self.levels = LevelTracker(settings)  # the level of the average, and when it began
        self.last_power_w: float | None = None  # smoothed power of the last reading
        self.last: tuple[float, float, float | None] | None = None  # ts, raw W, counter kWh
        self.failures = 0
        self.first_failure: float | None = None
        self.before_unreachable: State | None = None
        self.run: RunMeter | None = None  # open (state on) or pending (level on, not confirmed)
        self.drop: Drop | None = None  # state on, level below: the run may end there (rule 6)
        self.dip: float | None = None  # state below on, a pending run, level below since then
        # a state entered after its dwell lasts at least that dwell: the next change is never
        # dated before this time (None: the state came at once, by relay, outage or first reading)
        self.held_until: float | None = None

    def __repr__(self) -> str:
        b = self.levels.bands
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

    # -- readings -----------------------------------------------------------------------------

    def _reading(self, r: Reading) -> list[Event]:
        self.failures = 0
        wh = None
        gap: tuple[float, float] | None = None  # (last reading before, seconds unobserved)
        if self.last is not None:
            t0, p0, e0 = self.last
            wh = interval_wh(t0, p0, e0, r.ts, r.power_w, r.energy_kwh, self.settings.gap_s)
            if r.ts - t0 > self.settings.gap_s:
                self.window.reset()  # rule 1
                gap = (t0, r.ts - t0)
        self.last = (r.ts, r.power_w, r.energy_kwh)
        if self.state is State.UNREACHABLE:
            return self._recover(r, wh, gap)
        # rule 11: unobserved time never stretches a run: a plug on before a gap and below on
        # after it dropped at the last reading before the gap (the gap and its energy: the tail)
        gap_drop = (gap is not None and r.relay_on is not False and self.state is State.ON
                    and self.run is not None and self.run.tail is None)
        if self.run is not None and not gap_drop:
            self._count_interval(wh, gap)
        if r.relay_on is False:
            return self._relay_off(r)
        smoothed = self.window.add(r.ts, r.power_w, r.energy_kwh)
        self.last_power_w = smoothed
        self._set_level(r.ts, smoothed, gap[0] if gap_drop and gap is not None else None)
        if gap_drop and self.run is not None:
            self._count_interval(wh, gap)
        if self.run is not None:
            self.run.add_power(r.power_w, self.levels.level == ON and self.drop is None)
        return self._confirm(r.ts)

    def _count_interval(self, wh: float | None, gap: tuple[float, float] | None) -> None:
        assert self.run is not None
        self.run.add_energy(wh)
        if gap is not None:
            self.run.add_unobserved(gap[1])

    def _set_level(self, ts: float, smoothed: float, gap_from: float | None = None) -> None:
        """Rules 2 and 4: a new level of the average, dated back, for the run's bookkeeping."""
        previous, level = self.levels.level, self.levels.update(smoothed)
        if level is None:
            return
        back = self.levels.begin(self.window.items, level, smoothed)
        start = self.levels.start
        if self.state is State.ON:
            self._level_while_on(previous, level, start, smoothed, back, gap_from)
        else:
            self._level_while_below(previous, level, start, back)

    def _level_while_on(self, previous: int | None, level: int, start: float, smoothed: float,
                        back: int, gap_from: float | None) -> None:
        """Rule 6: a drop below on may end the run; a return to on cancels it (pulses aside)."""
        run, drop = self.run, self.drop
        assert run is not None
        if level == ON:
            assert drop is not None
            if self.settings.ignore_pulses and start - drop.start >= self.settings.dwell_on_s:
                drop.back_on = start  # a pulse after a stop: it must hold (_confirm)
            else:  # back on before the drop was confirmed: the run goes on
                run.merge_tail()
                self.drop = None
        elif previous == ON and drop is not None and drop.back_on is not None:
            drop.back_on = None  # a pulse shorter than the on dwell: the drop goes on
        elif previous == ON:  # dropped below on: measure apart from here, the run may end here
            run.start_tail()
            assert run.tail is not None
            for wh in self._recent_wh(back):  # the drop began `back` readings ago
                run.energy.add(-wh)
                run.tail.add(wh)
            self.drop = Drop(start if gap_from is None else gap_from, smoothed)

    def _level_while_below(self, previous: int | None, level: int, start: float, back: int
                           ) -> None:
        """Rule 5: an on level starts a pending run; a dip shorter than the on dwell keeps it."""
        if level == ON:
            if self.run is None or self.dip is None or start - self.dip >= self.settings.dwell_on_s:
                peak = max(item.watts for item in list(self.window.items)[-1 - back :])
                self.run = RunMeter(start=start, peak=peak)
                for wh in self._recent_wh(back):
                    self.run.energy.add(wh)
            self.dip = None
        elif previous == ON and self.run is not None:
            self.dip = start  # the pending run waits: the load may come back within the on dwell
        elif self.dip is None:
            self.run = None

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

    def _confirm(self, ts: float) -> list[Event]:
        """Rule 3: the level's state once the level has held its dwell (at once the first time)."""
        level = self.levels.level
        assert level is not None
        drop = self.drop
        if drop is not None and drop.back_on is not None and \
                ts - drop.back_on >= self.settings.dwell_on_s:
            assert self.run is not None  # on again for the on dwell: the drop is cancelled
            self.run.merge_tail()
            self.drop = drop = None
        target = LEVEL_STATES[level]
        if target is self.state:
            return []
        start, power = self.levels.start, self.levels.power
        if drop is not None:  # leaving on: timed from the drop (rule 6)
            start, power = drop.start, drop.power
        elif target is State.ON and self.run is not None:
            start = self.run.start  # where the load first crossed into on (rule 5)
        if self.held_until is not None:
            start = max(start, self.held_until)
        first = self.state is State.UNKNOWN
        if not first and ts - start < dwell_of(self.settings, target):
            return []
        return self._enter(target, Trigger.FIRST if first else Trigger.LEVEL, start, power)

    # -- the one place a transition happens ----------------------------------------------------

    def _enter(self, target: State, why: Trigger, stamp: float, power: float | None
               ) -> list[Event]:
        """Apply the row of TRANSITIONS from the current state to `target` by `why`, dated
        `stamp`, with the smoothed `power` then: the event (unless it is a first state of a
        restored detector), the run's end or start, and the new state."""
        edge = EDGES[self.state, why, target]
        events: list[Event] = []
        if self.announce_first or State.UNKNOWN not in (self.state, self.before_unreachable):
            events.append(T(self.plug, stamp, self.state, target, edge.reason, power))
        effect, run = edge.run, self.run
        if effect is RunEffect.OPENS and run is not None:
            run.start = stamp
        elif effect is RunEffect.ENDS_AT_DROP:
            events.append(self._close_run(stamp))
        elif effect is RunEffect.ENDS_HERE:
            assert run is not None
            run.merge_tail()
            events.append(self._close_run(stamp))
        elif effect is RunEffect.STAYS_OPEN and run is not None:
            run.merge_tail()
        elif effect is RunEffect.ENDS_AT_OUTAGE and run is not None:
            assert self.since is not None
            events.append(self._close_run(self.since))
        elif effect is RunEffect.GOES_ON and run is None:
            # the window restarted with this reading, so the smoothed power is the raw one
            assert power is not None
            self.run = RunMeter(start=stamp, peak=power)
        if effect not in (RunEffect.OPENS, RunEffect.STAYS_OPEN, RunEffect.GOES_ON):
            self.run = None
        self.held_until = None if edge.dwell is None else stamp + dwell_of(self.settings, target)
        self.before_unreachable = self.state if target is State.UNREACHABLE else None
        self.state, self.since, self.drop, self.dip = target, stamp, None, None
        return events

    # -- runs ------------------------------------------------------------------------------

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

    # -- relay, failures, recovery (rules 8, 9) ---------------------------------------------

    def _relay_off(self, r: Reading) -> list[Event]:
        self._reset_levels(r.ts, r.power_w)
        if self.state is State.OFF:
            self.run = self.dip = None  # a pending run is forgotten
            return []
        return self._enter(State.OFF, Trigger.RELAY_OFF, r.ts, r.power_w)

    def _reset_levels(self, ts: float, watts: float) -> None:
        """The relay is open: the average restarts and both triggers go low."""
        self.window.reset()
        self.levels.reset(ts, watts)
        self.last_power_w = watts

    def _failure(self, f: ReadFailure) -> list[Event]:
        self.failures += 1
        if self.failures == 1:
            self.first_failure = f.ts
        if self.failures < self.settings.unreachable_after or self.state is State.UNREACHABLE:
            return []
        start = self.first_failure if self.first_failure is not None else f.ts
        return self._enter(State.UNREACHABLE, Trigger.FAILURES, start, None)

    def _recover(self, r: Reading, wh: float | None, gap: tuple[float, float] | None
                 ) -> list[Event]:
        self.window.reset()
        if r.relay_on is False:
            self._reset_levels(r.ts, r.power_w)
            power = r.power_w
        else:
            power = self.window.add(r.ts, r.power_w, r.energy_kwh)
            self.last_power_w = power
            self.levels.set_now(r.ts, power)
        assert self.levels.level is not None
        target = LEVEL_STATES[self.levels.level]
        if self.run is not None and target is State.ON:  # open since before the outage
            self._count_interval(wh, gap)
            self.run.add_power(r.power_w, True)
        return self._enter(target, Trigger.RECOVERED, r.ts, power)

    # -- snapshots -------------------------------------------------------------------------

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

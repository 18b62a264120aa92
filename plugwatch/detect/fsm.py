"""One plug's detector: moving average, Schmitt-trigger levels, dwell-confirmed states and runs.

PURE: no I/O, no clock, no asyncio; time comes inside each sample. The rules (docs/detector.md):
- The first reading decides the state at once, silently (nothing is announced out of UNKNOWN).
- A level (off/standby/on) becomes the state after holding for that state's dwell; the transition
  is stamped when the level began. Reasons: "power" (to standby or on), "no_load" (to off).
- A reading with the relay open gives OFF at once, reason "relay_off".
- `unreachable_after` consecutive failures give UNREACHABLE stamped at the first one
  ("read_failures"); the next good reading gives its own level at once ("recovered").
- An ON spell is a run. Unreachable while ON keeps the run open: it continues if the plug comes
  back ON, else it ends where the plug was last known on.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from plugwatch.detect.levels import LEVEL_STATES, Bands, level_of, trigger
from plugwatch.model import (
    DetectorSettings,
    Event,
    ReadFailure,
    Reading,
    RunSummary,
    Sample,
    State,
    Transition,
)

SNAPSHOT_VERSION = 1
_FIELDS = (
    "since", "last_power_w", "_on_high", "_standby_high", "_level", "_level_since",
    "_level_power", "_level_energy", "_level_peak", "_last_ts", "_last_raw", "_last_counter",
    "_energy", "_failures", "_first_failure", "_run_start", "_run_energy0", "_run_peak",
    "_pending_end",
)


class Detector:
    """The state machine of one plug; feed it samples in time order, it returns the events."""

    def __init__(self, plug: str, settings: DetectorSettings) -> None:
        self.plug = plug
        self.settings = settings
        self._bands = Bands.of(settings)
        self._dwell = {State.OFF: settings.dwell_off_s, State.STANDBY: settings.dwell_standby_s,
                       State.ON: settings.dwell_on_s}
        self.state = State.UNKNOWN
        self.since: float | None = None  # when the current state began
        self.last_power_w: float | None = None  # the last smoothed power
        self._window: deque[float] = deque(maxlen=settings.window)
        self._on_high = self._standby_high = False
        self._level: int | None = None  # None: no level since start or since unreachable
        self._level_since = self._level_power = self._level_energy = self._level_peak = 0.0
        self._last_ts: float | None = None  # time, power and counter of the last good reading
        self._last_raw = 0.0
        self._last_counter: float | None = None
        self._energy = 0.0  # Wh measured since the detector was created (counter or integrated)
        self._failures = 0
        self._first_failure: float | None = None
        self._run_start: float | None = None  # set while a run is open
        self._run_energy0 = 0.0
        self._run_peak: float | None = None  # peak of the run's levels already left
        self._pending_end: list[float] | None = None  # [ts, energy, peak] where a run broke off

    def __repr__(self) -> str:
        b = self._bands
        return (f"<Detector {self.plug!r} {self.state} since {self.since} "
                f"standby {b.standby_lo}..{b.standby_hi} W, on {b.on_lo}..{b.on_hi} W>")

    def feed(self, sample: Sample) -> list[Event]:
        """Take one sample (in time order) and return the transitions and finished runs it causes.

        A sample older than the last good reading is ignored.
        """
        if isinstance(sample, ReadFailure):
            return self._failure(sample.ts)
        if self._last_ts is not None and sample.ts < self._last_ts:
            return []
        return self._reading(sample)

    def _failure(self, ts: float) -> list[Event]:
        self._failures += 1
        if self._failures == 1:
            self._first_failure = ts
        if self._failures < self.settings.unreachable_after or self.state is State.UNREACHABLE:
            return []
        start = self._first_failure if self._first_failure is not None else ts
        if self.state is State.ON:
            if self._level == LEVEL_STATES.index(State.ON):
                peak = _max(self._run_peak, self._level_peak)
                self._pending_end = [start, self._energy, peak]
            else:  # the load had already dropped (not yet confirmed): the run ended there
                peak = self._run_peak if self._run_peak is not None else self._level_peak
                self._pending_end = [self._level_since, self._level_energy, peak]
        previous = self.state
        self.state, self.since = State.UNREACHABLE, start
        self._window.clear()
        self._level = None
        if previous is State.UNKNOWN:
            return []
        return [Transition(self.plug, start, previous, State.UNREACHABLE, "read_failures", None)]

    def _reading(self, r: Reading) -> list[Event]:
        ts, power = r.ts, r.power_w
        gap = self._last_ts is not None and ts - self._last_ts > self.settings.gap_s
        self._energy += self._increment(r, gap)
        self._last_ts, self._last_raw, self._last_counter = ts, power, r.energy_kwh
        self._failures, self._first_failure = 0, None
        relay_off = r.relay_on is False
        if gap or relay_off:
            self._window.clear()
        self._window.append(power)
        total = 0.0
        for value in self._window:  # in order, like the batch path, for identical sums
            total += value
        smoothed = total / len(self._window)
        self.last_power_w = smoothed
        b = self._bands
        if relay_off:
            self._on_high = self._standby_high = False
        else:
            self._on_high = trigger(smoothed, b.on_lo, b.on_hi, self._on_high)
            self._standby_high = trigger(smoothed, b.standby_lo, b.standby_hi, self._standby_high)
        level = level_of(self._on_high, self._standby_high)
        target = LEVEL_STATES[level]
        if self.state is State.UNREACHABLE:
            return self._recover(ts, power, level, smoothed, relay_off)
        if relay_off and self.state not in (State.OFF, State.UNKNOWN):
            end = [ts, self._energy, _max(self._run_peak, self._level_peak)]
            self._new_level(level, ts, smoothed, power)
            return self._change(State.OFF, ts, "relay_off", smoothed, end)
        if level != self._level:
            if self.state is State.ON and self._level is not None:
                self._run_peak = _max(self._run_peak, self._level_peak)
            self._new_level(level, ts, smoothed, power)
        else:
            self._level_peak = max(self._level_peak, power)
        if self.state is State.UNKNOWN:  # the first decision: at once, never announced
            self.state, self.since = target, ts
            if target is State.ON:
                self._open_run(ts, self._energy)
            return []
        if target is self.state or ts - self._level_since < self._dwell[target]:
            return []
        end = [self._level_since, self._level_energy, self._run_peak or 0.0]
        reason = "no_load" if target is State.OFF else "power"
        return self._change(target, self._level_since, reason, self._level_power, end)

    def _increment(self, r: Reading, gap: bool) -> float:
        """Wh since the last reading: the plug's counter when both have one, else power x time."""
        if r.energy_kwh is not None and self._last_counter is not None:
            delta = r.energy_kwh - self._last_counter
            return (delta if delta >= 0 else r.energy_kwh) * 1000.0  # negative: counter reset
        if self._last_ts is None or gap:
            return 0.0
        return self._last_raw * (r.ts - self._last_ts) / 3600.0

    def _new_level(self, level: int, ts: float, smoothed: float, power: float) -> None:
        self._level, self._level_since, self._level_power = level, ts, smoothed
        self._level_energy, self._level_peak = self._energy, power

    def _open_run(self, start: float, energy0: float) -> None:
        self._run_start, self._run_energy0, self._run_peak = start, energy0, None

    def _change(
        self, target: State, ts: float, reason: str, power: float | None, end: list[float]
    ) -> list[Event]:
        """Announce the change to `target` at `ts`; close the run at `end` if leaving ON."""
        events: list[Event] = [Transition(self.plug, ts, self.state, target, reason, power)]
        if self.state is State.ON and self._run_start is not None:
            end_ts, end_energy, peak = end
            events.append(RunSummary(self.plug, self._run_start, end_ts,
                                     end_energy - self._run_energy0, peak))
            self._run_start = None
        if target is State.ON:
            self._open_run(ts, self._level_energy)
        self.state, self.since = target, ts
        return events

    def _recover(
        self, ts: float, power: float, level: int, smoothed: float, relay_off: bool
    ) -> list[Event]:
        """The first good reading after an unreachable spell: its level at once."""
        self._new_level(level, ts, smoothed, power)
        target = LEVEL_STATES[level]
        events: list[Event] = [Transition(self.plug, ts, State.UNREACHABLE, target,
                                          "relay_off" if relay_off else "recovered", smoothed)]
        pending, self._pending_end = self._pending_end, None
        if pending is not None and self._run_start is not None:
            if target is State.ON:  # the run goes on through the spell
                self._run_peak = pending[2]
            else:
                events.append(RunSummary(self.plug, self._run_start, pending[0],
                                          pending[1] - self._run_energy0, pending[2]))
                self._run_start = None
        if target is State.ON and self._run_start is None:
            self._open_run(ts, self._energy)
        self.state, self.since = target, ts
        return events

    def snapshot(self) -> dict[str, Any]:
        """The detector's whole state as a small JSON-able dict (see restore())."""
        snap: dict[str, Any] = {"v": SNAPSHOT_VERSION, "state": str(self.state),
                                "window": list(self._window)}
        for name in _FIELDS:
            snap[name.lstrip("_")] = getattr(self, name)
        return snap

    @classmethod
    def restore(cls, plug: str, settings: DetectorSettings, snap: dict[str, Any]) -> Detector:
        """A detector that continues exactly where the one that made `snap` stopped.

        An unreadable or foreign snapshot gives a fresh detector (the first reading decides).
        """
        detector = cls(plug, settings)
        if not isinstance(snap, dict) or snap.get("v") != SNAPSHOT_VERSION:
            return detector
        try:
            state = State(snap["state"])
            values = {name: snap[name.lstrip("_")] for name in _FIELDS}
            window = [float(v) for v in snap["window"]]
        except (KeyError, ValueError, TypeError):
            return detector
        detector.state = state
        for name, value in values.items():
            setattr(detector, name, value)
        detector._window.extend(window)
        return detector


def _max(a: float | None, b: float) -> float:
    return b if a is None else max(a, b)

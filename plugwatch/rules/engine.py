"""The rules engine (PURE): transitions and the passing of time in, alerts out.

No clock reads, no I/O: the caller passes `now`. Its whole memory (pending `for:` timers, `repeat:`
schedules, cooldowns, when each plug entered its state) is a JSON-able snapshot, which the service
stores in the same transaction as the alerts, so a restart neither forgets a timer nor re-fires.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from plugwatch.model import Event, RunSummary, State, Transition
from plugwatch.rules.alert import Alert, dedupe_key
from plugwatch.rules.model import Rule
from plugwatch.rules.quiet import quiet_until
from plugwatch.rules.templates import context, render_title_body

SNAPSHOT_VERSION = 1


@dataclass
class _Episode:
    """A rule triggered for a plug and not finished: a pending `for:` or a `repeat:` schedule."""

    rule: str
    plug: str
    trigger: Transition
    run: RunSummary | None
    from_s: float | None  # time spent in the `from` state
    fire_at: float
    n: int = 0  # repeat number of the next alert (0 = the first alert)

    def to_json(self) -> dict[str, Any]:
        t = self.trigger
        return {
            "rule": self.rule, "plug": self.plug, "from_s": self.from_s,
            "fire_at": self.fire_at, "n": self.n,
            "trigger": [t.ts, t.from_state.value, t.to_state.value, t.reason, t.power_w],
            "run": None if self.run is None else [self.run.start, self.run.end,
                                                 self.run.energy_wh, self.run.peak_w,
                                                 self.run.cost, self.run.currency],
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> _Episode:
        ts, from_state, to_state, reason, power = d["trigger"]
        t = Transition(d["plug"], ts, State(from_state), State(to_state), reason, power)
        run = None if d["run"] is None else RunSummary(d["plug"], *d["run"])
        return cls(d["rule"], d["plug"], t, run, d["from_s"], d["fire_at"], d["n"])


class RulesEngine:
    """Matches transitions against rules and keeps the timers of `for:`, `repeat:`, `cooldown:`."""

    def __init__(
        self, rules: Sequence[Rule], plug_tags: Mapping[str, Iterable[str]] | None = None,
        default_tz: str = "UTC",
    ) -> None:
        self.rules = {rule.name: rule for rule in rules}
        self._tags = {plug: frozenset(tags) for plug, tags in (plug_tags or {}).items()}
        self._default_tz = ZoneInfo(default_tz)
        self._since: dict[str, float] = {}  # plug -> when it entered its current state
        self._last_fired: dict[tuple[str, str], float] = {}  # (rule, plug) -> time of alert #0
        self._episodes: dict[tuple[str, str], _Episode] = {}

    def __repr__(self) -> str:
        return f"RulesEngine(rules={list(self.rules)}, pending={len(self._episodes)})"

    def on_transition(
        self, t: Transition, run: RunSummary | None = None, now: float | None = None
    ) -> list[Alert]:
        """Alerts caused by `t` (confirmed at `now`, default t.ts); `run` = the run `t` ended."""
        now = t.ts if now is None else now
        previous = self._since.get(t.plug)
        self._since[t.plug] = t.ts
        for rule in self.rules.values():  # O(rules), not O(pending timers of every plug)
            if t.to_state not in rule.when.to:
                # the plug left the state: its `for:`/`repeat:` is cancelled
                self._episodes.pop((rule.name, t.plug), None)
        from_s = t.ts - previous if previous is not None else None
        if run is not None and t.from_state is State.ON:
            from_s = run.duration_s
        started = []
        for rule in self.rules.values():
            key = (rule.name, t.plug)
            if key in self._episodes or not rule.selects(t.plug, self._tags.get(t.plug, set())):
                continue
            if not rule.when.matches(t.from_state, t.to_state):
                continue
            if rule.when.min_duration > 0 and (from_s is None or from_s < rule.when.min_duration):
                continue
            self._episodes[key] = _Episode(rule.name, t.plug, t, run, from_s, t.ts + rule.for_)
            started.append(key)
        return self._fire([k for k in started if self._episodes[k].fire_at <= now], now)

    def due(self, now: float) -> list[Alert]:
        """Alerts whose `for:` or `repeat:` time has come by `now`."""
        return self._fire([k for k, e in self._episodes.items() if e.fire_at <= now], now)

    def next_due(self) -> float | None:
        """When `due` will next have something to fire (None: nothing pending)."""
        return min((e.fire_at for e in self._episodes.values()), default=None)

    def on_events(self, events: Sequence[Event], now: float) -> list[Alert]:
        """Alerts for a batch of detector events; a RunSummary goes with its on->x transition."""
        runs = {(e.plug, e.end): e for e in events if isinstance(e, RunSummary)}
        alerts: list[Alert] = []
        for event in events:
            if isinstance(event, Transition):
                run = runs.get((event.plug, event.ts)) if event.from_state is State.ON else None
                if run is None and event.from_state is State.ON:
                    run = next((r for r in runs.values() if r.plug == event.plug), None)
                alerts.extend(self.on_transition(event, run, now))
        return alerts + self.due(now)

    def _fire(self, keys: list[tuple[str, str]], now: float) -> list[Alert]:
        alerts: list[Alert] = []
        for key in keys:
            episode = self._episodes[key]
            rule = self.rules[episode.rule]
            if episode.n == 0:
                last = self._last_fired.get(key)
                if last is not None and now - last < rule.cooldown:
                    del self._episodes[key]  # still cooling down from the previous alert
                    continue
                self._last_fired[key] = now
            alerts.extend(self._alerts(rule, episode, now))
            self._schedule_next(key, rule, episode, now)
        return alerts

    def _schedule_next(self, key: tuple[str, str], rule: Rule, ep: _Episode, now: float) -> None:
        if rule.repeat is None:
            del self._episodes[key]
            return
        skipped = math.floor((now - ep.fire_at) / rule.repeat) + 1  # missed slots are skipped
        ep.n += max(1, skipped)
        ep.fire_at += rule.repeat * max(1, skipped)
        if rule.max_repeats is not None and ep.n > rule.max_repeats:
            del self._episodes[key]

    def _alerts(self, rule: Rule, ep: _Episode, now: float) -> list[Alert]:
        tz = self._zone(rule)
        ctx = context(rule.name, ep.trigger, ep.run, ep.from_s, now, ep.n, tz)
        title, body = render_title_body(rule.title, rule.body, ctx)
        due_at, status = now, "pending"
        if rule.quiet_hours is not None:
            until = quiet_until(rule.quiet_hours, now, tz)
            if until is not None and rule.quiet_hours.action == "drop":
                status = "dropped"
            elif until is not None:
                due_at = until
        return [
            Alert(dedupe_key(rule.name, ep.plug, target, ep.trigger.ts, ep.n), rule.name,
                  ep.plug, target, title, body, now, due_at, status)
            for target in rule.notify
        ]

    def _zone(self, rule: Rule) -> ZoneInfo:
        if rule.quiet_hours is not None and rule.quiet_hours.tz:
            return ZoneInfo(rule.quiet_hours.tz)
        return self._default_tz

    def snapshot(self) -> dict[str, Any]:
        """The engine's whole memory as JSON-able data (see `restore`)."""
        return {
            "version": SNAPSHOT_VERSION,
            "since": dict(self._since),
            "last_fired": [[r, p, ts] for (r, p), ts in self._last_fired.items()],
            "episodes": [e.to_json() for e in self._episodes.values()],
        }

    @classmethod
    def restore(
        cls, rules: Sequence[Rule], snap: Mapping[str, Any] | None,
        plug_tags: Mapping[str, Iterable[str]] | None = None, default_tz: str = "UTC",
    ) -> RulesEngine:
        """An engine for `rules` continuing from `snap`; timers of removed rules are dropped."""
        engine = cls(rules, plug_tags, default_tz)
        if not snap or snap.get("version") != SNAPSHOT_VERSION:
            return engine
        engine._since = {p: float(ts) for p, ts in snap["since"].items()}
        engine._last_fired = {(r, p): ts for r, p, ts in snap["last_fired"] if r in engine.rules}
        for d in snap["episodes"]:
            if d["rule"] in engine.rules:
                engine._episodes[(d["rule"], d["plug"])] = _Episode.from_json(d)
        return engine


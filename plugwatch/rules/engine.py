"""The rules engine (PURE): transitions, runs and the passing of time in, alerts out.

No clock reads, no I/O: the caller passes `now`, the silences in force and the acknowledgements.
Its whole memory (episodes with their `for:`/`repeat:` timers, groups waiting to send, cooldowns,
duty-cycle spans, the last runs) is a JSON-able snapshot, which the service stores in the same
transaction as the alerts, so a restart neither forgets a timer nor fires one twice.

Order of checks when an alert's time comes: cooldown (first alerts only), silence (recorded as
`silenced`, sent when the silence ends if still active), inhibition by `unless:` (recorded as
`inhibited`, sent when the inhibiting alert resolves), then grouping (`group_by`), quiet hours.

Several instances sharing the plugs (service.cluster) keep the state per plug instead:
`plug_snapshots(plugs)` is each plug's own part, `adopt(snaps, now)` takes plugs over from another
engine (their timers keep their deadlines) and `forget(plugs)` lets them go. Groups and
inhibitions across plugs are formed by each engine among the plugs it holds.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from zoneinfo import ZoneInfo

from plugwatch.formatting import format_duration
from plugwatch.model import Event, RunSummary, State, Transition
from plugwatch.rules.alert import Alert
from plugwatch.rules.conditions import OnSpans, usual_range
from plugwatch.rules.controls import Ack, Silence, silenced_until
from plugwatch.rules.episodes import Episode, Group
from plugwatch.rules.messages import episode_alerts, group_alerts, suppressed_alerts
from plugwatch.rules.model import Rule, TagSelector
from plugwatch.rules.timers import Timers

SNAPSHOT_VERSION = 2
Key = tuple[str, str]  # (rule, plug)
MAX_PASSES = 20  # due(): timers that schedule timers at `now` settle within a few passes


class RulesEngine:
    """Matches transitions and conditions against rules; keeps every timer, group and ack."""

    def __init__(
        self, rules: Sequence[Rule], plug_tags: Mapping[str, Iterable[str]] | None = None,
        default_tz: str = "UTC",
    ) -> None:
        self.rules = {rule.name: rule for rule in rules}
        self._tags = {plug: frozenset(tags) for plug, tags in (plug_tags or {}).items()}
        self._default_tz = ZoneInfo(default_tz)
        self._since: dict[str, float] = {}  # plug -> when it entered its current state
        self._state: dict[str, State] = {}
        self._last_fired: dict[Key, float] = {}  # (rule, plug) -> time of its first alert
        self._episodes: dict[Key, Episode] = {}
        self._groups: dict[Key, Group] = {}  # (rule, group key)
        self._timers: Timers[tuple[str, str, str]] = Timers()  # ("e"|"g"|"d", rule, name)
        self._active: dict[str, set[str]] = {}  # rule -> plugs whose alert is active
        self._spans: dict[str, OnSpans] = {}  # plugs watched by duty-cycle rules
        self._last_run: dict[str, float] = {}  # plug -> when its last run ended
        self._runs: dict[str, deque[tuple[float, float]]] = {}  # plug -> (duration, energy)
        self.silences: list[Silence] = []  # in force; set by the caller before due()
        self.acks_seen = 0  # the highest Ack.id applied
        self.changes = 0  # bumped on every change worth storing
        self._dependents: dict[str, list[tuple[str, bool]]] = {}  # inhibitor -> (rule, same)
        for rule in rules:
            for u in rule.unless:
                self._dependents.setdefault(u.rule, []).append((rule.name, u.same_plug))
        self._runs_kept = max((r.when.unusual_run.last for r in rules
                               if r.when.unusual_run is not None), default=0)
        self._span_kept = max((r.when.duty_cycle.over for r in rules
                               if r.when.duty_cycle is not None), default=0.0)

    def __repr__(self) -> str:
        return (f"RulesEngine(rules={list(self.rules)}, episodes={len(self._episodes)}, "
                f"timers={len(self._timers)})")

    # -- input ------------------------------------------------------------------------------

    def on_transition(
        self, t: Transition, run: RunSummary | None = None, now: float | None = None,
    ) -> list[Alert]:
        """Alerts caused by `t` (confirmed at `now`, default t.ts); `run` = the run `t` ended."""
        now = t.ts if now is None else now
        self.changes += 1
        plug = t.plug
        previous = self._since.get(plug)
        self._since[plug], self._state[plug] = t.ts, t.to_state
        self._follow(t)
        for rule in self.rules.values():  # O(rules), not O(pending timers of every plug)
            key = (rule.name, plug)
            ep = self._episodes.get(key)
            if ep is None:
                continue
            kind = rule.when.kind
            if (kind == "no_run_for" and t.to_state is State.ON) or (
                    kind in ("transition", "unusual_run") and t.to_state not in rule.when.states):
                self._resolve(key, now)  # the plug left the state: resolved
            elif rule.ack_when and t.to_state in rule.ack_when and ep.active_at is not None:
                self._acknowledge(ep, t.ts)  # the appliance's own next state acknowledges
        from_s = t.ts - previous if previous is not None else None
        if run is not None and t.from_state is State.ON:
            from_s = run.duration_s
        started = []
        for rule in self.rules.values():
            key = (rule.name, plug)
            if rule.when.kind not in ("transition", "unusual_run"):
                continue
            if not rule.when.matches(t.from_state, t.to_state) or not self._selects(rule, plug):
                continue
            existing = self._episodes.get(key)
            if existing is not None and existing.live:
                continue
            if rule.when.min_duration > 0 and (from_s is None or from_s < rule.when.min_duration):
                continue
            facts = None
            if rule.when.unusual_run is not None:
                facts = self._unusual(rule, run)
                if facts is None:
                    continue
            if existing is not None:
                self._resolve(key, now)  # done with its alerts: a new trigger starts afresh
            self._start(Episode(rule.name, plug, t, run, from_s, t.ts + rule.for_, facts=facts))
            started.append(key)
        if run is not None and self._runs_kept:
            self._runs.setdefault(plug, deque(maxlen=self._runs_kept)).append(
                (run.duration_s, run.energy_wh))
        return self._fire([k for k in started if (self._episodes[k].fire_at or math.inf) <= now],
                          now)

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

    def acknowledge(self, ack: Ack) -> list[Key]:
        """Stop the reminders of every active alert `ack` covers that fired by `ack.ts`."""
        self.acks_seen = max(self.acks_seen, ack.id)
        self.changes += 1
        done = []
        for key, ep in list(self._episodes.items()):
            if (ack.matches(*key) and ep.active_at is not None and ep.active_at <= ack.ts
                    and ep.acked_at is None):
                self._acknowledge(ep, ack.ts)
                done.append(key)
        return done

    def watch(self, plugs: Iterable[str], now: float,
              last_run_ends: Mapping[str, float] | None = None) -> None:
        """Start the condition rules' watch of `plugs` (the ones this engine samples): duty
        cycle checks, and `no_run_for:` from each plug's last run (`last_run_ends`, from the
        database; `now` for a plug never seen running)."""
        plugs = list(plugs)
        for plug in plugs:
            if plug not in self._last_run:
                self._last_run[plug] = (last_run_ends or {}).get(plug, now)
            self._arm_no_run(plug)
        self._watch_duty(plugs, now)

    def note_runs(self, plug: str, runs: Sequence[RunSummary]) -> None:
        """Seed `unusual_run:` rules with a plug's earlier runs (oldest first), if none known."""
        if self._runs_kept and plug not in self._runs:
            self._runs[plug] = deque(((r.duration_s, r.energy_wh) for r in runs),
                                     maxlen=self._runs_kept)

    # -- time -------------------------------------------------------------------------------

    def due(self, now: float) -> list[Alert]:
        """Alerts whose time (`for:`, `repeat:`, a group's wait, a duty check) came by `now`."""
        alerts: list[Alert] = []
        for _ in range(MAX_PASSES):
            keys = self._timers.pop_due(now)
            if not keys:
                break
            for kind, rule, name in keys:
                if kind == "e":
                    alerts.extend(self._fire([(rule, name)], now))
                elif kind == "g":
                    alerts.extend(self._flush((rule, name), now))
                else:
                    alerts.extend(self._check_duty(rule, name, now))
        return alerts

    def next_due(self) -> float | None:
        """When `due` will next have something to do (None: nothing pending)."""
        return self._timers.next()

    # -- episodes ---------------------------------------------------------------------------

    def _selects(self, rule: Rule, plug: str) -> bool:
        return rule.selects(plug, self._tags.get(plug, frozenset()))

    def _start(self, ep: Episode) -> None:
        self._episodes[(ep.rule, ep.plug)] = ep
        self._timers.at(("e", ep.rule, ep.plug), ep.fire_at)

    def _resolve(self, key: Key, now: float) -> None:
        """The alert's condition ended: forget it, let what it inhibited go."""
        ep = self._episodes.pop(key, None)
        if ep is None:
            return
        self.changes += 1
        self._timers.cancel(("e", *key))
        self._active.get(key[0], set()).discard(key[1])
        self._leave_group(*key)
        self._release(key[0], key[1], now)

    def _leave_group(self, name: str, plug: str) -> None:
        """`plug`'s alert of rule `name` leaves its group; an empty group is done."""
        rule = self.rules[name]
        if rule.wait:
            gkey = (rule.name, self._group_key(rule, plug))
            group = self._groups.get(gkey)
            if group is not None:
                group.members = [p for p in group.members if p != plug]
                group.pending = [p for p in group.pending if p != plug]
                if not group.members:
                    del self._groups[gkey]
                    self._timers.cancel(("g", *gkey))

    def _acknowledge(self, ep: Episode, ts: float) -> None:
        ep.acked_at, ep.fire_at, ep.held = ts, None, None
        self._timers.cancel(("e", ep.rule, ep.plug))
        if ep.grouped:
            ep.grouped = False
            rule = self.rules[ep.rule]
            group = self._groups.get((rule.name, self._group_key(rule, ep.plug)))
            if group is not None:
                group.pending = [p for p in group.pending if p != ep.plug]
        self.changes += 1

    def _inhibitor(self, rule: Rule, plug: str) -> str | None:
        for u in rule.unless:
            plugs = self._active.get(u.rule, set())
            if (plug in plugs) if u.same_plug else bool(plugs):
                return u.rule
        return None

    def _release(self, inhibitor: str, plug: str, now: float) -> None:
        """Episodes held by `inhibitor`'s alert of `plug` may send now, unless another holds."""
        for name, same_plug in self._dependents.get(inhibitor, []):
            for (r, p), ep in list(self._episodes.items()):
                if r != name or ep.held != inhibitor or (same_plug and p != plug):
                    continue
                ep.held = self._inhibitor(self.rules[name], p)
                if ep.held is None:
                    ep.fire_at = now
                    self._timers.at(("e", r, p), now)

    def _fire(self, keys: list[Key], now: float) -> list[Alert]:
        alerts: list[Alert] = []
        for key in keys:
            ep = self._episodes.get(key)
            if ep is None or ep.fire_at is None:
                continue
            rule = self.rules[ep.rule]
            if ep.active_at is None:
                last = self._last_fired.get(key)
                if last is not None and now - last < rule.cooldown:
                    self._episodes.pop(key)  # still cooling down from the previous alert
                    self._timers.cancel(("e", *key))
                    continue
                self._last_fired[key] = now
                ep.active_at = now
                self._active.setdefault(rule.name, set()).add(ep.plug)
            self.changes += 1
            tz = self._zone(rule)
            until = silenced_until(self.silences, rule.name, ep.plug,
                                   self._tags.get(ep.plug, ()), now)
            if until is not None:
                alerts.extend(suppressed_alerts(rule, ep, now, tz, "silenced", until))
                ep.fire_at = until  # sent when the silence ends, if still active then
                self._timers.at(("e", *key), until)
                continue
            ep.held = self._inhibitor(rule, ep.plug)
            if ep.held is not None:
                alerts.extend(suppressed_alerts(rule, ep, now, tz, "inhibited", None))
                ep.fire_at = None  # sent when the inhibiting alert resolves, if still active
                self._timers.cancel(("e", *key))
                continue
            if rule.wait:
                self._join(rule, ep, now)
                continue
            alerts.extend(episode_alerts(rule, ep, now, tz))
            self._schedule_next(rule, ep, ep.fire_at, now)
        return alerts

    def _schedule_next(self, rule: Rule, ep: Episode, was_due: float, now: float) -> None:
        """After an alert: the next reminder, skipping slots missed while stopped."""
        skipped = max(1, math.floor((now - was_due) / rule.repeat) + 1) if rule.repeat else 1
        ep.n += skipped
        done = (rule.repeat is None or ep.acked_at is not None
                or (rule.max_repeats is not None and ep.n > rule.max_repeats))
        ep.fire_at = None if done else was_due + rule.repeat * skipped  # type: ignore[operator]
        self._timers.at(("e", ep.rule, ep.plug), ep.fire_at)

    # -- groups -----------------------------------------------------------------------------

    def _group_key(self, rule: Rule, plug: str) -> str:
        if rule.group_by == "rule":
            return "*"
        tags = self._tags.get(plug, frozenset())
        if isinstance(rule.plugs, TagSelector):
            chosen = [t for t in rule.plugs.tags if t in tags]
            if chosen:
                return chosen[0]
        return sorted(tags)[0] if tags else f"plug:{plug}"

    def _join(self, rule: Rule, ep: Episode, now: float, at: float | None = None) -> None:
        """Put `ep` in its group's next message, sent at `at` (default: after the rule's
        wait for a first alert, at once for a reminder) or earlier if the group is due sooner."""
        gkey = (rule.name, self._group_key(rule, ep.plug))
        group = self._groups.get(gkey)
        if group is None:
            group = self._groups[gkey] = Group(rule.name, gkey[1], opened_at=now)
        if ep.plug not in group.members:
            group.members.append(ep.plug)
        if ep.plug not in group.pending:
            group.pending.append(ep.plug)
        ep.grouped, ep.fire_at = True, None
        self._timers.cancel(("e", rule.name, ep.plug))
        if at is None:  # reminders go with the next message
            at = now + rule.wait if ep.n == 0 else now
        if group.flush_at is None or at < group.flush_at:
            group.flush_at = at
            self._timers.at(("g", *gkey), at)

    def _flush(self, gkey: Key, now: float) -> list[Alert]:
        group = self._groups.get(gkey)
        if group is None:
            return []
        rule = self.rules[gkey[0]]
        members = [self._episodes[(rule.name, p)] for p in group.pending
                   if (rule.name, p) in self._episodes]
        group.pending, group.flush_at = [], None
        if not members:
            return []
        alerts = group_alerts(rule, group, members, now, self._zone(rule))
        group.seq += 1
        self.changes += 1
        for ep in members:
            ep.grouped = False
            self._schedule_next(rule, ep, now, now)  # reminders of a group stay together
        return alerts

    # -- conditions -------------------------------------------------------------------------

    def _follow(self, t: Transition) -> None:
        """Keep the figures condition rules need: on spans, the end of the last run."""
        if self._span_kept:
            self._watch_duty([t.plug], t.ts)
        if self._span_kept and (t.to_state is State.ON or t.from_state is State.ON) and any(
                r.when.duty_cycle is not None and self._selects(r, t.plug)
                for r in self.rules.values()):
            spans = self._spans.setdefault(t.plug, OnSpans())
            spans.leave_on(t.ts) if t.from_state is State.ON else spans.enter_on(t.ts)
            spans.forget_before(t.ts - self._span_kept)
        if t.from_state is State.ON:
            self._last_run[t.plug] = t.ts
            self._arm_no_run(t.plug)

    def _arm_no_run(self, plug: str) -> None:
        """Start each `no_run_for:` rule's wait for `plug` from the end of its last run."""
        if self._state.get(plug) is State.ON:
            return
        ended = self._last_run.get(plug)
        for rule in self.rules.values():
            if (rule.when.no_run_for is None or ended is None or not self._selects(rule, plug)
                    or (rule.name, plug) in self._episodes):
                continue
            state = self._state.get(plug, State.UNKNOWN)
            trigger = Transition(plug, ended, State.ON, state, "no_run", None)
            self._start(Episode(rule.name, plug, trigger, None, None,
                                ended + rule.when.no_run_for + rule.for_,
                                facts={"last_run": ended}))

    def _unusual(self, rule: Rule, run: RunSummary | None) -> dict[str, Any] | None:
        """The facts of an unusual run (None: no run, too few earlier runs, or usual)."""
        spec = rule.when.unusual_run
        if spec is None or run is None:
            return None
        history = list(self._runs.get(run.plug, ()))[-spec.last:]
        if len(history) < spec.min_runs:
            return None
        column = 0 if spec.by == "duration" else 1
        low, median, high = usual_range([h[column] for h in history], spec.spread)
        value = run.duration_s if spec.by == "duration" else run.energy_wh
        if low <= value <= high:
            return None
        show = format_duration if spec.by == "duration" else (lambda wh: f"{wh:.0f} Wh")
        return {"usual": {"by": spec.by, "value": value, "low": max(0.0, low), "median": median,
                          "high": high, "runs": len(history),
                          "text": f"{show(max(0.0, low))} to {show(high)}",
                          "direction": "more" if value > high else "less"}}

    def _watch_duty(self, plugs: Iterable[str], now: float) -> None:
        for rule in self.rules.values():
            if rule.when.duty_cycle is None:
                continue
            for plug in plugs:
                if self._selects(rule, plug) and ("d", rule.name, plug) not in self._timers:
                    self._timers.at(("d", rule.name, plug), now + rule.when.duty_cycle.check_every)

    def _check_duty(self, name: str, plug: str, now: float) -> list[Alert]:
        rule = self.rules.get(name)
        if rule is None or rule.when.duty_cycle is None:
            return []
        spec = rule.when.duty_cycle
        self._timers.at(("d", name, plug), now + spec.check_every)
        share = self._spans.get(plug, OnSpans()).share(now, spec.over) * 100
        key = (name, plug)
        ep = self._episodes.get(key)
        facts = {"duty": {"percent": round(share, 1), "above": spec.above,
                          "over": format_duration(spec.over)}}
        if share <= spec.above:
            if ep is not None:
                self._resolve(key, now)
            return []
        if ep is not None:
            ep.facts = facts  # reminders show the share as it is now
            return []
        state = self._state.get(plug, State.UNKNOWN)
        trigger = Transition(plug, now, state, state, "duty_cycle", None)
        self._start(Episode(name, plug, trigger, None, None, now + rule.for_, facts=facts))
        return self._fire([key], now) if rule.for_ == 0 else []

    # -- views ------------------------------------------------------------------------------

    def _zone(self, rule: Rule) -> ZoneInfo:
        if rule.quiet_hours is not None and rule.quiet_hours.tz:
            return ZoneInfo(rule.quiet_hours.tz)
        return self._default_tz

    def active(self) -> list[dict[str, Any]]:
        """Every alert whose time has come and that is not resolved, for people and the CLI."""
        rows = []
        for (rule, plug), ep in sorted(self._episodes.items()):
            if ep.active_at is None:
                continue
            rows.append({"rule": rule, "plug": plug, "id": f"{rule}/{plug}",
                         "since": ep.trigger.ts, "fired_at": ep.active_at, "sent": ep.n,
                         "next": ep.fire_at, "acked_at": ep.acked_at, "held_by": ep.held})
        return rows

    def snapshot(self) -> dict[str, Any]:
        """The engine's whole memory as JSON-able data (see `restore`)."""
        return {
            "version": SNAPSHOT_VERSION,
            "since": dict(self._since),
            "state": {p: s.value for p, s in self._state.items()},
            "last_fired": [[r, p, ts] for (r, p), ts in self._last_fired.items()],
            "episodes": [e.to_json() for e in self._episodes.values()],
            "groups": [g.to_json() for g in self._groups.values()],
            "duty_checks": [[r, p, ts] for (k, r, p), ts in self._timers if k == "d"],
            "spans": {p: s.to_json() for p, s in self._spans.items()},
            "last_run": dict(self._last_run),
            "runs": {p: [list(r) for r in runs] for p, runs in self._runs.items()},
            "acks_seen": self.acks_seen,
        }

    @classmethod
    def restore(
        cls, rules: Sequence[Rule], snap: Mapping[str, Any] | None,
        plug_tags: Mapping[str, Iterable[str]] | None = None, default_tz: str = "UTC",
    ) -> RulesEngine:
        """An engine for `rules` continuing from `snap`; state of removed rules is dropped."""
        engine = cls(rules, plug_tags, default_tz)
        if not snap or snap.get("version") not in (1, SNAPSHOT_VERSION):
            return engine
        known = engine.rules
        engine._load(snap)
        for d in snap.get("groups", []):
            if d["rule"] in known and known[d["rule"]].wait:
                group = Group.from_json(d)
                engine._groups[(group.rule, group.key)] = group
                engine._timers.at(("g", group.rule, group.key), group.flush_at)
        engine.acks_seen = int(snap.get("acks_seen", 0))
        return engine

    def _load(self, snap: Mapping[str, Any]) -> list[Episode]:
        """Add the per-plug parts of `snap` (all but groups and acks_seen) to this engine, with
        their timers; the episodes added. State of rules this engine lacks is dropped."""
        known = self.rules
        self._since.update({p: float(ts) for p, ts in snap["since"].items()})
        self._state.update({p: State(s) for p, s in snap.get("state", {}).items()})
        self._last_fired.update({(r, p): ts for r, p, ts in snap["last_fired"] if r in known})
        episodes = [Episode.from_json(d) for d in snap["episodes"] if d["rule"] in known]
        for ep in episodes:
            self._start(ep)
            if ep.active_at is not None:
                self._active.setdefault(ep.rule, set()).add(ep.plug)
        for r, p, ts in snap.get("duty_checks", []):
            if r in known and known[r].when.duty_cycle is not None:
                self._timers.at(("d", r, p), ts)
        self._spans.update({p: OnSpans.from_json(s) for p, s in snap.get("spans", {}).items()})
        self._last_run.update({p: float(ts) for p, ts in snap.get("last_run", {}).items()})
        if self._runs_kept:
            self._runs.update({p: deque((tuple(r) for r in runs), maxlen=self._runs_kept)
                               for p, runs in snap.get("runs", {}).items()})
        return episodes

    # -- plugs moving between engines (several instances share the plugs) -----------------

    def plug_snapshots(self, plugs: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Each of `plugs`' own state, in the snapshot format plus "plug" (what `adopt` takes):
        its episodes with their timers, cooldowns, duty-cycle spans and checks, last runs.
        Groups are this engine's own: an episode waiting in one carries, in "waiting", the
        time its group was to send. Costs O(rules) per plug, whatever else the engine holds."""
        return {plug: self._plug_snapshot(plug) for plug in plugs}

    def _plug_snapshot(self, p: str) -> dict[str, Any]:
        episodes = [ep for r in self.rules if (ep := self._episodes.get((r, p))) is not None]
        waiting = []
        for ep in episodes:
            if ep.grouped:
                group = self._groups.get((ep.rule, self._group_key(self.rules[ep.rule], p)))
                waiting.append([ep.rule, None if group is None else group.flush_at])
        return {
            "version": SNAPSHOT_VERSION, "plug": p,
            "since": {p: self._since[p]} if p in self._since else {},
            "state": {p: self._state[p].value} if p in self._state else {},
            "last_fired": [[r, p, self._last_fired[(r, p)]] for r in self.rules
                           if (r, p) in self._last_fired],
            "episodes": [ep.to_json() for ep in episodes], "waiting": waiting,
            "duty_checks": [[r, p, ts] for r in self.rules
                            if (ts := self._timers.get(("d", r, p))) is not None],
            "spans": {p: self._spans[p].to_json()} if p in self._spans else {},
            "last_run": {p: self._last_run[p]} if p in self._last_run else {},
            "runs": {p: [list(r) for r in self._runs[p]]} if p in self._runs else {},
            "acks_seen": self.acks_seen,
        }

    def adopt(self, snaps: Iterable[Mapping[str, Any]], now: float) -> None:
        """Take over plugs from `plug_snapshots` of another engine (what this one knew of them
        is replaced). Their timers keep their deadlines: one that passed meanwhile fires at the
        next `due`, reminders skip the slots missed. An alert that was waiting in a group joins
        this engine's group of the same key, sent no later than it was to be; one held by an
        alert of a plug this engine does not hold is let go (see `forget`)."""
        snaps = [s for s in snaps if s.get("version") in (1, SNAPSHOT_VERSION)]
        self._drop([s["plug"] for s in snaps])
        adopted: list[tuple[Episode, float | None]] = []
        for snap in snaps:
            waiting = {r: at for r, at in snap.get("waiting", [])}
            adopted += [(ep, waiting.get(ep.rule)) for ep in self._load(snap)]
        self.changes += 1
        for ep, at in adopted:
            rule = self.rules[ep.rule]
            if ep.grouped:
                ep.grouped = False
                if rule.wait:
                    self._join(rule, ep, now, now if at is None else at)
                else:  # the rule no longer groups: it sends alone, now
                    ep.fire_at = now
                    self._timers.at(("e", ep.rule, ep.plug), now)
            elif ep.held is not None:
                ep.held = self._inhibitor(rule, ep.plug)
                if ep.held is None:
                    ep.fire_at = now
                    self._timers.at(("e", ep.rule, ep.plug), now)

    def forget(self, plugs: Iterable[str], now: float) -> None:
        """Let go of `plugs` (another engine adopts them): their state and timers are dropped
        here; what their active alerts inhibited on plugs this engine keeps is let go."""
        plugs = set(plugs)
        for key in [k for k in self._episodes if k[1] in plugs]:
            self._resolve(key, now)
        self._drop(plugs)
        self.changes += 1

    def _drop(self, plugs: Iterable[str]) -> None:
        """Remove every trace of `plugs` without side effects on other plugs."""
        plugs = set(plugs)
        if not plugs:
            return
        for key in [k for k in self._episodes if k[1] in plugs]:
            del self._episodes[key]
            self._timers.cancel(("e", *key))
            self._active.get(key[0], set()).discard(key[1])
            self._leave_group(*key)
        for (kind, r, p), _ in self._timers:
            if kind == "d" and p in plugs:
                self._timers.cancel((kind, r, p))
        for values in (self._since, self._state, self._spans, self._last_run, self._runs):
            for p in plugs & values.keys():
                del values[p]
        for key in [k for k in self._last_fired if k[1] in plugs]:
            del self._last_fired[key]

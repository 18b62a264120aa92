"""Alerting in the running service: the rules engine, its timers, its snapshot and the sender.

    alerting = Alerting.from_config(config, store)     # a broken rule file refuses to start
    Service(config, store, on_events=alerting.on_events)
    await alerting.run(stop)                             # timers (for/repeat) + outbox sender

The engine's snapshot goes to `kv_state` in the same transaction as the alerts it caused when the
timer loop writes (`due` alerts). For alerts from transitions (written by the service's writer) the
snapshot follows in a later timer-loop write (SETTLE_S after, when the writer has flushed): after a
crash, alerts are re-derived with the same dedupe keys, so a late snapshot re-creates (a no-op),
never loses, an alert.

Clustered (`per_plug=True`, several instances sharing the plugs by leases) each plug's part of the
state is a kv row of its own (`rules_engine@plug:<name>`), written with that plug's writes and
fenced by its lease like them. `adopt(plugs)` (on taking plugs, before their detectors re-feed)
loads theirs, so their `for:` timers and reminders go on with their deadlines; `forget(plugs)` (on
dropping them) stops this instance firing for them and returns their last state to write.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from plugwatch.errors import PlugwatchError
from plugwatch.formatting import format_duration, machine_zone, plural
from plugwatch.model import Event
from plugwatch.notify.apprise_notifier import AppriseNotifier
from plugwatch.notify.sender import AlertSender
from plugwatch.rules import Rule, RulesEngine, load_checked
from plugwatch.service.failures import Outage
from plugwatch.store.writes import plug_kv_key

if TYPE_CHECKING:
    from plugwatch.config import Config
    from plugwatch.store import Store


log = logging.getLogger(__name__)
KV_KEY = "rules_engine"
SETTLE_S = 2.0
SILENCES_KEPT_S = 86400.0
WAKE_AFTER_S = (0.6, 1.2)  # the writer flushes every 0.5 s


def _plug_tags(config: Config) -> dict[str, list[str]]:
    return {plug.name: list(plug.tags or []) for plug in config.plugs}


def load_config_rules(config: Config) -> list[Rule]:
    """The checked rules named by `config.rules_path` ([] when none); raises RuleFileError."""
    if config.rules_path is None:
        return []
    targets = list(config.targets)
    return [item.rule for item in load_checked(config.rules_path, _plug_tags(config), targets)]


class Alerting:
    """Feeds the engine from the service hook, fires its timers, keeps its snapshot, sends."""

    def __init__(
        self, config: Config, store: Store, rules: Sequence[Rule], *,
        clock: Callable[[], float] = time.time, tick_s: float = 1.0,
        sender: AlertSender | None = None, kv_key: str = KV_KEY, send: bool = True,
        plugs: Sequence[str] | None = None, per_plug: bool = False,
    ) -> None:
        self.config = config
        self.store = store
        self.clock = clock
        self.tick_s = tick_s
        self.kv_key = kv_key  # one engine state per sampling process (service.workers)
        self.send = send  # False: alerts go to the outbox only, another process sends them
        self.zone = getattr(config, "timezone", None) or machine_zone()
        # clustered: the state is stored per plug, taken and let go with the plug (adopt, forget)
        self.per_plug = per_plug
        self._stored: dict[str, dict[str, Any]] = {}  # per plug: the state last queued/written
        self._touched: set[str] = set()  # per plug: the plugs of the events and alerts since
        snap = None if per_plug else store.load_kv(kv_key).get(kv_key)
        if per_plug:  # rows of instances from before the state was kept per plug: read by
            # nobody but `ack` and /api/alerts, which would show their stale alerts as active
            store.delete_kv(key for key in store.load_kv(f"{KV_KEY}@")
                            if not key.startswith(plug_kv_key(KV_KEY, "")) and "/" not in key)
        self.engine = RulesEngine.restore(rules, snap, _plug_tags(config), self.zone)
        # condition rules watch the plugs this process samples (None: every configured plug;
        # per plug: the plugs adopted)
        self.plugs = [] if per_plug else (
            [p.name for p in config.plugs] if plugs is None else list(plugs))
        self._watch(self.engine, self.plugs)
        self._saved = self.engine.changes  # the engine's change count when last stored
        # The service re-feeds stored readings in a worker thread at start while the timer loop
        # ticks in another: one lock keeps the engine's state consistent.
        self._lock = threading.Lock()
        # before the service re-feeds stored readings: what was acknowledged or silenced since
        # the snapshot applies to the alerts that re-feed re-derives, too
        self._apply_controls(self.clock())
        targets = {name: str(url) for name, url in config.targets.items()}
        notifier = AppriseNotifier(targets, getattr(config, "target_options", None))
        self.sender = sender or AlertSender(store, notifier, clock=clock)
        self._dirty_at: float | None = None
        self._sending: tuple[asyncio.Event, asyncio.Task[None]] | None = None

    @classmethod
    def from_config(cls, config: Config, store: Store, **kw: Any) -> Alerting:
        """Alerting for `config`'s rules; a broken rule file raises RuleFileError (no start)."""
        return cls(config, store, load_config_rules(config), **kw)

    def on_events(self, events: list[Event], now: float) -> list[dict[str, Any]]:
        """The service hook: outbox rows for these detector events (written with the events)."""
        with self._lock:
            if self.per_plug:  # a push plug's last samples may come in as it is let go
                events = [e for e in events if e.plug in self._stored]
            alerts = self.engine.on_events(events, now)
            if self.per_plug:
                self._touched.update(e.plug for e in events)
                self._touched.update(p for a in alerts for p in (a.plugs or (a.plug,)))
            if self._dirty_at is None:
                self._dirty_at = self.clock()
        if alerts:
            self._wake_after_flush()
        return [alert.as_row() for alert in alerts]

    def _watch(self, engine: RulesEngine, plugs: Sequence[str]) -> None:
        """Seed the condition rules from the database: the last run of each of `plugs`
        (`no_run_for:`), the last runs of those `unusual_run:` rules judge."""
        rules = list(engine.rules.values())
        if not plugs or not any(r.when.kind != "transition" for r in rules):
            return
        ends = self.store.last_run_ends() if any(r.when.no_run_for for r in rules) else {}
        engine.watch(plugs, self.clock(), ends)
        tags = _plug_tags(self.config)
        for rule in rules:
            if rule.when.unusual_run is not None:
                for plug in plugs:
                    if rule.selects(plug, set(tags.get(plug, []))):
                        engine.note_runs(plug, self.store.recent_runs(
                            plug, rule.when.unusual_run.last))

    def adopt(self, plugs: Sequence[str]) -> None:
        """Per plug: take over the stored rules state of `plugs` (this instance now holds their
        leases; call before their detectors re-feed). Acknowledgements stored since that state
        was written apply to it at once. Blocking: call it in a thread."""
        keys = {plug_kv_key(KV_KEY, p): p for p in plugs}
        stored = self.store.load_kv(KV_KEY, keys)
        snaps = [dict(snap, plug=keys[key]) for key, snap in stored.items()]
        seen = min((int(s.get("acks_seen", 0)) for s in snaps), default=None)
        acks = self.store.acks_after(seen) if seen is not None else []
        with self._lock:
            self.engine.adopt(snaps, self.clock())
            for ack in acks:  # applied again to the plugs held already: a no-op there
                self.engine.acknowledge(ack)
            self._stored.update({keys[key]: snap for key, snap in stored.items()})
            self._stored.update({p: {} for p in plugs if p not in self._stored})
            self.plugs = sorted(self._stored)
            self._watch(self.engine, list(plugs))
        log.debug("rules state of %d plugs taken over (%d had some)", len(plugs), len(snaps))

    def forget(self, plugs: Sequence[str]) -> dict[str, Any]:
        """Per plug: stop firing for `plugs` (their leases are given up); their last state, as
        kv rows to write before the leases go."""
        with self._lock:
            last = self.engine.plug_snapshots(p for p in plugs if p in self._stored)
            self.engine.forget(plugs, self.clock())
            for plug in plugs:
                self._stored.pop(plug, None)
            self.plugs = sorted(self._stored)
        return {plug_kv_key(KV_KEY, p): snap for p, snap in last.items()}

    def _changed_states(self, plugs: Iterable[str] | None = None) -> dict[str, Any]:
        """Per plug: the kv rows of those of `plugs` (default: all held) whose state changed
        since last stored (under the lock). Only `acks_seen` moving is no change: an older one
        only makes `adopt` apply acknowledgements again."""
        rows = {}
        held = self._stored if plugs is None else [p for p in plugs if p in self._stored]
        for plug, snap in self.engine.plug_snapshots(held).items():
            old = self._stored[plug]
            if not old or {**old, "acks_seen": 0} != {**snap, "acks_seen": 0}:
                self._stored[plug] = snap
                rows[plug_kv_key(KV_KEY, plug)] = snap
        return rows

    def _apply_controls(self, now: float) -> None:
        """Hand the engine the silences (of the last day: a restart re-feeds earlier readings)
        and apply the acknowledgements stored since it last saw one."""
        silences = self.store.silences(ending_after=now - SILENCES_KEPT_S)
        acks = self.store.acks_after(self.engine.acks_seen)
        with self._lock:
            self.engine.silences = silences
            for ack in acks:
                for rule, plug in self.engine.acknowledge(ack):
                    log.info("acknowledged %s/%s (%s): no more reminders", rule, plug,
                             ack.source)

    def kv_state(self) -> dict[str, Any]:
        """The service's kv hook: the engine snapshot, stored with the alerts of on_events."""
        with self._lock:
            if self.per_plug:  # the plugs of these events and alerts; the rest at the tick
                touched, self._touched = self._touched, set()
                return self._changed_states(touched)
            return {self.kv_key: self.engine.snapshot()}

    def _wake_after_flush(self) -> None:
        """Wake the sender once the service's writer has stored these alerts (~every 0.5 s)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no event loop (tests, replay): the sender's own polling finds them
        for delay in WAKE_AFTER_S:
            loop.call_later(delay, self.sender.wake)

    def reload(self) -> bool:
        """Load the rule files again; on any problem the old rules stay in force (logged)."""
        try:
            rules = load_config_rules(self.config)
        except PlugwatchError as exc:
            log.error("rules not reloaded, the old rules stay in force:\n%s", exc)
            return False
        with self._lock:
            self.engine = RulesEngine.restore(
                rules, self.engine.snapshot(), _plug_tags(self.config), self.zone
            )
            self._watch(self.engine, self.plugs)
            self._dirty_at = 0.0
        log.info("reloaded %s", plural(len(rules), "rule"))
        return True

    def tick(self) -> int:
        """Fire due timers; write their alerts and the engine snapshot in one transaction."""
        from plugwatch.store import Batch

        now = self.clock()
        self._apply_controls(now)
        with self._lock:
            before = self.engine.snapshot() if self.engine.next_due() is not None else None
            alerts = self.engine.due(now)
            # After events, wait until the service's writer has flushed their alerts (every
            # 0.5 s): a snapshot must never be stored ahead of the alerts it has already fired.
            # Acknowledgements applied meanwhile are applied again after a crash (acks_seen).
            settled = self._dirty_at is None or now - self._dirty_at >= SETTLE_S
            if not alerts and not (settled and self.engine.changes != self._saved):
                return 0
            self._dirty_at = None
            stored = dict(self._stored)
            kv = self._changed_states() if self.per_plug else {
                self.kv_key: self.engine.snapshot()}
            changes = self.engine.changes
        batch = Batch(alerts=[a.as_row() for a in alerts], kv=kv)
        try:
            self.store.write_batch(batch)
            self._saved = changes
        except PlugwatchError:
            with self._lock:
                self._stored.update({p: stored[p] for p in stored.keys() & self._stored.keys()})
                if alerts and before is not None:  # not stored: fire these timers again next tick
                    self.engine = RulesEngine.restore(
                        list(self.engine.rules.values()), before, _plug_tags(self.config),
                        self.zone,
                    )
            self._dirty_at = self._dirty_at or now
            raise
        return len(alerts)

    def start_sending(self) -> None:
        """Start the outbox sender (a clustered instance sends while it holds the sender's
        lease); needs the running event loop."""
        if self._sending is None:
            stop = asyncio.Event()
            self._sending = (stop, asyncio.create_task(self.sender.run(stop)))

    async def stop_sending(self) -> None:
        """Stop the outbox sender: it finishes the delivery in hand, then this returns."""
        if self._sending is not None:
            stop, task = self._sending
            self._sending = None
            stop.set()
            await task

    async def run(self, stop: asyncio.Event) -> None:
        """Timers and the sender until `stop` is set."""
        if self.send:
            self.start_sending()
        try:
            outage = Outage()  # a database outage: one line at its start, every 2 min, at its end
            while not stop.is_set():
                try:
                    if await asyncio.to_thread(self.tick):
                        self.sender.wake()
                except PlugwatchError as exc:
                    due = outage.failed()
                    if due is not None:
                        log.error("alert timers: %s%s", exc, "" if due == "start" else
                                  f" (failing for {format_duration(outage.lasted())})")
                else:
                    if (lasted := outage.recovered()) is not None:
                        log.warning("alert timers: working again after %s (%d failed ticks)",
                                    format_duration(lasted), outage.attempts)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.tick_s)
        finally:
            await self.stop_sending()
            try:  # the last due timers; with the database away, the stop goes on (and says so)
                await asyncio.to_thread(self.tick)
            except PlugwatchError as exc:
                log.error("alert timers: the last tick before stopping failed: %s", exc)

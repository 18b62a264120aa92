"""The service: wires the sampler, each plug's detector, the rules hook and the database writer.

    sampler (asyncio) ──┐
    push sources (MQTT) ┴► Detector.feed (pure) ──► on_events hook (rules) ──► Writer ──► Store

On start every detector is restored from its snapshot (time S) and the readings stored after S are
fed again, so a kill -9 at any moment neither loses nor duplicates transitions (events re-emitted by
that re-feed are no-ops thanks to the idempotent `Store.write_batch`). On stop: no new reads, the
reads in flight are awaited (bounded), every snapshot is saved and the writer flushed.

Clustered (several instances on one PostgreSQL, service.cluster), every plug starts paused: `take`
restores a plug exactly as a start does and begins sampling it, `drop` stops it; `fences` holds
the lease generation of every plug taken, which the store checks on every write (store.leases).
The rules hook follows: `on_take(plugs)` before their detectors re-feed, `on_drop(plugs)` (their
last kv rows, written before the leases go) once their last reads are in.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import time
import zlib
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from plugwatch.detect import Detector
from plugwatch.errors import StoreError
from plugwatch.formatting import plural
from plugwatch.model import Event, Reading, Sample, State
from plugwatch.rules.cost import run_pricer
from plugwatch.service.failures import FailureLog
from plugwatch.service.pushed import PushHub
from plugwatch.service.sampler import SampledPlug, Sampler
from plugwatch.service.writer import Writer, counts_text, max_queued_readings
from plugwatch.sources import PUSHED, make_driver, make_pushed, memory
from plugwatch.sources.validate import checked

if TYPE_CHECKING:
    from plugwatch.config import Config
    from plugwatch.sources.validate import Limits
    from plugwatch.store import Store


log = logging.getLogger(__name__)

OnEvents = Callable[[list[Event], float], list[dict[str, Any]]]
KvState = Callable[[], dict[str, Any]]
OnTake = Callable[[list[str]], None]  # clustered: the rules take over these plugs' state
OnDrop = Callable[[list[str]], dict[str, Any]]  # ... let them go: their last kv rows
EventListener = Callable[[Event], None]
SampleListener = Callable[[str, Sample], None]  # (plug, live Reading or ReadFailure); never blocks


def no_alerts(events: list[Event], now: float) -> list[dict[str, Any]]:
    """The default rules hook: no alerts (the rules engine plugs in here)."""
    return []


class Service:
    """The running plugwatch service for one Config and one Store.

    `on_events(events, now) -> [alert rows]` is the rules hook; `kv_state() -> {key: value}`, when
    given, is called right after it and its rows (e.g. the rules engine's snapshot) are written in
    the same transaction as those events and alerts. `mqtt` is the MqttClient the plugs that
    report over MQTT subscribe through (its owner starts and closes it).
    """

    def __init__(
        self, config: Config, store: Store, *, on_events: OnEvents = no_alerts,
        kv_state: KvState | None = None, listeners: Iterable[EventListener] = (),
        sample_listeners: Iterable[SampleListener] = (), clock: Callable[[], float] = time.time,
        flush_s: float = 0.5, snapshot_every_s: float = 10.0, drain_s: float | None = None,
        clustered: bool = False, mqtt: Any = None,
        flush_timeout_s: float = 30.0, on_take: OnTake | None = None,
        on_drop: OnDrop | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.on_events = on_events
        self.kv_state = kv_state
        self.listeners = list(listeners)
        self.sample_listeners = list(sample_listeners)  # metrics, InfluxDB: every live sample
        self.started = asyncio.Event()  # set once sampling has started (systemd READY=1)
        self.clock = clock
        self.snapshot_every_s = snapshot_every_s
        self.drain_s = drain_s
        self.flush_timeout_s = flush_timeout_s  # at stop, how long to retry an absent database
        self.writer = Writer(store, flush_s=flush_s, max_readings=max_queued_readings(config))
        self.failures = FailureLog(self.writer.note_failure)  # logs and stores why plugs fail
        self.detectors = {p.name: Detector(p.name, p.detector) for p in config.plugs}
        self.plug_configs = {p.name: p for p in config.plugs}  # as running now (retune())
        # `price:` -> each run carries its cost to the rules, the database and the listeners
        self.price_runs = run_pricer(config.price, config.tz)
        self.mqtt = mqtt
        polled = [p for p in config.plugs if p.driver not in PUSHED]
        self.drivers = {p.name: make_driver(p) for p in polled}
        memory.attach(self.drivers.values(), memory.StoreMemory(store, self.writer))
        self.pushed = PushHub([make_pushed(p, mqtt) for p in config.plugs if p.driver in PUSHED],
                              self.handle_sample, clock=clock)
        sources: dict[str, Any] = {**self.drivers, **{s.name: s for s in self.pushed.sources}}
        self._plugs = {p.name: _PlugRecord(getattr(sources[p.name], "where", p.name), p.limits)
                       for p in config.plugs}
        self.clustered = clustered
        self.on_take, self.on_drop = on_take, on_drop
        self.fences: dict[str, int] = {}  # clustered: plug -> lease generation of plugs taken
        self._sampled = {p.name: SampledPlug(p.name, self.drivers[p.name], p.interval_s,
                                             p.timeout_s, paused=clustered) for p in polled}
        self.sampler = Sampler(list(self._sampled.values()), self.handle_sample, clock=clock)

    def restore(self, names: set[str] | None = None) -> int:
        """Restore detectors from snapshots, re-feed later readings; return events re-emitted.
        With `names`, only those plugs (a clustered instance taking them over)."""
        self.store.ensure_plugs(self.config.plugs)
        snapshots = self.store.load_snapshots()
        replayed = 0
        for plug in self.config.plugs:
            if names is not None and plug.name not in names:
                continue
            self.detectors[plug.name] = Detector(plug.name, plug.detector)
            since = None
            if plug.name in snapshots:
                since, snap = snapshots[plug.name]
                self.detectors[plug.name] = Detector.restore(plug.name, plug.detector, snap)
                kept = self._plugs[plug.name]
                kept.last_ts = since
                kept.snap_due = _next_snapshot(plug.name, since, self.snapshot_every_s)
                kept.snap_state = self.detectors[plug.name].state
            for reading in _stored_readings(self.store, plug.name, since):
                replayed += self._feed(plug.name, reading, live=False)
        return replayed

    def retune(self, plug: Any) -> None:
        """Give a sampled plug new DetectorSettings (SIGHUP): it continues from its own state."""
        detector = self.detectors[plug.name]
        self.detectors[plug.name] = Detector.restore(plug.name, plug.detector, detector.snapshot())
        self.plug_configs[plug.name] = plug

    def handle_sample(self, plug: str, sample: Sample, record: bool = True) -> None:
        """Validate one sample (a bad reading becomes a read failure), feed it to its plug's
        detector and queue what must be recorded. Every source's samples come through here;
        `record=False` (a push plug's last reading handed on again) is fed but not stored."""
        if self.clustered and plug not in self.fences:
            return  # clustered: another instance holds this plug (a push plug still reports)
        kept = self._plugs[plug]
        sample = checked(sample, kept.where, kept.limits)
        try:
            for listener in self.sample_listeners:
                listener(plug, sample)
        except Exception:  # an output's bug must not lose the sample
            log.exception("sample listener failed")
        self._feed(plug, sample, live=True, record=record)

    def _feed(self, plug: str, sample: Sample, live: bool, record: bool = True) -> int:
        """Feed the detector and queue the record. A re-fed (not live) reading is already stored
        and its events were maybe announced before the restart: listeners hear only live ones."""
        detector, kept = self.detectors[plug], self._plugs[plug]
        events = detector.feed(sample)
        if events and self.price_runs is not None:
            events = self.price_runs(events)
        ts = kept.last_ts = sample.ts
        reading = sample if live and record and isinstance(sample, Reading) else None
        if live:
            self.failures.observe(plug, sample, detector.state)
        snapshot = None
        alerts: list[dict[str, Any]] | tuple[()] = ()
        kv = None
        if events:
            try:
                alerts = self.on_events(events, ts)
                kv = self.kv_state() if self.kv_state is not None else None
            except Exception:  # a rules bug must not lose the events and the reading
                log.exception("the rules hook failed on events of plug %r", plug)
        state = detector.state
        if events or state is not kept.snap_state or ts >= kept.snap_due:
            snapshot = (ts, detector.snapshot())
            kept.snap_due = _next_snapshot(plug, ts, self.snapshot_every_s)
            kept.snap_state = state
        if reading is not None or snapshot is not None:
            self.writer.put((plug, reading, events or (), alerts, snapshot, kv))
        for event in events if live else ():
            for listener in self.listeners:
                try:
                    listener(event)
                except Exception:
                    log.exception("event listener failed")
        return len(events)

    async def take(self, plugs: dict[str, int]) -> None:
        """Clustered: start sampling these plugs (name -> lease generation), each restored from
        its snapshot and the readings stored after it, whoever wrote them."""
        await self.started.wait()
        self.fences.update(plugs)  # first: what the rules fire for them from now on is written
        if self.on_take is not None:
            await asyncio.to_thread(self.on_take, list(plugs))
        replayed = await asyncio.to_thread(self.restore, set(plugs))
        for name in plugs:
            if name in self._sampled:  # a push plug's samples count once its fence is set
                self._sampled[name].paused = False
        log.debug("took %d plugs (%d events re-fed)", len(plugs), replayed)

    async def drop(self, names: list[str], *, flush: bool) -> None:
        """Clustered: stop sampling these plugs. With flush (a hand-over), wait for their reads
        in flight, save their snapshots and write everything queued before returning; without
        (the lease is already lost), stop at once: their queued writes are fenced out.
        Either way the rules stop firing for them (`on_drop`)."""
        for name in names:
            if name in self._sampled:
                self._sampled[name].paused = True
        if not flush:
            if self.on_drop is not None:
                self.on_drop(names)
        else:
            wanted, deadline = set(names), time.monotonic() + self._drain_s()
            while self.sampler.busy(wanted) and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            for name in names:
                if (last_ts := self._plugs[name].last_ts) is not None:
                    snapshot = (last_ts, self.detectors[name].snapshot())
                    self.writer.put((name, None, [], [], snapshot, None))
            if self.on_drop is not None and names:
                self.writer.put((names[0], None, [], [], None, self.on_drop(names)))
            if not await asyncio.to_thread(self.writer.flush, 30.0):
                log.error("handing over %d plugs: the database writer did not flush in time",
                          len(names))
        for name in names:
            self.fences.pop(name, None)
            self._plugs[name].last_ts = None

    def _drain_s(self) -> float:
        if self.drain_s is not None:
            return self.drain_s
        return max((p.timeout_s for p in self.config.plugs), default=2.0) + 0.5

    async def run(self, stop: asyncio.Event) -> None:
        """Sample until `stop` is set, then shut down cleanly."""
        from apscheduler.schedulers.asyncio import AsyncIOScheduler

        if self.clustered:  # plugs are restored one by one as their leases are taken
            await asyncio.to_thread(self.store.ensure_plugs, self.config.plugs)
        else:
            replayed = await asyncio.to_thread(self.restore)
            log.info("restored %s (%s re-fed)", plural(len(self.detectors), "detector"),
                     plural(replayed, "event"))
        _freeze_long_lived()  # the detectors, drivers and imports
        self.writer.start()
        scheduler = AsyncIOScheduler()
        retention_s = getattr(self.config, "retention_s", None)
        if retention_s:
            scheduler.add_job(
                self._purge_job, "interval", args=[retention_s], id="retention",
                seconds=min(3600.0, max(1.0, retention_s / 10)),
            )
            self._purge(retention_s)
        scheduler.start()
        self.sampler.start(scheduler)  # one interval job per slot of plugs
        self.pushed.start()
        freeze = asyncio.get_running_loop().create_task(self._freeze_after_first_contact())
        self.started.set()
        try:
            await stop.wait()
        finally:
            freeze.cancel()
            self.sampler.stop()
            scheduler.shutdown(wait=False)
            await asyncio.sleep(0)  # a tick APScheduler already started runs (it never awaits)
            await self.shutdown()

    async def _freeze_after_first_contact(self) -> None:
        """First contact opens a connection per plug (socket, transport, buffers) that lives as
        long as the service: freeze again once the sampler has finished two reads per plug (on
        a loaded machine the first round takes several intervals)."""
        every_s = min((p.interval_s for p in self._sampled.values()), default=1.0)
        while self.sampler.stats.done < 2 * len(self._sampled):
            await asyncio.sleep(every_s)
        _freeze_long_lived()

    async def _purge_job(self, retention_s: float) -> None:
        self._purge(retention_s)

    def _purge(self, retention_s: float) -> None:
        self.writer.purge(self.clock() - retention_s)

    async def shutdown(self) -> None:
        """Await in-flight reads, save every snapshot, flush the writer, close the drivers."""
        await self.pushed.close()
        cut = await self.sampler.drain(self._drain_s())
        if cut:
            log.warning("%d reads were still in flight at shutdown", cut)
        for plug, detector in self.detectors.items():
            if (last_ts := self._plugs[plug].last_ts) is not None:
                snapshot = (last_ts, detector.snapshot())
                self.writer.put((plug, None, [], [], snapshot, None))
        flushed = await asyncio.to_thread(self.writer.close, self.flush_timeout_s)
        for driver in self.drivers.values():
            await driver.close()
        if not flushed:
            raise StoreError(
                f"stopped with {counts_text(self.writer.unwritten)} not written to "
                f"{getattr(self.store, 'where', 'the database')} ({self.writer.stats.last_error})")


def _freeze_long_lived() -> None:
    """Move every object alive now out of the cyclic GC's reach (gc.freeze). They live as long
    as the service; left in, each full collection walks all of them: at 10,000 plugs that is
    400,000 objects and a 50-120 ms stall of the event loop, several times a minute."""
    gc.collect()
    gc.freeze()
    log.debug("%d long-lived objects kept out of the cyclic GC's scans", gc.get_freeze_count())


class _PlugRecord:
    """What the service keeps of one plug besides its detector, in one slotted record (a dict
    entry each cost more): who it is in a failure reason and what it may report (see
    sources.validate), the time of its last sample (None: none yet, or dropped), the state in
    the last snapshot queued and when the next one is due (whatever happens)."""

    __slots__ = ("last_ts", "limits", "snap_due", "snap_state", "where")

    def __init__(self, where: str, limits: Limits) -> None:
        self.where, self.limits = where, limits
        self.last_ts: float | None = None
        self.snap_due = 0.0
        self.snap_state: State | None = None


def _next_snapshot(plug: str, ts: float, every_s: float) -> float:
    """When `plug`'s next snapshot is due after one at `ts`: the next point of a grid `every_s`
    apart that is the plug's own (shifted by a hash of its name). Plugs started, or restored,
    together then spread their snapshots over the period instead of sending them all in one
    second (10,000 at once every 10 s: a burst of work for the loop and the writer)."""
    if every_s <= 0:
        return ts
    shift = zlib.crc32(plug.encode()) / 2**32 * every_s
    return ts + every_s - (ts + shift) % every_s


def _stored_readings(store: Store, plug: str, since: float | None) -> Iterable[Reading]:
    """The readings of `plug` stored strictly after `since` (all when None), oldest first."""
    for reading in store.readings(plug, since=since):
        if since is None or reading.ts > since:
            yield reading


def install_stop_signals(stop: asyncio.Event) -> None:
    """SIGINT and SIGTERM set `stop` (the service then shuts down cleanly and exits 0, or 1 when
    the database was unavailable until the end and something could not be written)."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

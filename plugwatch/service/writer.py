"""The one database writer: a thread that batches everything the service records.

The event loop only appends to an inbox deque (never waits on the database, and does not wake the
thread per item: that GIL hand-off cost more than the item). The thread wakes every `flush_s`
seconds, or when `max_items` are waiting, moves the inbox to its Backlog and writes it with one
`Store.write_batch` call (one transaction) per `max_items` items. An item (a plug's reading, the
events it caused, their alerts and the detector snapshot) is written whole.

- Database unavailable (down, locked, unreachable): everything stays queued and is retried every
  RETRY_S. The outage is logged once when it starts, every OUTAGE_LOG_S while it lasts (with
  counts) and once when it ends. Past `max_readings` queued readings the backlog is thinned
  (plugwatch.service.backlog); transitions, runs and alerts are never dropped.
- A batch the database refuses for its content (a constraint, a value it cannot hold): its records
  are written again in halves until each refused record is alone; that record is set aside (in
  the dead_letters table, else the log), logged and counted; everything else is written.
- close(timeout) keeps retrying until the timeout, then reports what was not written.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from plugwatch.errors import StoreError, StoreRejected
from plugwatch.formatting import format_duration
from plugwatch.model import Reading, RunSummary, Transition
from plugwatch.service import failures
from plugwatch.service.backlog import Backlog, Entry, Failure, Item, Purge, entry_counts
from plugwatch.service.meters import Histogram

if TYPE_CHECKING:
    from plugwatch.store import Batch, Store

log = logging.getLogger(__name__)

RETRY_S = 1.0
OUTAGE_LOG_S = failures.OUTAGE_LOG_S  # while the database is away, one line this often
SET_ASIDE_LOG_LIMIT = 20  # refused records logged one by one; later ones only counted
DEFAULT_MAX_READINGS = 100_000
BUFFER_S = 300.0  # by default the queue holds this long's readings at the configured rate ...
MIN_MAX_READINGS = 10_000  # ... but at least this many

__all__ = ["Item", "Writer", "WriterStats", "counts_text", "max_queued_readings"]


def max_queued_readings(config: Any) -> int:
    """The config's `max_queued_readings`, else 5 minutes of readings at its plugs' rate."""
    configured = getattr(config, "max_queued_readings", None)
    if configured:
        return int(configured)
    rate = sum(1.0 / p.interval_s for p in config.plugs)
    return max(MIN_MAX_READINGS, round(BUFFER_S * rate))


@dataclass(slots=True)
class WriterStats:
    """What the writer did, for logs, /metrics and the bench."""

    batches: int = 0
    readings: int = 0
    events: int = 0
    snapshots: int = 0
    failures: int = 0  # failed write attempts (database unavailable)
    write_s: float = 0.0  # time spent inside write_batch
    last_error: str = ""
    failing: bool = False  # the last write failed (the database is down or refusing)
    last_ok: float = field(default_factory=time.monotonic)  # when a write last succeeded
    batch_s: Histogram = field(default_factory=Histogram)  # seconds per write_batch, /metrics
    set_aside: int = 0  # records the database refused, kept in dead_letters
    thinned: int = 0  # queued readings dropped to bound memory during an outage


class _Unavailable(Exception):
    """The database went away while a refused batch was being taken apart."""

    def __init__(self, error: StoreError) -> None:
        super().__init__(str(error))
        self.error = error


class Writer:
    """Batches items from the event loop into `store.write_batch` calls on its own thread."""

    def __init__(
        self, store: Store, *, flush_s: float = 0.5, max_items: int = 1000,
        max_readings: int = DEFAULT_MAX_READINGS,
    ) -> None:
        self.store = store
        self.flush_s = flush_s
        self.max_items = max_items
        self.stats = WriterStats()
        self.unwritten: dict[str, int] = {}  # after a close that timed out: what was left
        self._items: deque[Entry] = deque()  # the inbox; append/popleft are atomic: no lock
        self._backlog = Backlog(max_readings)
        self._wake = threading.Event()
        self._closing = False
        self._deadline = float("inf")
        self._outage = failures.Outage(every_s=OUTAGE_LOG_S)
        self._thinning_logged = False
        self._thread = threading.Thread(target=self._run, name="plugwatch-writer", daemon=True)

    def start(self) -> None:
        """Start the writer thread."""
        self._thread.start()

    @property
    def queued(self) -> int:
        """Items waiting to be written (for /metrics and /healthz)."""
        return len(self._items) + len(self._backlog)

    @property
    def alive(self) -> bool:
        """True while the writer thread runs."""
        return self._thread.is_alive()

    def put(self, item: Item) -> None:
        """Queue one item (thread-safe, never blocks)."""
        self._items.append(item)
        if len(self._items) == self.max_items:
            self._wake.set()

    def purge(self, before_ts: float) -> None:
        """Queue a retention purge of readings older than `before_ts`."""
        self._items.append(Purge(before_ts))

    def note_failure(self, plug: str, ts: float, reason: str) -> None:
        """Queue `reason` as the plug's last failure (shown by `plugwatch status`)."""
        self._items.append(Failure(plug, ts, reason))

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Block until everything queued so far is written; False on timeout."""
        done = threading.Event()
        self._items.append(done)
        self._wake.set()
        return done.wait(timeout_s)

    def close(self, timeout_s: float = 10.0) -> bool:
        """Write what is queued (retrying while the database is away) and stop the thread.
        False if that did not finish within `timeout_s`; `unwritten` then says what is left."""
        if not self._thread.is_alive():
            return not self.unwritten
        self._deadline = time.monotonic() + max(0.0, timeout_s - 0.5)
        self._closing = True
        self._wake.set()
        self._thread.join(timeout_s)
        if self._thread.is_alive():  # stuck inside one write: count what it had
            self.unwritten = self.unwritten or self._backlog.counts()
        return not self._thread.is_alive() and not self.unwritten

    # -- the thread ----------------------------------------------------------------------------

    def _run(self) -> None:
        pause = self.flush_s
        while True:
            self._wake.wait(pause)
            self._wake.clear()
            closing = self._closing  # read before draining: nothing queued before close is left
            self._drain_inbox()
            written = self._write_backlog()
            if not written and closing and time.monotonic() >= self._deadline:
                self.unwritten = self._backlog.counts()
                log.error("the database writer stops with %s unwritten",
                          counts_text(self.unwritten))
                self._backlog.release_waiters()
                return
            if written and closing and not self._items:
                return
            pause = self.flush_s if written else RETRY_S
            if written and self._items:
                pause = 0.0  # more than one batch was waiting: go on at once

    def _drain_inbox(self) -> None:
        items, backlog = self._items, self._backlog
        add, popleft = backlog.add, items.popleft
        while items:
            add(popleft())
        self.stats.thinned = backlog.thinned
        if not backlog.over():
            if not backlog:
                backlog.relax()
                self._thinning_logged = False
            return
        while backlog.over() and backlog.thin():
            pass
        self.stats.thinned = backlog.thinned
        if not self._thinning_logged:
            self._thinning_logged = True
            log.warning(
                "more than %s readings are waiting for the database: thinning them (keeping 1 in "
                "%d per plug, %s dropped so far); transitions, runs and alerts are all kept",
                f"{backlog.max_readings:,}", backlog.keep_every, f"{backlog.thinned:,}")

    def _write_backlog(self) -> bool:
        """Write the backlog batch by batch; False when the database is unavailable."""
        while True:
            batch = self._backlog.take(self.max_items)
            if not batch:
                return True
            down = self._write_entries(batch)
            if down is not None:
                self._backlog.put_back(batch)
                self._unavailable(down)
                return False

    def _write_entries(self, entries: list[Entry]) -> StoreError | None:
        """Write one batch, taking a refused one apart; the error if the database is away."""
        try:
            self._write(entries)
        except StoreRejected as exc:
            return self._isolate(entries, exc)
        except StoreError as exc:
            return exc
        except Exception as exc:  # a value the driver cannot even send: the same as refused
            return self._isolate(entries, exc)
        return None

    def _write(self, entries: list[Entry]) -> None:
        """Write `entries` in one transaction (raises what the store raises)."""
        batch, purge_before, waiters = _batch(entries)
        started = time.perf_counter()
        if batch.readings or batch.transitions or batch.runs or batch.snapshots or (
                batch.alerts or batch.kv or batch.failures):
            self.store.write_batch(batch)
        if purge_before is not None:
            self.store.purge_readings(purge_before)
        for waiter in waiters:  # flush() waiters a batch with rules state went past
            waiter.set()
        stats = self.stats
        elapsed = time.perf_counter() - started
        stats.write_s += elapsed
        stats.batch_s.observe(elapsed)
        stats.batches += 1
        stats.readings += len(batch.readings)
        stats.events += len(batch.transitions) + len(batch.runs)
        stats.snapshots += len(batch.snapshots)
        if self._outage.since is not None:
            self._available(entry_counts([*entries, *self._backlog.entries]))
        stats.failing, stats.last_ok = False, time.monotonic()

    def _isolate(self, entries: list[Entry], exc: Exception) -> StoreError | None:
        """Write the records of a refused batch in halves, setting each refused one aside."""
        waiters = [e for e in entries if isinstance(e, threading.Event)]
        records = [r for e in entries if not isinstance(e, threading.Event) for r in _records(e)]
        # snapshots and rules state last: a kill meanwhile must not leave a snapshot newer than
        # the events it accounts for
        records.sort(key=lambda r: type(r) is tuple and (r[4] is not None or bool(r[5])))
        log.warning("the database refused a batch of %d records (%s); writing them in parts to "
                    "set the refused ones aside", len(records), _one_line(exc))
        try:
            self._bisect(records, exc)
        except _Unavailable as down:
            return down.error
        for waiter in waiters:
            waiter.set()
        return None

    def _bisect(self, records: list[Entry], exc: Exception) -> None:
        if len(records) == 1:
            self._set_aside(records[0], exc)
            return
        mid = len(records) // 2
        for half in (records[:mid], records[mid:]):
            try:
                self._write(half)
            except StoreRejected as refused:
                self._bisect(half, refused)
            except StoreError as down:
                raise _Unavailable(down) from down
            except Exception as refused:
                self._bisect(half, refused)

    def _set_aside(self, record: Entry, exc: Exception) -> None:
        kind, plug, text = _describe(record)
        error = _one_line(exc)
        self.stats.set_aside += 1
        n = self.stats.set_aside
        try:
            self.store.set_aside([{"ts": time.time(), "kind": kind, "plug": plug,
                                   "record": text, "error": error[:2000]}])
            kept = "kept in table dead_letters"
        except Exception as failed:  # even that was refused: the log is the last resort
            kept = f"could not be kept in dead_letters either ({_one_line(failed)}): {text[:500]}"
        if n <= SET_ASIDE_LOG_LIMIT:
            log.error("set aside a %s of plug %s that the database refused: %s; %s%s", kind,
                      plug or "-", error, kept,
                      " (later ones are only counted)" if n == SET_ASIDE_LOG_LIMIT else "")

    def _unavailable(self, exc: StoreError) -> None:
        stats = self.stats
        stats.failures += 1
        stats.last_error = str(exc)
        stats.failing = True
        due = self._outage.failed()
        if due == "start":
            log.error("database unavailable, keeping everything queued and retrying every "
                      "%g s: %s", RETRY_S, exc)
        elif due == "again":
            log.error("database unavailable for %s: %s queued, %s readings thinned; last "
                      "error: %s", format_duration(self._outage.lasted()),
                      counts_text(self._backlog.counts()), f"{self._backlog.thinned:,}", exc)

    def _available(self, queued: dict[str, int]) -> None:
        lasted = self._outage.recovered() or 0.0
        log.warning("database available again after %s (%d failed attempts): writing %s "
                    "queued; %s readings were thinned", format_duration(lasted),
                    self._outage.attempts, counts_text(queued), f"{self._backlog.thinned:,}")


def _batch(entries: list[Entry]) -> tuple[Batch, float | None, list[threading.Event]]:
    """The Batch of `entries`, the latest purge time among them, and their flush() waiters."""
    from plugwatch.store import Batch

    batch, purge_before, waiters = Batch(), None, []
    readings, snapshots, alerts = batch.readings.append, batch.snapshots, batch.alerts
    for entry in entries:  # once per item: the loop of the writer's hot path, kept tight
        if type(entry) is tuple:
            plug, reading, events, item_alerts, snapshot, kv = entry
            if reading is not None:
                readings((plug, reading))
            for event in events:
                (batch.transitions if isinstance(event, Transition) else batch.runs).append(event)
            if item_alerts:
                alerts.extend(item_alerts)  # type: ignore[attr-defined]
            if snapshot is not None:
                snapshots[plug] = snapshot
            if kv:
                batch.kv.update(kv)  # items come in order: the later value is the newer
        elif isinstance(entry, Purge):
            purge_before = max(purge_before or 0.0, entry.before_ts)
        elif isinstance(entry, Failure):
            batch.failures[entry.plug] = (entry.ts, entry.reason)
        elif isinstance(entry, threading.Event):
            waiters.append(entry)
    return batch, purge_before, waiters


def _records(entry: Entry) -> list[Entry]:
    """An entry split into entries of one record each (a reading, an event, an alert, ...)."""
    if type(entry) is not tuple:
        return [entry]
    plug, reading, events, alerts, snapshot, kv = entry
    out: list[Entry] = []
    if reading is not None:
        out.append((plug, reading, (), (), None, None))
    out += [(plug, None, [event], (), None, None) for event in events]
    out += [(plug, None, (), [alert], None, None) for alert in alerts]
    if snapshot is not None:
        out.append((plug, None, (), (), snapshot, None))
    out += [(plug, None, (), (), None, {key: value}) for key, value in (kv or {}).items()]
    return out


def _describe(record: Entry) -> tuple[str, str | None, str]:
    """(kind, plug, JSON text) of a one-record entry, for dead_letters."""
    if isinstance(record, Purge):
        return "purge", None, json.dumps({"before_ts": record.before_ts})
    if isinstance(record, Failure):
        return "failure", record.plug, json.dumps({"ts": record.ts, "reason": record.reason})
    plug, reading, events, alerts, snapshot, kv = record
    if reading is not None:
        return "reading", plug, _json(_fields(reading))
    if events:
        event = events[0]
        kind = "transition" if isinstance(event, Transition) else "run"
        return kind, plug, _json(_fields(event))
    if alerts:
        return "alert", plug, _json(alerts[0])
    if snapshot is not None:
        return "snapshot", plug, _json({"ts": snapshot[0], "state": snapshot[1]})
    return "kv", plug, _json(kv)


def _fields(value: Reading | Transition | RunSummary) -> dict[str, Any]:
    return {name: getattr(value, name) for name in value.__slots__}


def _json(value: Any) -> str:
    # ASCII only, so a NUL or a lone surrogate (why a value may have been refused) is escaped
    return json.dumps(value, default=str, ensure_ascii=True)


def _one_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def counts_text(counts: dict[str, int]) -> str:
    """'1,200 readings, 3 events, 0 alerts, 40 snapshots' (what is queued or was left)."""
    return ", ".join(f"{n:,} {what}" for what, n in counts.items())

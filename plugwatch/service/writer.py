"""The one database writer: a thread that batches everything the service records.

The event loop only appends to a deque (never waits on the database, and does not wake the thread
per item: that GIL hand-off cost more than the item). The thread wakes every `flush_s` seconds, or
when `max_items` are waiting, and writes what is there with ONE `Store.write_batch` call, i.e. one
transaction. An item (a plug's reading, the events it caused, their alerts and the detector
snapshot) is never split across batches. A failed write is retried, with the items kept, until it
succeeds or the writer is closed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from plugwatch.errors import PlugwatchError
from plugwatch.meters import Histogram
from plugwatch.model import Event, Reading, RunSummary, Transition

if TYPE_CHECKING:
    from plugwatch.store import Store


log = logging.getLogger(__name__)

RETRY_S = 1.0


@dataclass(slots=True)
class WriterStats:
    """What the writer did, for logs and the bench."""

    batches: int = 0
    readings: int = 0
    events: int = 0
    snapshots: int = 0
    failures: int = 0
    write_s: float = 0.0  # time spent inside write_batch
    last_error: str = ""
    failing: bool = False  # the last write failed (the database is down or refusing)
    last_ok: float = field(default_factory=time.monotonic)  # when a write last succeeded
    batch_s: Histogram = field(default_factory=Histogram)  # seconds per write_batch, /metrics


@dataclass(slots=True)
class _Pending:
    readings: list[tuple[str, Reading]] = field(default_factory=list)
    transitions: list[Transition] = field(default_factory=list)
    runs: list[RunSummary] = field(default_factory=list)
    snapshots: dict[str, tuple[float, dict[str, Any]]] = field(default_factory=dict)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    kv: dict[str, Any] = field(default_factory=dict)
    purge_before: float | None = None
    size: int = 0


# One queued item: (plug, reading or None, events, alerts, detector snapshot (ts, dict) or None,
# kv rows (e.g. the rules engine's snapshot) or None). An item is never split across batches.
Item = tuple[
    str, Reading | None, list[Event], list[dict[str, Any]], tuple[float, dict] | None,
    dict[str, Any] | None,
]


class Writer:
    """Batches items from the event loop into `store.write_batch` calls on its own thread."""

    def __init__(self, store: Store, *, flush_s: float = 0.5, max_items: int = 1000) -> None:
        self.store = store
        self.flush_s = flush_s
        self.max_items = max_items
        self.stats = WriterStats()
        self._items: deque[Any] = deque()  # append/popleft are atomic: no lock needed
        self._wake = threading.Event()
        self._closing = False
        self._thread = threading.Thread(target=self._run, name="plugwatch-writer", daemon=True)

    def start(self) -> None:
        """Start the writer thread."""
        self._thread.start()

    @property
    def queued(self) -> int:
        """Items waiting to be written (for /metrics and /healthz)."""
        return len(self._items)

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
        self._items.append(("purge", before_ts))

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Block until everything queued so far is written; False on timeout."""
        done = threading.Event()
        self._items.append(done)
        self._wake.set()
        return done.wait(timeout_s)

    def close(self, timeout_s: float = 10.0) -> bool:
        """Write what is queued, then stop the thread; False if it did not finish in time."""
        if not self._thread.is_alive():
            return True
        self._closing = True
        self._wake.set()
        self._thread.join(timeout_s)
        return not self._thread.is_alive()

    def _run(self) -> None:
        pending = _Pending()
        while True:
            self._wake.wait(self.flush_s)
            self._wake.clear()
            closing = self._closing  # read before draining: nothing queued before close is left
            waiters: list[threading.Event] = []
            while self._items and pending.size < self.max_items:
                obj = self._items.popleft()
                if isinstance(obj, threading.Event):
                    waiters.append(obj)
                else:
                    _add(pending, obj)
            while (pending.size or pending.purge_before is not None) and not self._write(pending):
                if closing:
                    log.error("writer stopped with %d unwritten items", pending.size)
                    return
                time.sleep(RETRY_S)
            else:
                pending = _Pending()
            for waiter in waiters:
                waiter.set()
            if self._items:
                self._wake.set()  # more than one batch was waiting: go on at once
            elif closing:
                return

    def _write(self, pending: _Pending) -> bool:
        """Write `pending` in one transaction; True on success."""
        from plugwatch.store import Batch

        started = time.perf_counter()
        try:
            if pending.size:
                self.store.write_batch(Batch(
                    readings=pending.readings, transitions=pending.transitions, runs=pending.runs,
                    snapshots=pending.snapshots, alerts=pending.alerts, kv=pending.kv,
                ))
            if pending.purge_before is not None:
                self.store.purge_readings(pending.purge_before)
        except PlugwatchError as exc:
            self.stats.failures += 1
            self.stats.last_error = str(exc)
            self.stats.failing = True
            log.error("database write failed (will retry): %s", exc)
            return False
        stats = self.stats
        elapsed = time.perf_counter() - started
        stats.write_s += elapsed
        stats.batch_s.observe(elapsed)
        stats.failing, stats.last_ok = False, time.monotonic()
        stats.batches += 1
        stats.readings += len(pending.readings)
        stats.events += len(pending.transitions) + len(pending.runs)
        stats.snapshots += len(pending.snapshots)
        return True


def _add(pending: _Pending, obj: Any) -> None:
    if obj[0] == "purge":
        pending.purge_before = max(pending.purge_before or 0.0, obj[1])
        return
    plug, reading, events, alerts, snapshot, kv = obj
    if reading is not None:
        pending.readings.append((plug, reading))
    for event in events:
        if isinstance(event, Transition):
            pending.transitions.append(event)
        else:
            pending.runs.append(event)
    pending.alerts.extend(alerts)
    if snapshot is not None:
        pending.snapshots[plug] = snapshot
    if kv:
        pending.kv.update(kv)  # items come in order: the later value is the newer
    pending.size += 1

"""The one database writer: a thread that batches everything the service records.

The event loop only appends to a queue (never waits on the database). The thread gathers items for
up to `flush_s` seconds or `max_items` items and writes them with ONE `Store.write_batch` call, i.e.
one transaction. An item (a plug's reading, the events it caused, their alerts and the detector
snapshot) is never split across batches. A failed write is retried, with the items kept, until it
succeeds or the writer is closed.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from plugwatch.errors import PlugwatchError
from plugwatch.model import Event, Reading, RunSummary, Transition

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


@dataclass(slots=True)
class _Pending:
    readings: list[tuple[str, Reading]] = field(default_factory=list)
    transitions: list[Transition] = field(default_factory=list)
    runs: list[RunSummary] = field(default_factory=list)
    snapshots: dict[str, tuple[float, dict[str, Any]]] = field(default_factory=dict)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    purge_before: float | None = None
    size: int = 0


# One queued item: (plug, reading or None, events, alerts, snapshot (ts, dict) or None)
Item = tuple[str, Reading | None, list[Event], list[dict[str, Any]], tuple[float, dict] | None]


class Writer:
    """Batches items from the event loop into `store.write_batch` calls on its own thread."""

    def __init__(self, store: Any, *, flush_s: float = 0.5, max_items: int = 1000) -> None:
        self.store = store
        self.flush_s = flush_s
        self.max_items = max_items
        self.stats = WriterStats()
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="plugwatch-writer", daemon=True)

    def start(self) -> None:
        """Start the writer thread."""
        self._thread.start()

    def put(self, item: Item) -> None:
        """Queue one item (thread-safe, never blocks)."""
        self._queue.put(item)

    def purge(self, before_ts: float) -> None:
        """Queue a retention purge of readings older than `before_ts`."""
        self._queue.put(("purge", before_ts))

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Block until everything queued so far is written; False on timeout."""
        done = threading.Event()
        self._queue.put(done)
        return done.wait(timeout_s)

    def close(self, timeout_s: float = 10.0) -> bool:
        """Write what is queued, then stop the thread; False if it did not finish in time."""
        if not self._thread.is_alive():
            return True
        self._queue.put(None)
        self._thread.join(timeout_s)
        return not self._thread.is_alive()

    def _run(self) -> None:
        pending = _Pending()
        waiters: list[threading.Event] = []
        stopping = False
        while not stopping:
            deadline = time.monotonic() + self.flush_s
            while pending.size < self.max_items:
                try:
                    obj = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
                if obj is None:
                    stopping = True
                    break
                if isinstance(obj, threading.Event):
                    waiters.append(obj)
                    break
                _add(pending, obj)
            if pending.size or pending.purge_before is not None:
                if not self._write(pending):
                    if stopping:
                        log.error("writer stopped with %d unwritten items", pending.size)
                        break
                    time.sleep(RETRY_S)
                    continue
                pending = _Pending()
            for waiter in waiters:
                waiter.set()
            waiters.clear()
        for waiter in waiters:
            waiter.set()

    def _write(self, pending: _Pending) -> bool:
        """Write `pending` in one transaction; True on success."""
        from plugwatch.store import Batch

        started = time.perf_counter()
        try:
            if pending.size:
                self.store.write_batch(Batch(
                    readings=pending.readings, transitions=pending.transitions, runs=pending.runs,
                    snapshots=pending.snapshots, alerts=pending.alerts,
                ))
            if pending.purge_before is not None:
                self.store.purge_readings(pending.purge_before)
        except PlugwatchError as exc:
            self.stats.failures += 1
            self.stats.last_error = str(exc)
            log.error("database write failed (will retry): %s", exc)
            return False
        stats = self.stats
        stats.write_s += time.perf_counter() - started
        stats.batches += 1
        stats.readings += len(pending.readings)
        stats.events += len(pending.transitions) + len(pending.runs)
        stats.snapshots += len(pending.snapshots)
        return True


def _add(pending: _Pending, obj: Any) -> None:
    if obj[0] == "purge":
        pending.purge_before = max(pending.purge_before or 0.0, obj[1])
        return
    plug, reading, events, alerts, snapshot = obj
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
    pending.size += 1

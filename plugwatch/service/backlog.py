"""What the writer still has to write, in order, with the readings among it kept under a bound.

Only the writer thread touches a Backlog. While the database is away it grows; past
`max_readings` queued readings it is thinned: every other queued reading of each plug is dropped
(the newest kept) and from then on only 1 in `keep_every` arriving readings of each plug is
queued, so what is kept stays evenly spread over the whole outage (1 in 2, then 1 in 4, ...).
A snapshot-only item superseded by a newer snapshot of its plug goes too (the database keeps
only the newest anyway). Transitions, runs, alerts, rules state and purges are never dropped, and
neither is the snapshot that travels with an event. Once the backlog is empty, all is kept again.

The rules engine's state (an item's kv rows) is the engine's whole memory, hundreds of KB for a
few hundred plugs, and comes with every item that has events. Only the newest matters, so when a
newer one is queued the older one is emptied (RulesState): an outage holds one copy, not one per
event. It must still reach the database together with the events it accounts for, so a batch
that takes an emptied one goes on to the newest one queued (take()): one transaction, as before.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from plugwatch.model import Event, Reading

# One queued item: (plug, reading or None, events, alerts, detector snapshot (ts, dict) or None,
# kv rows (e.g. the rules engine's snapshot) or None). Written in one transaction unless the
# database refuses part of it (then its records are written one by one).
Item = tuple[
    str, Reading | None, "list[Event] | tuple[()]", "list[dict[str, Any]] | tuple[()]",
    tuple[float, dict] | None, dict[str, Any] | None,
]


@dataclass(frozen=True, slots=True)
class Purge:
    """Delete readings older than `before_ts` (retention)."""

    before_ts: float


@dataclass(frozen=True, slots=True)
class Failure:
    """Store `reason` as the plug's last failure (a failing spell began at `ts`)."""

    plug: str
    ts: float
    reason: str


Entry = Any  # an Item, a Purge, a Failure, or a threading.Event a flush() waits on


class RulesState(dict[str, Any]):
    """An item's kv rows while queued; emptied of the keys a newer queued item carries."""

    __slots__ = ()


class Backlog:
    """The writer thread's queue: items in order, readings counted and thinned past a bound."""

    def __init__(self, max_readings: int) -> None:
        self.max_readings = max_readings
        self.entries: deque[Entry] = deque()
        self.readings = 0  # queued readings
        self.thinned = 0  # readings dropped by thinning, ever
        self.keep_every = 1  # 1 in this many readings of each plug is kept
        self._arrived: dict[str, int] = {}  # per plug: readings arrived while thinning
        self._newest_kv: dict[str, RulesState] = {}  # kv key -> the newest queued RulesState
        self.kv_queued = 0  # queued items with a RulesState (emptied or not)

    def __len__(self) -> int:
        return len(self.entries)

    def add(self, entry: Entry) -> None:
        """Queue one entry at the end (while thinning, 1 in `keep_every` readings per plug)."""
        if type(entry) is tuple:
            if entry[5]:
                entry = (*entry[:5], self._newest(entry[5]))
            if entry[1] is not None:
                if self.keep_every > 1:
                    plug = entry[0]
                    n = self._arrived[plug] = self._arrived.get(plug, 0) + 1
                    if n % self.keep_every:
                        self.thinned += 1
                        if not (entry[2] or entry[3] or entry[4] is not None or entry[5]):
                            return
                        entry = (plug, None, *entry[2:])
                        self.entries.append(entry)
                        return
                self.readings += 1
        self.entries.append(entry)


    def _newest(self, kv: dict[str, Any]) -> RulesState:
        """`kv` as the newest RulesState; the older ones queued lose its keys."""
        state = RulesState(kv)
        for key in kv:
            older = self._newest_kv.get(key)
            if older is not None:
                older.pop(key, None)
            self._newest_kv[key] = state
        self.kv_queued += 1
        return state

    def relax(self) -> None:
        """Keep every reading again (call when the backlog has been written)."""
        self.keep_every = 1
        self._arrived.clear()

    def over(self) -> bool:
        """True when more readings are queued than allowed."""
        return self.readings > self.max_readings

    def take(self, max_items: int) -> list[Entry]:
        """Up to `max_items` entries from the front for one batch. flush() waiters at the front
        are released (all before them is written); a waiter further on ends the batch. A batch
        with rules state goes on until the last queued rules state (see the module's text);
        the waiters it passes are in it, to be set once it is written."""
        batch: list[Entry] = []
        entries, append = self.entries, batch.append
        kv_open = False  # the batch holds rules state and a newer one is still queued
        readings = 0
        while entries and (kv_open or len(batch) < max_items):
            entry = entries.popleft()
            if type(entry) is tuple:  # an Item (once per item: kept tight)
                append(entry)
                readings += entry[1] is not None
                if type(entry[5]) is RulesState:
                    self.kv_queued -= 1
                    kv_open = self.kv_queued > 0
            elif isinstance(entry, threading.Event) and not kv_open:
                if batch:
                    entries.appendleft(entry)
                    break
                entry.set()
            else:
                append(entry)
        self.readings -= readings
        return batch

    def put_back(self, batch: Iterable[Entry]) -> None:
        """Return a batch that could not be written to the front, in its order."""
        batch = list(batch)
        self.entries.extendleft(reversed(batch))
        self.readings += sum(1 for e in batch if type(e) is tuple and e[1] is not None)
        self.kv_queued += sum(1 for e in batch if type(e) is tuple and type(e[5]) is RulesState)

    def release_waiters(self) -> None:
        """Wake every flush() waiting (the writer is stopping)."""
        for entry in self.entries:
            if isinstance(entry, threading.Event):
                entry.set()

    def thin(self) -> int:
        """One pass: drop every other reading per plug (newest kept) and snapshots superseded
        by a newer one of their plug; returns how many readings were dropped."""
        seen: dict[str, int] = {}
        newer_snapshot: set[str] = set()
        kept: deque[Entry] = deque()
        dropped = 0
        for entry in reversed(self.entries):
            if type(entry) is tuple:
                plug, reading, events, alerts, snapshot, kv = entry
                if reading is not None:
                    n = seen.get(plug, 0)
                    seen[plug] = n + 1
                    if n % 2:
                        reading, dropped = None, dropped + 1
                if snapshot is not None:
                    if plug in newer_snapshot and not events:
                        snapshot = None
                    newer_snapshot.add(plug)
                if reading is None and snapshot is None and not events and not alerts and not kv:
                    continue
                if reading is not entry[1] or snapshot is not entry[4]:
                    entry = (plug, reading, events, alerts, snapshot, kv)
            kept.appendleft(entry)
        self.entries = kept
        self.readings -= dropped
        self.thinned += dropped
        if dropped:
            self.keep_every *= 2
        return dropped

    def counts(self) -> dict[str, int]:
        """What is queued: readings, events (transitions and runs), alerts, snapshots."""
        return entry_counts(self.entries)


def entry_counts(entries: Iterable[Entry]) -> dict[str, int]:
    """Readings, events (transitions and runs), alerts and snapshots in `entries`."""
    counts = {"readings": 0, "events": 0, "alerts": 0, "snapshots": 0}
    for entry in entries:
        if type(entry) is tuple:
            counts["readings"] += entry[1] is not None
            counts["events"] += len(entry[2])
            counts["alerts"] += len(entry[3])
            counts["snapshots"] += entry[4] is not None
    return counts

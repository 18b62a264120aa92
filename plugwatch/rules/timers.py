"""Timers by key (PURE): when each pending thing of the rules engine is due, earliest first.

A heap with lazy deletion: rescheduling or cancelling a key leaves its old entry in the heap,
skipped when it surfaces. `next()` and `pop_due()` cost O(log n) per timer, so 5,000 plugs'
`for:`, `repeat:` and duty-cycle checks do not make every tick walk every timer.
"""

from __future__ import annotations

import heapq
from collections.abc import Hashable, Iterator
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


class Timers(Generic[K]):
    """key -> due time; the earliest due key first."""

    def __init__(self) -> None:
        self._due: dict[K, float] = {}
        self._heap: list[tuple[float, int, K]] = []
        self._seq = 0  # ties keep scheduling order (and never compare keys)

    def __len__(self) -> int:
        return len(self._due)

    def __contains__(self, key: K) -> bool:
        return key in self._due

    def __iter__(self) -> Iterator[tuple[K, float]]:
        return iter(list(self._due.items()))

    def at(self, key: K, when: float | None) -> None:
        """Make `key` due at `when` (None cancels it)."""
        if when is None:
            self._due.pop(key, None)
            return
        self._due[key] = when
        self._seq += 1
        heapq.heappush(self._heap, (when, self._seq, key))
        if len(self._heap) > 4 * len(self._due) + 64:  # mostly stale entries: rebuild
            self._heap = [(t, i, k) for t, i, k in self._heap if self._due.get(k) == t]
            heapq.heapify(self._heap)

    def cancel(self, key: K) -> None:
        """Forget `key`'s timer (no-op when it has none)."""
        self._due.pop(key, None)

    def get(self, key: K) -> float | None:
        """When `key` is due (None: no timer)."""
        return self._due.get(key)

    def next(self) -> float | None:
        """The earliest due time, None when nothing is pending."""
        heap = self._heap
        while heap and self._due.get(heap[0][2]) != heap[0][0]:
            heapq.heappop(heap)  # cancelled or rescheduled since
        return heap[0][0] if heap else None

    def pop_due(self, now: float) -> list[K]:
        """Every key due at or before `now`, earliest first; their timers are removed."""
        due: list[K] = []
        while (when := self.next()) is not None and when <= now:
            _, _, key = heapq.heappop(self._heap)
            del self._due[key]
            due.append(key)
        return due

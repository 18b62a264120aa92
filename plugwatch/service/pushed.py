"""The plugs that report by themselves (sources.base.PushSource): started once, ticked on time.

One task ticks every push source about every `interval_s` (a heap of due times, so 10,000 plugs
cost one wake-up per due plug, not one task each). What a source reports goes to the service's
sink as it arrives; the tick only lets silence mean "unchanged" and finds stale plugs.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import time
from collections.abc import Callable, Iterable

from plugwatch.sources.base import PushSink, PushSource

log = logging.getLogger(__name__)


class PushHub:
    """Every push source of one service."""

    def __init__(self, sources: Iterable[PushSource], sink: PushSink, *,
                 clock: Callable[[], float] = time.time) -> None:
        self.sources = list(sources)
        self.sink = sink
        self.clock = clock
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Subscribe every source and start ticking them."""
        for source in self.sources:
            source.start(self.sink)
        if self.sources:
            self._task = asyncio.create_task(self._ticker(), name="push-ticks")

    async def _ticker(self) -> None:
        start = self.clock()
        due = [(start + s.interval_s * (1 + i / len(self.sources)), i)
               for i, s in enumerate(self.sources)]
        heapq.heapify(due)
        while True:
            now = self.clock()
            while due and due[0][0] <= now:
                at, i = heapq.heappop(due)
                source = self.sources[i]
                try:
                    source.tick(now)
                except Exception:  # one source's bug must not stop the others' ticks
                    log.exception("tick of push plug %r failed", source.name)
                heapq.heappush(due, (max(at + source.interval_s, now), i))
            await asyncio.sleep(min(1.0, max(0.01, due[0][0] - self.clock())))

    async def close(self) -> None:
        """Stop ticking and unsubscribe every source."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for source in self.sources:
            await source.close()

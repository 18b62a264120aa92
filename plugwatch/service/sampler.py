"""The sampler: reads every plug on its interval and hands each sample to a callback.

Scheduling cost must not grow with one job per plug (10,000 plugs at 1 Hz), so plugs sharing an
interval are spread over a handful of phase-shifted APScheduler interval jobs ("slots"). A slot's
job only starts one asyncio task per plug and returns; it never awaits a read. Each plug has at most
one read in flight: while a hung plug waits for its driver timeout, only its own ticks are skipped.
"""

from __future__ import annotations

import asyncio
import logging
import time
from array import array
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from plugwatch.errors import DeviceError
from plugwatch.meters import LATENESS_BOUNDS, Histogram
from plugwatch.model import ReadFailure, Sample
from plugwatch.sources.base import Driver

log = logging.getLogger(__name__)

SampleCallback = Callable[[str, Sample], None]
MAX_LATENESS_RECORDS = 2_000_000  # bounded memory for the bench's percentiles


@dataclass(eq=False, slots=True)
class SampledPlug:
    """One plug the sampler reads: its name, driver and interval."""

    name: str
    driver: Driver
    interval_s: float
    busy: bool = False  # a read is in flight


@dataclass(slots=True)
class SamplerStats:
    """Counters the service logs and the bench prints."""

    started: int = 0  # reads started
    failures: int = 0  # reads that ended in a ReadFailure
    skipped: int = 0  # ticks skipped because the plug's previous read was still in flight
    lateness_s: array = field(default_factory=lambda: array("d"))  # start - planned, per read
    lateness: Histogram = field(default_factory=lambda: Histogram(LATENESS_BOUNDS))  # /metrics

    def lateness_percentile(self, q: float) -> float:
        """The q-th percentile (0..100) of recorded lateness in seconds (0.0 when none)."""
        if not self.lateness_s:
            return 0.0
        ordered = sorted(self.lateness_s)
        index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
        return ordered[index]


@dataclass(eq=False, slots=True)
class _Slot:
    interval_s: float
    first_s: float  # epoch time of the first tick; tick n is planned at first_s + n * interval_s
    plugs: list[SampledPlug]


class Sampler:
    """Reads plugs on APScheduler interval jobs and calls `on_sample(plug_name, sample)`."""

    def __init__(
        self, plugs: list[SampledPlug], on_sample: SampleCallback, *,
        clock: Callable[[], float] = time.time, slots_per_interval: int = 10,
        plugs_per_slot: int = 100, start_delay_s: float = 0.1,
    ) -> None:
        self.plugs = plugs
        self.on_sample = on_sample
        self.clock = clock
        self.stats = SamplerStats()
        first_s = clock() + start_delay_s
        self._slots = _make_slots(plugs, slots_per_interval, plugs_per_slot, first_s)
        self._tasks: set[asyncio.Task[None]] = set()

    def schedule(self, scheduler: Any) -> None:
        """Add one APScheduler interval job per slot to `scheduler` (an AsyncIOScheduler)."""
        for i, slot in enumerate(self._slots):
            scheduler.add_job(
                self._tick, "interval", args=[slot], id=f"sample-slot-{i}",
                seconds=slot.interval_s, start_date=datetime.fromtimestamp(slot.first_s, UTC),
                max_instances=1, coalesce=True, misfire_grace_time=max(1, int(slot.interval_s)),
            )

    async def _tick(self, slot: _Slot) -> None:
        """Start a read for every idle plug of `slot`; never waits for them."""
        now = self.clock()
        ticks = round((now - slot.first_s) / slot.interval_s)
        planned = slot.first_s + max(0, ticks) * slot.interval_s
        for plug in slot.plugs:
            if plug.busy:
                self.stats.skipped += 1
                continue
            plug.busy = True
            task = asyncio.create_task(self._read(plug, planned))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _read(self, plug: SampledPlug, planned: float) -> None:
        now = self.clock()
        stats = self.stats
        stats.started += 1
        stats.lateness.observe(now - planned)
        if len(stats.lateness_s) < MAX_LATENESS_RECORDS:
            stats.lateness_s.append(now - planned)
        sample: Sample
        try:
            sample = await plug.driver.read(now)
        except DeviceError as exc:
            sample = ReadFailure(now, str(exc), exc.kind)
        except asyncio.CancelledError:
            plug.busy = False
            raise
        except Exception as exc:  # a driver bug must not stop the sampling of the others
            log.exception("driver of plug %r failed unexpectedly", plug.name)
            sample = ReadFailure(now, f"unexpected driver error: {type(exc).__name__}")
        plug.busy = False
        if isinstance(sample, ReadFailure):
            stats.failures += 1
        try:
            self.on_sample(plug.name, sample)
        except Exception:
            log.exception("handling a sample of plug %r failed", plug.name)

    def planned_reads(self, until: float) -> int:
        """How many reads were planned from the first tick up to epoch time `until`."""
        total = 0
        for slot in self._slots:
            if until >= slot.first_s:
                total += (int((until - slot.first_s) / slot.interval_s) + 1) * len(slot.plugs)
        return total

    @property
    def in_flight(self) -> int:
        """Reads currently in flight."""
        return len(self._tasks)

    async def drain(self, timeout_s: float) -> int:
        """Wait up to `timeout_s` for reads in flight, cancel the rest; return how many."""
        if not self._tasks:
            return 0
        _, pending = await asyncio.wait(set(self._tasks), timeout=timeout_s)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=1.0)
        return len(pending)


def _make_slots(
    plugs: list[SampledPlug], per_interval: int, per_slot: int, first_s: float,
) -> list[_Slot]:
    """Group plugs by interval, then deal each group round-robin into phase-shifted slots.

    At least `per_interval` slots (when there are that many plugs), more when a slot would hold
    over `per_slot` plugs: a smaller burst of reads per tick keeps the lateness of the last low.
    """
    by_interval: dict[float, list[SampledPlug]] = {}
    for plug in plugs:
        by_interval.setdefault(plug.interval_s, []).append(plug)
    slots = []
    for interval, group in sorted(by_interval.items()):
        count = max(1, min(per_interval, len(group)), -(-len(group) // per_slot))
        for k in range(count):
            phase = first_s + interval * k / count
            slots.append(_Slot(interval, phase, group[k::count]))
    return slots

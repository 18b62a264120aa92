"""The sampler: reads every plug on its interval and hands each sample to a callback.

Plugs sharing an interval and timeout are dealt into a handful of phase-shifted slots, each ticked
by one APScheduler interval job (the cost is per slot, not per plug). A slot's tick begins a read
for every idle plug and returns:

- a CallbackDriver (Kasa) just writes its pre-built request; the answer is parsed in the socket's
  callback and handed straight to `on_sample`: no task, lock or timer per read. Timeouts are
  found by one sweep per slot and tick, which runs after the loop has polled the sockets once
  more, so an answer that arrived while the loop was busy is never taken for a timeout (and a
  late loop never tears down connections).
- any other Driver is read by one task per read awaiting `read()` (it owns its timeout).

Each plug has at most one read in flight: while a hung plug waits out its timeout, only its own
ticks are skipped. When the loop falls a whole interval behind, APScheduler runs the job once for
all the run times missed (coalesce) and the tick skips and counts them: each plug's next read is
simply at the next interval. `plugwatch run` logs once when
this process cannot keep up, with the rate it sustains (sampling_stats.KeepUp).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from plugwatch.errors import DeviceError
from plugwatch.model import ReadFailure, Reading, Sample
from plugwatch.service.sampling_stats import BINS, KeepUp, SamplerStats
from plugwatch.sources.base import CallbackDriver, Driver, ReadResult

log = logging.getLogger(__name__)

SampleCallback = Callable[[str, Sample], None]
WATCH_S = 10.0  # the keep-up check's window


_FAST: dict[type, bool] = {}  # driver class -> is it a CallbackDriver


class SampledPlug:
    """One plug the sampler reads: its name, driver, interval and timeout (its driver's)."""

    __slots__ = ("_driver", "busy", "deadline", "fast", "interval_s", "name", "paused",
                 "planned", "sampler", "timeout_s", "ts")

    def __init__(self, name: str, driver: Driver, interval_s: float,
                 timeout_s: float | None = None, *, paused: bool = False) -> None:
        self.name = name
        self.driver = driver
        self.interval_s = interval_s
        self.timeout_s = timeout_s if timeout_s is not None else float(
            getattr(driver, "timeout", 2.0))
        self.busy = False  # a read is in flight
        self.paused = paused  # not read at all (a plug whose lease another instance holds)
        self.ts = 0.0  # epoch time the read in flight began (its sample's stamp)
        self.planned = 0.0  # epoch time it was planned for
        self.deadline = 0.0  # loop time after which it has timed out (fast path)
        self.sampler: Sampler | None = None

    @property
    def driver(self) -> Driver:
        """The plug's driver (it may be replaced between reads)."""
        return self._driver

    @driver.setter
    def driver(self, driver: Driver) -> None:
        self._driver = driver
        # read through the driver's task-free `begin` (else read() in a task); not a bound
        # method kept per plug: 64 bytes each
        kind = type(driver)
        fast = _FAST.get(kind)
        if fast is None:  # a Protocol's isinstance costs 50 us: once per class, not per plug
            fast = _FAST[kind] = isinstance(driver, CallbackDriver)
        self.fast = fast

    def __call__(self, result: ReadResult) -> None:
        """The read in flight ended with `result` (a Reading or a DeviceError): the plug itself
        is the `done` callback of its reads (no bound method kept per plug)."""
        self.busy = False
        sampler = self.sampler
        assert sampler is not None
        sampler._in_flight -= 1
        stats = sampler.stats
        stats.done += 1
        late = sampler.clock() - self.planned
        hist = stats.done_lateness  # Histogram.add inlined: this runs once per reading
        i = int(late * 1000.0)
        hist.counts[0 if i < 0 else (i if i < BINS else BINS)] += 1
        hist.sum += late
        if sampler.closed:
            return
        sample: Sample
        if type(result) is Reading:
            sample = result
        else:
            stats.failures += 1
            sample = ReadFailure(self.ts, str(result), getattr(result, "kind", "error"))
        try:
            sampler.on_sample(self.name, sample)
        except Exception:
            log.exception("handling a sample of plug %r failed", self.name)


@dataclass(eq=False, slots=True)
class _Slot:
    interval_s: float
    timeout_s: float
    first_s: float  # epoch time of tick 0; tick n is planned at first_s + n * interval_s
    plugs: list[SampledPlug]
    last: int = -1  # the last tick that ran
    job: Any = field(default=None, repr=False)  # its APScheduler job


class Sampler:
    """Reads plugs on their intervals and calls `on_sample(plug_name, sample)` for each read.

    `clock` (epoch seconds) stamps the samples and lays out the ticks; APScheduler fires them
    on the wall clock, so it must advance with real time (the default time.time does).
    """

    def __init__(
        self, plugs: list[SampledPlug], on_sample: SampleCallback, *,
        clock: Callable[[], float] = time.time, slots_per_interval: int = 10,
        plugs_per_slot: int = 100, start_delay_s: float = 0.1,
    ) -> None:
        self.plugs = plugs
        self.on_sample = on_sample
        self.clock = clock
        self.stats = SamplerStats()
        self.closed = False  # after drain(): late results are dropped
        self.start_delay_s = start_delay_s
        for plug in plugs:
            plug.sampler = self
        self._slots = _make_slots(plugs, slots_per_interval, plugs_per_slot)
        self._tasks: set[asyncio.Task[None]] = set()
        self._in_flight = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._scheduler: Any = None
        self._own_scheduler = False
        self._watch: asyncio.TimerHandle | None = None
        self._keep_up = self._new_keep_up()

    def start(self, scheduler: Any = None) -> None:
        """Begin ticking in the running event loop (the first ticks after `start_delay_s`).

        Each slot is one APScheduler interval job on `scheduler` (a running AsyncIOScheduler;
        without one the sampler starts and later stops its own).
        """
        loop = self._loop = asyncio.get_running_loop()
        if scheduler is None:
            from apscheduler.schedulers.asyncio import AsyncIOScheduler

            scheduler = AsyncIOScheduler()
            scheduler.start()
            self._own_scheduler = True
        self._scheduler = scheduler
        epoch0 = self.clock() + self.start_delay_s
        for i, slot in enumerate(self._slots):
            slot.first_s += epoch0
            # coalesce: after a stall, one run for all the run times missed; no grace limit,
            # as the tick itself skips and counts what was missed (a limit would drop that
            # run too, with a warning per slot, whenever the loop is late: under overload)
            slot.job = scheduler.add_job(
                self._fire, "interval", args=[slot], id=f"sample-slot-{i}",
                seconds=slot.interval_s, start_date=datetime.fromtimestamp(slot.first_s, UTC),
                max_instances=1, coalesce=True, misfire_grace_time=None)
        self._keep_up = self._new_keep_up()
        self._watch = loop.call_later(WATCH_S, self._check_keep_up)

    def stop(self) -> None:
        """No more ticks (reads in flight go on; `drain` waits for them)."""
        for slot in self._slots:
            if slot.job is not None:
                with contextlib.suppress(LookupError):  # the scheduler may be shut down already
                    slot.job.remove()
                slot.job = None
        if self._own_scheduler and self._scheduler is not None:
            self._scheduler.shutdown(wait=False)
            self._own_scheduler = False
        if self._watch is not None:
            self._watch.cancel()
            self._watch = None

    async def drain(self, timeout_s: float) -> int:
        """Stop ticking, wait up to `timeout_s` for reads in flight, cut the rest; how many."""
        self.stop()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while self._in_flight > 0 and loop.time() < deadline:
            await asyncio.sleep(0.02)
        cut = self._in_flight
        self.closed = True
        for plug in self.plugs:
            if plug.busy and plug.fast:
                plug.driver.expire()  # type: ignore[attr-defined]
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=1.0)
        return cut

    def busy(self, names: set[str]) -> bool:
        """True while a read of any of these plugs is in flight."""
        return any(plug.busy for plug in self.plugs if plug.name in names)

    @property
    def in_flight(self) -> int:
        """Reads currently in flight."""
        return self._in_flight

    def planned_reads(self, until: float) -> int:
        """How many reads were planned from the first tick up to epoch time `until`."""
        total = 0
        for slot in self._slots:
            if until >= slot.first_s:
                total += (int((until - slot.first_s) / slot.interval_s) + 1) * len(slot.plugs)
        return total

    async def _fire(self, slot: _Slot) -> None:
        """The slot's APScheduler job (a coroutine job runs in the loop, not in a thread)."""
        self._tick(slot)

    def _tick(self, slot: _Slot) -> None:
        """Begin a read for every idle plug of `slot`; never waits for one."""
        loop = self._loop
        assert loop is not None
        now = self.clock()
        interval = slot.interval_s
        n = int((now - slot.first_s) / interval + 1e-9)  # the tick due last
        if n <= slot.last:
            return  # this tick ran already
        stats = self.stats
        if slot.last >= 0:  # how late the loop is: since the first tick not run was due
            stats.tick_lag.add(now - slot.first_s - (slot.last + 1) * interval)
        if slot.last >= 0 and n > slot.last + 1:  # a late loop lost whole ticks: count them
            missed = (n - slot.last - 1) * sum(not plug.paused for plug in slot.plugs)
            stats.behind += missed
            stats.skipped += missed
        slot.last = n
        planned = slot.first_s + n * interval
        loop_now = loop.time()
        deadline = loop_now + slot.timeout_s
        begun = fast = 0
        for plug in slot.plugs:
            if plug.busy or plug.paused:
                stats.skipped += not plug.paused
                continue
            plug.busy = True
            plug.ts, plug.planned = now, planned
            begun += 1
            if plug.fast:
                fast += 1
                plug.deadline = deadline
                try:
                    plug._driver.begin(now, plug)  # type: ignore[attr-defined]
                except Exception as exc:  # a driver bug must not stop the sampling of the others
                    log.exception("driver of plug %r failed unexpectedly", plug.name)
                    plug(DeviceError(f"unexpected driver error: {type(exc).__name__}"))
            else:
                task = loop.create_task(self._read(plug))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        self._in_flight += begun
        stats.started += begun
        if begun:
            stats.start_lateness.add(now - planned, begun)
        if fast:
            loop.call_at(deadline, self._sweep, slot)

    def _sweep(self, slot: _Slot) -> None:
        """A slot's reads are due: look once more after the loop has polled every socket."""
        assert self._loop is not None
        self._loop.call_at(self._loop.time(), self._expire_due, slot)

    def _expire_due(self, slot: _Slot) -> None:
        assert self._loop is not None
        now = self._loop.time()
        for plug in slot.plugs:
            if plug.busy and plug.fast and plug.deadline <= now:
                plug.driver.expire()  # type: ignore[attr-defined]

    async def _read(self, plug: SampledPlug) -> None:
        result: ReadResult
        try:
            result = await plug.driver.read(plug.ts)
        except DeviceError as exc:
            result = exc
        except asyncio.CancelledError:
            plug.busy = False
            self._in_flight -= 1
            raise
        except Exception as exc:  # a driver bug must not stop the sampling of the others
            log.exception("driver of plug %r failed unexpectedly", plug.name)
            result = DeviceError(f"unexpected driver error: {type(exc).__name__}")
        plug(result)

    def _new_keep_up(self) -> KeepUp:
        def planned_per_s() -> float:  # the plugs sampled now (a clustered instance's change)
            return sum(1 / p.interval_s for p in self.plugs if not p.paused)

        return KeepUp(self.stats, planned_per_s, len(self.plugs))

    def _check_keep_up(self) -> None:
        assert self._loop is not None
        warning = self._keep_up.check()
        if warning is not None:
            log.warning(warning)
        self._watch = self._loop.call_later(WATCH_S, self._check_keep_up)


def _make_slots(plugs: list[SampledPlug], per_interval: int, per_slot: int) -> list[_Slot]:
    """Group plugs by interval and timeout, then deal each group round-robin into phase-shifted
    slots (first_s relative to the start until `start` adds the epoch time).

    At least `per_interval` slots (when there are that many plugs), more when a slot would hold
    over `per_slot` plugs: a smaller burst of reads per tick keeps the lateness of the last low.
    """
    groups: dict[tuple[float, float], list[SampledPlug]] = {}
    for plug in plugs:
        groups.setdefault((plug.interval_s, plug.timeout_s), []).append(plug)
    slots = []
    for (interval, timeout), group in sorted(groups.items()):
        count = max(1, min(per_interval, len(group)), -(-len(group) // per_slot))
        for k in range(count):
            slots.append(_Slot(interval, timeout, interval * k / count, group[k::count]))
    return slots

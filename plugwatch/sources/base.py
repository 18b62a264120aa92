"""The two source interfaces: a polled Driver is read on a schedule, a PushSource reports itself.

Every polled driver has the async `read()`. A driver may also offer the task-free fast path of
`CallbackDriver` (Kasa does); the sampler uses it when it is there and `read()` otherwise.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

from plugwatch.errors import DeviceError
from plugwatch.model import Reading, Sample

ReadResult = Reading | DeviceError
ReadDone = Callable[[ReadResult], None]


class Driver(Protocol):
    """Reads one plug (one outlet of a strip is a plug of its own).

    `read()` returns a Reading stamped with `now` (seconds since the epoch, passed in so the
    caller owns the clock), or raises a plugwatch.errors.DeviceError subclass whose message is one
    line naming the plug, e.g. "timeout after 2 s reading 10.0.0.4:9999". It never raises anything
    else and never takes longer than its timeout. Only one request is in flight per connection.
    """

    async def read(self, now: float) -> Reading: ...

    async def close(self) -> None: ...


@runtime_checkable
class CallbackDriver(Driver, Protocol):
    """A Driver that can also read without a task, a lock or a timer per read.

    `begin(now, done)` sends one request and returns; `done(result)` is then called exactly once
    from the event loop with the Reading stamped `now`, or with the DeviceError that says why
    the read failed. One read at a time per driver. The caller owns the clock: when `timeout`
    seconds have passed without `done`, it calls `expire()`, which ends the read at once (calling
    `done` with a DeviceTimeout) and drops the connection, so the next read starts afresh.
    """

    timeout: float

    def begin(self, now: float, done: ReadDone) -> None: ...

    def expire(self) -> None: ...


PushSink = Callable[[str, Sample, bool], None]  # (plug name, sample, store it as a reading)


class PushSource(Protocol):
    """A plug that reports by itself (over MQTT): its messages become samples through a sink.

    `start(sink)` subscribes; from then on every report calls `sink(name, Reading, True)` stamped
    with the time it arrived, and a definite loss (the device's own availability says offline,
    silence longer than its `stale_after`, the broker gone) calls `sink(name, ReadFailure, False)`
    once, with a one-line reason. Silence is "unchanged": `tick(now)`, called about every
    `interval_s`, hands the last reading on again re-stamped at `now` (`sink(..., False)`: fed to
    the detector, not stored) so dwell times end on time, declares the plug stale, or asks the
    device for a fresh report. A bad message is logged as one line and changes nothing.
    """

    name: str
    interval_s: float

    def start(self, sink: PushSink) -> None: ...

    def tick(self, now: float) -> None: ...

    async def close(self) -> None: ...

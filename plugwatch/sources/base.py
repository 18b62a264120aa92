"""The driver interface: a driver turns one plug (or one outlet of a strip) into readings."""

from __future__ import annotations

from typing import Protocol

from plugwatch.model import Reading


class Driver(Protocol):
    """Reads one plug (one outlet of a strip is a plug of its own).

    `read()` returns a Reading stamped with `now` (seconds since the epoch, passed in so the
    caller owns the clock), or raises a plugwatch.errors.DeviceError subclass whose message is one
    line naming the plug, e.g. "timeout after 2 s reading 10.0.0.4:9999". It never raises anything
    else and never takes longer than its timeout. Only one request is in flight per connection.
    """

    async def read(self, now: float) -> Reading: ...

    async def close(self) -> None: ...

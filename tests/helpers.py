"""Helpers shared by several test modules (shared fixtures are in conftest.py)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any


class Clock:
    """A clock the test sets by hand: calling it returns `now` (seconds)."""

    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def wait_for(predicate: Callable[[], bool], timeout: float, every: float = 0.05) -> None:
    """Poll `predicate` every `every` s until true (fails the test after `timeout` s)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        await asyncio.sleep(every)
    raise AssertionError(f"condition not met within {timeout} s")


class Cued:
    """A power source (W of emulated seconds) that plays `profile` from the moment the test
    calls `start(plug)`: `profile(t - t0)`, and `profile(0)` until then. A profile keyed on the
    emulator's own start could play out before a slow service (a loaded machine) reads the plug;
    started once the service has seen the plug, every step of it is read."""

    def __init__(self, profile: Callable[[float], float]) -> None:
        self.profile = profile
        self.t0: float | None = None

    def start(self, plug: Any) -> None:
        """Begin the profile now (`plug` is the EmulatedPlug this source powers)."""
        self.t0 = plug.emulated_seconds()

    def __call__(self, t: float) -> float:
        return self.profile(0.0 if self.t0 is None else max(0.0, t - self.t0))

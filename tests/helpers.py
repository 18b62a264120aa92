"""Helpers shared by several test modules (shared fixtures are in conftest.py)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


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

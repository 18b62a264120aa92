"""What a driver remembers about its device from one start to the next (python-kasa's connection
parameters, the model and firmware it saw), kept in the database's kv_state as `device/<plug>`.

Never a secret: no password, no credentials hash, no session key. The service gives every driver
that has a `memory` attribute a StoreMemory (`attach`); drivers built without a service (`plugwatch
read`, tests) keep None and simply discover their device each time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from plugwatch.service.writer import Writer
    from plugwatch.store import Store

PREFIX = "device/"


class DeviceMemory(Protocol):
    """Where a driver recalls and keeps the facts of its plug's device (JSON-able dicts)."""

    async def recall(self, plug: str) -> dict[str, Any] | None: ...

    def remember(self, plug: str, facts: dict[str, Any] | None) -> None: ...


class StoreMemory:
    """DeviceMemory in the store's kv_state: read once (in a thread), written through the
    service's one writer, so the event loop never waits on the database."""

    def __init__(self, store: Store, writer: Writer) -> None:
        self.store = store
        self.writer = writer
        self._known: dict[str, Any] | None = None
        self._lock = asyncio.Lock()

    async def recall(self, plug: str) -> dict[str, Any] | None:
        async with self._lock:
            if self._known is None:
                rows = await asyncio.to_thread(self.store.load_kv, PREFIX)
                self._known = {k.removeprefix(PREFIX): v for k, v in rows.items()}
        value = self._known.get(plug)
        return value if isinstance(value, dict) else None

    def remember(self, plug: str, facts: dict[str, Any] | None) -> None:
        """Keep `facts` for `plug` (None: forget them, e.g. after the device changed)."""
        if self._known is not None:
            self._known[plug] = facts
        self.writer.put((plug, None, [], [], None, {PREFIX + plug: facts}))


def attach(drivers: Iterable[Any], memory: DeviceMemory) -> None:
    """Give `memory` to every driver that keeps facts about its device."""
    for driver in drivers:
        if hasattr(driver, "memory"):
            driver.memory = memory

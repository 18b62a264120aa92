"""Helpers for tests, the demo and the benches: configs for emulated plugs, a service runner.

    config = emulated_config({"washer": port}, "sqlite:///t.db", interval_s=0.2, detector=s)
    async with running_service(config) as service:   # the real Service, stopped cleanly on exit
        ...
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable
from typing import TYPE_CHECKING, Any

from plugwatch.model import DetectorSettings

if TYPE_CHECKING:
    from plugwatch.config import Config
    from plugwatch.store import Store


def emulated_config(
    ports: dict[str, int], database: str, *, interval_s: float = 0.5, timeout_s: float = 0.4,
    detector: DetectorSettings | None = None, retention_s: float | None = None,
    drivers: dict[str, str] | None = None,
) -> Any:
    """A Config (no file) whose plugs are on 127.0.0.1 at `ports` (name -> port); each is a Kasa
    plug unless `drivers` names another family for it (name -> driver, e.g. "shelly")."""
    from plugwatch.config import config_from_dict

    families = drivers or {}
    return config_from_dict({
        "database": database,
        "defaults": {"interval": interval_s, "timeout": timeout_s},
        "plugs": [{"name": name, "driver": families.get(name, "kasa"),
                   "host": f"127.0.0.1:{port}"} for name, port in ports.items()],
    }, detector=detector, retention_s=retention_s)


@contextlib.asynccontextmanager
async def running_service(
    config: Config, store: Store | None = None, listeners: Iterable[Any] = (), **options: Any,
) -> AsyncIterator[Any]:
    """Run the real Service on `config` for the body of the block, then stop it cleanly."""
    from plugwatch.service.service import Service
    from plugwatch.store import open_store

    own_store = store is None
    if store is None:
        store = await asyncio.to_thread(open_store, config.database)
    mqtt = None
    if config.mqtt is not None and "mqtt" not in options:  # as run_service does
        from plugwatch.mqtt.client import client_for

        mqtt = options["mqtt"] = client_for(config.mqtt)
        mqtt.start()
    service = Service(config, store, listeners=listeners, **options)
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    try:
        await asyncio.sleep(0)
        yield service
    finally:
        stop.set()
        await task
        if mqtt is not None:
            await mqtt.close()
        if own_store:
            store.close()

"""Outputs: what the running service shows to other programs (HTTP, metrics, systemd, InfluxDB,
MQTT states with Home Assistant discovery).

    outputs = Outputs(config, shard=None)        # builds only what the config turns on
    service = Service(config, store, listeners=outputs.listeners,
                      sample_listeners=outputs.sample_listeners)
    await outputs.start(service, stop)           # binds the HTTP port; READY=1 once sampling
    ...
    await outputs.stop()

Each output observes the service through the listener hooks and its live objects; none of them
can block sampling (see docs/observability.md).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from plugwatch.outputs.systemd import SystemdNotifier
from plugwatch.service.meters import ServiceMeters

log = logging.getLogger(__name__)


class Outputs:
    """The outputs one `plugwatch run` process serves, built from its config."""

    def __init__(
        self, config: Any, *, shard: tuple[int, int] | None = None,
        clock: Callable[[], float] = time.time, systemd: SystemdNotifier | None = None,
        every_plug: list[str] | None = None,
    ) -> None:
        self.config = config
        self.shard = shard
        self.clock = clock
        self.systemd = systemd or SystemdNotifier()
        http = getattr(config, "http", None)
        watched = http is not None or self.systemd.watchdog_s is not None
        self.meters = ServiceMeters([p.name for p in config.plugs], clock) if watched else None
        self.view: Any = None  # the LiveView, once started
        self.http: Any = None
        if http is not None:
            from plugwatch.outputs.http import HttpEndpoint

            port = http.port
            if shard is not None and port:  # --workers K: worker i listens on port + i
                port += shard[0]
            self.http = HttpEndpoint(http.host, port)
        self.influx: Any = None
        if getattr(config, "influxdb", None) is not None:
            from plugwatch.outputs.influx import InfluxOutput

            self.influx = InfluxOutput(config.influxdb)
        self.mqtt: Any = None
        mqtt = getattr(config, "mqtt", None)
        if mqtt is not None and mqtt.publish:  # every_plug: all shards' plugs, for removals
            from plugwatch.outputs.mqtt import MqttOutput

            self.mqtt = MqttOutput(mqtt, config.plugs, every_plug=every_plug, clock=clock)
        self._tasks: list[asyncio.Task[None]] = []
        self._influx_task: asyncio.Task[None] | None = None

    @property
    def listeners(self) -> list[Callable[[Any], None]]:
        """Event listeners for the Service (live transitions and runs)."""
        own = [self.meters.on_event] if self.meters is not None else []
        return own + [o.on_event for o in (self.influx, self.mqtt) if o is not None]

    @property
    def sample_listeners(self) -> list[Callable[[str, Any], None]]:
        """Sample listeners for the Service (every live reading and failure)."""
        own = [self.meters.on_sample] if self.meters is not None else []
        return own + [o.on_sample for o in (self.influx, self.mqtt) if o is not None]

    async def start(self, service: Any, stop: asyncio.Event) -> None:
        """Start serving `service` (whose listeners must be the ones above) until `stop`."""
        if self.meters is not None:
            from plugwatch.outputs.live import LiveView

            self.view = LiveView(service, self.meters, clock=self.clock)
        if self.http is not None:
            from plugwatch.outputs.metrics import ServiceCollector, render
            from plugwatch.outputs.page import StatusPage

            collector = ServiceCollector(
                self.view, extra=[self.influx.collect] if self.influx is not None else [])
            zone = getattr(self.config, "timezone", None) or "UTC"
            self.http.page = StatusPage(self.view, zone=zone, clock=self.clock)
            await self.http.start(self.view, lambda: render(collector))
        self._tasks.append(asyncio.create_task(self._systemd(service, stop)))
        if self.influx is not None:
            self._influx_task = asyncio.create_task(self.influx.run(stop))
        if self.mqtt is not None:
            await self.mqtt.start(service)

    async def _systemd(self, service: Any, stop: asyncio.Event) -> None:
        started = asyncio.ensure_future(service.started.wait())
        await asyncio.wait([started, asyncio.ensure_future(stop.wait())],
                           return_when=asyncio.FIRST_COMPLETED)
        if started.done():
            self.systemd.ready(f"sampling {len(service.detectors)} plugs")
            if self.view is not None:
                await self.systemd.watchdog(self.view.health, stop)
        else:
            started.cancel()
        await stop.wait()
        self.systemd.stopping()

    def reloading(self) -> None:
        """A reload (SIGHUP) has begun."""
        self.systemd.reloading()

    def reloaded(self) -> None:
        """The reload is done."""
        self.systemd.ready("sampling (reloaded)")

    async def stop(self) -> None:
        """Stop every output."""
        if self.mqtt is not None:
            await self.mqtt.stop()
        for task in self._tasks:
            if not task.done():
                task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._influx_task is not None:  # it sends what is left (bounded), then ends
            await self._influx_task
        if self.http is not None:
            await self.http.stop()

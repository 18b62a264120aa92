"""Outputs: what the running service shows to other programs (HTTP endpoint, metrics, health).

    outputs = Outputs(config, shard=None)        # builds only what the config turns on
    service = Service(config, store, listeners=outputs.listeners,
                      sample_listeners=outputs.sample_listeners)
    await outputs.start(service)                 # binds the HTTP port
    ...
    await outputs.stop()

Each output observes the service through the listener hooks and its live objects; none of them
can block sampling (see docs/observability.md).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from plugwatch.meters import ServiceMeters

log = logging.getLogger(__name__)


class Outputs:
    """The outputs one `plugwatch run` process serves, built from its config."""

    def __init__(
        self, config: Any, *, shard: tuple[int, int] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.shard = shard
        self.clock = clock
        http = getattr(config, "http", None)
        self.meters = ServiceMeters([p.name for p in config.plugs], clock) if http else None
        self.http: Any = None
        if http is not None:
            from plugwatch.outputs.http import HttpEndpoint

            port = http.port
            if shard is not None and port:  # --workers K: worker i listens on port + i
                port += shard[0]
            self.http = HttpEndpoint(http.host, port)

    @property
    def listeners(self) -> list[Callable[[Any], None]]:
        """Event listeners for the Service (live transitions and runs)."""
        return [self.meters.on_event] if self.meters is not None else []

    @property
    def sample_listeners(self) -> list[Callable[[str, Any], None]]:
        """Sample listeners for the Service (every live reading and failure)."""
        return [self.meters.on_sample] if self.meters is not None else []

    async def start(self, service: Any) -> None:
        """Start serving `service` (whose listeners must be the ones above)."""
        if self.http is not None and self.meters is not None:
            from plugwatch.outputs.live import LiveView
            from plugwatch.outputs.metrics import ServiceCollector, render

            view = LiveView(service, self.meters, clock=self.clock)
            collector = ServiceCollector(view)
            await self.http.start(view, lambda: render(collector))

    async def stop(self) -> None:
        """Stop every output."""
        if self.http is not None:
            await self.http.stop()

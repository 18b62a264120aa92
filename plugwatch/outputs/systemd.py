"""systemd's notify protocol (sd_notify), in a few lines: READY, WATCHDOG, RELOADING, STOPPING.

systemd passes a unix datagram socket in NOTIFY_SOCKET (a path, or "@name" in the abstract
namespace); each message is one datagram of newline-separated KEY=VALUE lines. With
`WatchdogSec=` it also sets WATCHDOG_USEC (and WATCHDOG_PID): the service must send WATCHDOG=1
more often than that, or systemd restarts it. plugwatch pings only while it is healthy (sampling
and writing make progress, the same test as /healthz), so a stuck writer gets it restarted.
Outside systemd (no NOTIFY_SOCKET) every call does nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Callable, Mapping
from typing import Any

log = logging.getLogger(__name__)


class SystemdNotifier:
    """Sends sd_notify messages to NOTIFY_SOCKET (a no-op without one)."""

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        env = os.environ if env is None else env
        self.address = env.get("NOTIFY_SOCKET") or None
        if self.address and self.address.startswith("@"):
            self.address = "\0" + self.address[1:]  # the abstract namespace
        self.watchdog_s: float | None = None
        usec, pid = env.get("WATCHDOG_USEC"), env.get("WATCHDOG_PID")
        if self.address and usec and usec.isdigit() and int(usec) > 0 and (
                not pid or pid == str(os.getpid())):
            self.watchdog_s = int(usec) / 1e6
        self._warned = False

    @property
    def enabled(self) -> bool:
        """True when running under systemd with a notify socket."""
        return self.address is not None

    def notify(self, *lines: str) -> bool:
        """Send one message (KEY=VALUE lines); False when there is no socket or it failed."""
        if self.address is None:
            return False
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.connect(self.address)
                sock.sendall("\n".join(lines).encode())
        except OSError as exc:
            if not self._warned:  # once: systemd restarting does not need a line per ping
                log.warning("cannot notify systemd at %s: %s", os.environ.get("NOTIFY_SOCKET"),
                            exc.strerror or exc)
                self._warned = True
            return False
        return True

    def ready(self, status: str) -> None:
        """Tell systemd the service is up (after sampling has started)."""
        self.notify("READY=1", f"STATUS={status}")

    def reloading(self) -> None:
        """Tell systemd a reload (SIGHUP) has begun; ready() ends it."""
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        self.notify("RELOADING=1", f"MONOTONIC_USEC={usec}")

    def stopping(self) -> None:
        """Tell systemd the service is shutting down."""
        self.notify("STOPPING=1", "STATUS=stopping: flushing the database writer")

    async def watchdog(self, healthy: Callable[[], Any], stop: asyncio.Event) -> None:
        """Ping WATCHDOG=1 every half watchdog period while `healthy()` is ok, until `stop`."""
        if self.watchdog_s is None:
            return
        every = self.watchdog_s / 2
        unhealthy = ""
        while not stop.is_set():
            health = healthy()
            if health.ok:
                self.notify("WATCHDOG=1", *(["STATUS=sampling"] if unhealthy else []))
                unhealthy = ""
            elif health.reason != unhealthy:  # no ping: systemd restarts us if this lasts
                log.error("not pinging the systemd watchdog: %s", health.reason)
                self.notify(f"STATUS=unhealthy: {health.reason}")
                unhealthy = health.reason
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), every)

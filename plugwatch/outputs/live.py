"""What the running service shows to the outside: each plug's live state and the service's health.

Read from the service's own objects (detectors, meters, sampler and writer counters) without a
lock: every value is a plain attribute that the event loop replaces whole, so a reader in another
thread sees the old or the new value, never half of one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from plugwatch.formatting import iso
from plugwatch.service.meters import ServiceMeters

STUCK_AFTER_S = 30.0  # a writer with work queued and no successful write this long is stuck


@dataclass(frozen=True, slots=True)
class Health:
    """ok, or not ok with a one-line reason (the /healthz body)."""

    ok: bool
    reason: str = "ok"


class LiveView:
    """The live state of one Service (its plugs, its writer, its sampler) for outputs."""

    def __init__(
        self, service: Any, meters: ServiceMeters, *, clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.service = service
        self.meters = meters
        self.clock = clock
        self.monotonic = monotonic
        self.started_at = clock()
        self.stuck_after_s = STUCK_AFTER_S
        plugs = service.config.plugs
        # sampling has stalled when no sample at all arrived for this long
        self.stall_after_s = max(30.0, max(
            (3 * p.interval_s + p.timeout_s for p in plugs), default=0.0))

    @property
    def store(self) -> Any:
        """The service's Store."""
        return self.service.store

    def plug_names(self) -> list[str]:
        """The plugs this service samples, in config order."""
        return list(self.service.detectors)

    def plugs(self) -> list[dict[str, Any]]:
        """One dict per plug: state, since, smoothed and raw power, energy, contact, counts."""
        rows = []
        failing = getattr(getattr(self.service, "failures", None), "reason", None)
        for name, detector in list(self.service.detectors.items()):
            last = detector.last  # (ts, raw W, energy kWh) of the last good reading
            meter = self.meters.plugs.get(name)
            since = detector.since
            rows.append({
                "plug": name, "state": str(detector.state),
                "since": iso(since) if since else None, "since_ts": since,
                "power_w": detector.last_power_w,
                "raw_power_w": last[1] if last else None,
                "energy_kwh": last[2] if last else None,
                "last_contact": iso(last[0]) if last else None,
                "last_contact_ts": last[0] if last else None,
                "reads": meter.reads if meter else 0,
                "failures": sum(meter.failures.values()) if meter else 0,
                "last_failure": failing(name) if failing else None,
            })
        return rows

    def health(self) -> Health:
        """Healthy while sampling and writing make progress; else the first reason why not."""
        service = self.service
        if not service.started.is_set():
            return Health(False, "starting: restoring the detectors from the database")
        writer = service.writer
        stats = writer.stats
        if not writer.alive:
            return Health(False, "the database writer has stopped")
        if stats.failing:
            return Health(False, f"database unreachable: {stats.last_error}")
        queued = writer.queued
        idle_s = self.monotonic() - stats.last_ok
        if queued and idle_s > self.stuck_after_s:
            return Health(False, f"database writer stuck: {queued} items waiting, last write "
                                 f"{idle_s:.0f} s ago")
        last = self.meters.last_sample_at
        if service.detectors and last is not None:
            quiet_s = self.clock() - last
            if quiet_s > self.stall_after_s:
                return Health(False, f"sampling stalled: no reading or failure for {quiet_s:.0f} s")
        return Health(True)

    def summary(self) -> dict[str, Any]:
        """The service-wide part of /api/status."""
        health = self.health()
        stats = self.service.sampler.stats
        return {
            "started": iso(self.started_at), "uptime_s": round(self.clock() - self.started_at, 3),
            "healthy": health.ok, "health": health.reason, "plugs": len(self.service.detectors),
            "reads": stats.started, "read_failures": stats.failures,
            "writer_queue": self.service.writer.queued,
        }

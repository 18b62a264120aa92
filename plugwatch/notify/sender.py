"""The outbox sender: delivers pending alerts, records every attempt, retries with back-off.

An alert is marked sent only after apprise reported success; a failed attempt is recorded and the
alert is due again after an exponential back-off (capped, 10 min by default), so a notifier that is
down delays alerts without losing them and without a storm of retries. A delivery whose record
fails (the database went away meanwhile) is remembered and recorded once the outbox is back,
never sent again; only a crash between a delivery and its record can repeat that one message
(at-least-once); nothing is ever lost.

Logged without a line per attempt (plugwatch.service.failures.Outage): a target's first failed
attempt, every 2 minutes while it keeps failing (with counts), and its first success after; the
same for an outbox (database) that cannot be read. Every attempt is recorded in the outbox.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from plugwatch.errors import NotifyError, PlugwatchError
from plugwatch.formatting import format_duration
from plugwatch.notify.targets import tag_of
from plugwatch.service.failures import Outage

log = logging.getLogger(__name__)


class Outbox(Protocol):
    """Where alerts wait (the store's `alerts` table); calls are blocking (run in a thread)."""

    def pending_alerts(self, now: float, limit: int) -> list[Any]:
        """Alerts with status pending and due_at <= now, oldest first."""

    def record_attempt(
        self, alert_id: int, ok: bool, error: str | None, now: float, next_due: float | None
    ) -> None:
        """Record one attempt: ok -> sent; else due again at next_due (None -> failed for good)."""


class Notifier(Protocol):
    """Delivers one message to a named target; raises NotifyError."""

    async def send(self, target: str, title: str, body: str, tag: str | None = None) -> None:
        """Deliver or raise NotifyError; `tag` is the same for every message of one alert."""


def backoff(attempts: int, base_s: float = 5.0, cap_s: float = 600.0) -> float:
    """Seconds to wait after the `attempts`-th failed attempt: base, 2x base, 4x base ... cap."""
    return min(cap_s, base_s * 2 ** max(0, min(attempts - 1, 30)))


def _field(row: Any, name: str) -> Any:
    return row[name] if isinstance(row, Mapping) else getattr(row, name)


class AlertSender:
    """Polls the outbox and delivers what is due, one alert at a time."""

    def __init__(
        self, outbox: Outbox, notifier: Notifier, *, clock: Callable[[], float] = time.time,
        poll_s: float = 1.0, base_s: float = 5.0, cap_s: float = 600.0, batch: int = 50,
        may_send: Callable[[], bool] | None = None,
    ) -> None:
        self.outbox = outbox
        self.notifier = notifier
        self.clock = clock
        self.poll_s = poll_s
        self.base_s = base_s
        self.cap_s = cap_s
        self.batch = batch
        # asked (in a worker thread) before every delivery: a clustered instance sends only while
        # it surely holds the sender's lease, so two instances never deliver the same alert
        self.may_send = may_send
        self.sent = 0
        self.failed_attempts = 0
        self._wake = asyncio.Event()
        self._failing: dict[str, Outage] = {}  # target -> its current outage
        self._outbox_outage = Outage(clock=clock)
        self._unrecorded: dict[Any, float] = {}  # alert id -> when delivered (not yet recorded)

    def wake(self) -> None:
        """Look at the outbox now (e.g. right after new alerts were written)."""
        self._wake.set()

    async def run_once(self, stop: asyncio.Event | None = None) -> int:
        """Try every alert due now once (until `stop` is set); returns how many were delivered."""
        for alert_id in list(self._unrecorded):  # delivered while the outbox was away
            await self._record_sent(alert_id)
        now = self.clock()
        rows = await asyncio.to_thread(self.outbox.pending_alerts, now, self.batch)
        delivered = 0
        for row in rows:
            if stop is not None and stop.is_set():
                break
            if self.may_send is not None and not await asyncio.to_thread(self.may_send):
                break
            delivered += await self._deliver(row)
        return delivered

    async def _deliver(self, row: Any) -> int:
        alert_id, target = _field(row, "id"), _field(row, "target")
        attempts = int(_field(row, "attempts") or 0) + 1
        try:
            await self.notifier.send(target, _field(row, "title"), _field(row, "body"),
                                     tag=tag_of(_field(row, "dedupe_key")))
        except PlugwatchError as exc:
            self.failed_attempts += 1
            now = self.clock()
            # An unknown target cannot heal by waiting; anything else is retried forever.
            give_up = isinstance(exc, NotifyError) and str(exc).startswith("unknown target")
            next_due = None if give_up else now + backoff(attempts, self.base_s, self.cap_s)
            self._target_failed(target, alert_id, attempts, exc, give_up)
            await asyncio.to_thread(self.outbox.record_attempt, alert_id, False, str(exc), now,
                                    next_due)
            return 0
        self.sent += 1
        self._unrecorded[alert_id] = self.clock()
        outage = self._failing.pop(target, None)
        if outage is not None:
            log.warning("target %s delivers again after %s (%d failed attempts)", target,
                        format_duration(outage.recovered() or 0.0), outage.attempts)
        await self._record_sent(alert_id)
        return 1

    async def _record_sent(self, alert_id: Any) -> None:
        """Record a delivery as sent; if the outbox is away (StoreError), it stays remembered
        and is recorded first thing once the outbox answers again: never delivered twice."""
        await asyncio.to_thread(self.outbox.record_attempt, alert_id, True, None,
                                self._unrecorded[alert_id], None)
        del self._unrecorded[alert_id]

    def _target_failed(self, target: str, alert_id: Any, attempts: int, exc: Exception,
                       give_up: bool) -> None:
        if give_up:
            log.warning("alert %s to %s failed for good: %s", alert_id, target, exc)
            return
        outage = self._failing.setdefault(target, Outage(clock=self.clock))
        due = outage.failed()
        if due == "start":
            log.warning("alert %s to %s: attempt %d failed: %s (retrying with back-off; while "
                        "%s keeps failing, one line every %s)", alert_id, target, attempts, exc,
                        target, format_duration(outage.every_s))
        elif due == "again":
            log.warning("target %s failing for %s: %d attempts failed; last: %s", target,
                        format_duration(outage.lasted()), outage.attempts, exc)
        else:
            log.debug("alert %s to %s: attempt %d failed: %s", alert_id, target, attempts, exc)

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until `stop` is set; a failing outbox (database) is logged and retried."""
        while not stop.is_set():
            failing = False
            try:
                await self.run_once(stop)
            except PlugwatchError as exc:
                self._outbox_failed(exc)
                failing = True  # then only every poll_s: new alerts cannot be read either
            else:
                lasted = self._outbox_outage.recovered()
                if lasted is not None:
                    log.warning("outbox: readable again after %s (%d failed attempts)",
                                format_duration(lasted), self._outbox_outage.attempts)
            self._wake.clear()
            waiters = [asyncio.ensure_future(stop.wait())]
            if not failing:
                waiters.append(asyncio.ensure_future(self._wake.wait()))
            await asyncio.wait(waiters, timeout=self.poll_s, return_when=asyncio.FIRST_COMPLETED)
            for waiter in waiters:
                waiter.cancel()

    def _outbox_failed(self, exc: Exception) -> None:
        due = self._outbox_outage.failed()
        if due == "start":
            log.error("outbox: %s (retrying every %g s; one line every %s while it fails)", exc,
                      self.poll_s, format_duration(self._outbox_outage.every_s))
        elif due == "again":
            log.error("outbox: failing for %s (%d attempts); last: %s",
                      format_duration(self._outbox_outage.lasted()),
                      self._outbox_outage.attempts, exc)
